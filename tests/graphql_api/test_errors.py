"""Every error code, bad inputs of many kinds (never an HTTP 500, tables unchanged), and the protection limits."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError
from graphql_helpers import snapshot

from api.errors import StatementTimeout, Unavailable
from api.graphql.errors import extensions_of, with_code

BAD = [
    # the document itself
    ("{ actors { nodes { id } ", "BAD_USER_INPUT"),
    ("{ actors { nodes { nope } } }", "BAD_USER_INPUT"),
    ("{ nope }", "BAD_USER_INPUT"),
    ("{ actor { id } }", "BAD_USER_INPUT"),
    ("{ actors(first: 99999999999) { nodes { id } } }", "BAD_USER_INPUT"),
    ('{ actors(first: "ten") { nodes { id } } }', "BAD_USER_INPUT"),
    ("{ actors(orderBy: [{field: NOPE}]) { nodes { id } } }", "BAD_USER_INPUT"),
    ('{ teamCheckins(where: {date: {eq: "2026-13-01"}}) { nodes { id } } }', "BAD_USER_INPUT"),
    ('{ teamCheckins(where: {createdAt: {gt: "yesterday"}}) { nodes { id } } }', "BAD_USER_INPUT"),
    ("{ actors(where: {actorType: {eq: ROBOT}}) { nodes { id } } }", "BAD_USER_INPUT"),
    ("{ actors(where: {name: {like: 5}}) { nodes { id } } }", "BAD_USER_INPUT"),
    ('{ actors(where: {memberIds: {contains: ["x"]}}) { nodes { id } } }', "BAD_USER_INPUT"),
    # arguments the schema accepts but the API refuses
    ("{ actors(first: -1) { nodes { id } } }", "BAD_USER_INPUT"),
    ("{ actors(first: 101) { nodes { id } } }", "BAD_USER_INPUT"),
    ("{ actors(last: 1000) { nodes { id } } }", "BAD_USER_INPUT"),
    ('{ team(id: "t-1") { checkins(first: 500) { nodes { id } } } }', "BAD_USER_INPUT"),
    ('{ actors(after: "not a cursor") { nodes { id } } }', "BAD_USER_INPUT"),
    ('{ actors(before: "W10") { nodes { id } } }', "BAD_USER_INPUT"),
    ("{ actors(where: {name: {eq: null}}) { nodes { id } } }", "BAD_USER_INPUT"),
    ("{ actors(where: {name: null}) { nodes { id } } }", "BAD_USER_INPUT"),
    ("{ actors(where: {or: [null]}) { nodes { id } } }", "BAD_USER_INPUT"),
    ('{ actors(where: {id: {in: ["a", null]}}) { nodes { id } } }', "BAD_USER_INPUT"),
    ('{ actors(where: {name: {eq: "nul\\u0000"}}) { nodes { id } } }', "BAD_USER_INPUT"),
    ('{ coordinationEvents(where: {cursor: {gt: "abc"}}) { nodes { id } } }', "BAD_USER_INPUT"),
    # writes the schema accepts but the write service refuses
    ("mutation { createActor(input: {actorType: PERSON}) { actor { id } } }", "BAD_USER_INPUT"),
    ('mutation { createActor(input: {actorType: ROBOT, name: "x"}) { actor { id } } }', "BAD_USER_INPUT"),
    ('mutation { createActor(input: {id: "", actorType: PERSON, name: "x"}) { actor { id } } }', "BAD_USER_INPUT"),
    (
        'mutation { createActor(input: {actorType: PERSON, name: "x", timezone: "Mars/Base"}) { actor { id } } }',
        "BAD_USER_INPUT",
    ),
    ('mutation { createActor(input: {id: "a-1", actorType: PERSON, name: "x"}) { actor { id } } }', "CONFLICT"),
    (
        'mutation { createActors(input: [{id: "n", actorType: PERSON, name: "x"}, {id: "n", actorType: AGENT, '
        'name: "y"}]) { actors { id } } }',
        "CONFLICT",
    ),
    ('mutation { createTeam(input: {name: "x", memberIds: ["a-1", "ghost"]}) { team { id } } }', "CONFLICT"),
    (
        'mutation { createTeamCheckin(input: {actorId: "a-1", teamId: "t-404", date: "2026-01-01"}) '
        "{ teamCheckin { id } } }",
        "CONFLICT",
    ),
    (
        'mutation { createTeamCheckin(input: {actorId: "a-1", teamId: "t-1", date: "2026-02-30"}) '
        "{ teamCheckin { id } } }",
        "BAD_USER_INPUT",
    ),
    ('mutation { createTeamCheckin(input: {actorId: "a-1", teamId: "t-1"}) { teamCheckin { id } } }', "BAD_USER_INPUT"),
    (
        'mutation { createGoalStoryUpdate(input: {actorId: "a-1", goalStoryId: "g-1", date: "2026-01-01", '
        'title: "t", content: "c", progressPercent: 101}) { goalStoryUpdate { id } } }',
        "BAD_USER_INPUT",
    ),
    (
        'mutation { createGoalStoryUpdate(input: {actorId: "a-1", goalStoryId: "g-1", date: "2026-01-01", '
        'title: "t", content: "c", progressPercent: -1}) { goalStoryUpdate { id } } }',
        "BAD_USER_INPUT",
    ),
    (
        'mutation { createGoalStoryUpdate(input: {actorId: "a-1", goalStoryId: "g-1", date: "2026-01-01", '
        'title: "t", content: "c", status: DONE}) { goalStoryUpdate { id } } }',
        "BAD_USER_INPUT",
    ),
    (
        'mutation { createGoalStory(input: {title: "t", timeframe: {start: "2026-02-01", end: "2026-01-01"}}) '
        "{ goalStory { id } } }",
        "BAD_USER_INPUT",
    ),
    ('mutation { createGoalStory(input: {title: "t", parentId: "g-404"}) { goalStory { id } } }', "CONFLICT"),
    (
        'mutation { createGoalStory(input: {title: "t", createdAt: "not a time"}) { goalStory { id } } }',
        "BAD_USER_INPUT",
    ),
    ('mutation { updateGoalStory(id: "g-1", input: {parentId: "g-2"}) { goalStory { id } } }', "CONFLICT"),
    # A story as its own parent is the shortest cycle, refused as one.
    ('mutation { updateGoalStory(id: "g-1", input: {parentId: "g-1"}) { goalStory { id } } }', "CONFLICT"),
    ('mutation { updateGoalStory(id: "g-1", input: {title: null}) { goalStory { id } } }', "BAD_USER_INPUT"),
    ('mutation { updateTeamCheckin(id: "c-1", input: {createdAt: null}) { teamCheckin { id } } }', "BAD_USER_INPUT"),
    ('mutation { updateTeamCheckin(id: "c-1", input: {actorId: "ghost"}) { teamCheckin { id } } }', "CONFLICT"),
    ('mutation { updateTeamCheckin(id: "c-404", input: {next: ["x"]}) { teamCheckin { id } } }', "NOT_FOUND"),
    ('mutation { updateActor(id: "a-404", input: {}) { actor { id } } }', "NOT_FOUND"),
    ('mutation { deleteTeamCheckin(id: "c-404") { deletedId } }', "NOT_FOUND"),
    ('mutation { deleteTeam(id: "t-1") { deletedId } }', "CONFLICT"),
    ("mutation { createCoordinationEvent(input: {}) { id } }", "BAD_USER_INPUT"),
]


@pytest.mark.parametrize(("query", "code"), BAD)
async def test_bad_input_answers_a_coded_error_and_changes_nothing(gql, world, query, code) -> None:
    before = await snapshot(world)
    assert await gql.code(query) == code
    assert await snapshot(world) == before


async def test_error_extensions_name_what_to_fix(gql, world) -> None:
    errors = await gql.errors(
        'mutation { createGoalStoryUpdate(input: {actorId: "a-1", goalStoryId: "g-1", '
        'date: "2026-01-01", title: "t", content: "c", progressPercent: 101}) '
        "{ goalStoryUpdate { id } } }"
    )
    assert errors[0]["extensions"]["field"] == "progressPercent"
    assert errors[0]["path"] == ["createGoalStoryUpdate"]
    errors = await gql.errors(
        'mutation { createTeam(input: {name: "x", memberIds: ["a-1", "ghost", "zz"]}) { team { id } } }'
    )
    assert errors[0]["extensions"] == {
        "code": "CONFLICT",
        "reason": "missing_reference",
        "ids": ["ghost", "zz"],
        "field": "memberIds",
    }
    errors = await gql.errors('mutation { updateActor(id: "a-404", input: {}) { actor { id } } }')
    assert errors[0]["extensions"] == {"code": "NOT_FOUND", "entity": "actor", "id": "a-404"}
    errors = await gql.errors(
        'mutation { createActors(input: [{actorType: PERSON, name: "ok"}, '
        '{actorType: PERSON, name: "x", timezone: "Nowhere"}]) { actors { id } } }'
    )
    assert errors[0]["extensions"]["index"] == 1 and errors[0]["extensions"]["field"] == "timezone"


async def test_bad_variables_and_requests(gql, world) -> None:
    before = await snapshot(world)
    errors = await gql.errors(
        "query($d: Date!) { teamCheckins(where: {date: {eq: $d}}) { nodes { id } } }", {"d": "tomorrow"}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    errors = await gql.errors(
        "mutation($i: CreateActorInput!) { createActor(input: $i) { actor { id } } }",
        {"i": {"actorType": "PERSON", "name": "x", "extra": 1}},
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    errors = await gql.errors("query($n: Int) { actors(first: $n) { nodes { id } } }", {"n": 3.5})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    for body in (b"{not json", b"[]", b'{"query": 5}', b'{"variables": {}}', b""):
        response = await gql.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (body, response.status_code)
    response = await gql.http.put("/graphql", json={"query": "{ actors { nodes { id } } }"})
    assert 400 <= response.status_code < 500
    assert await snapshot(world) == before


def _nested(depth: int) -> str:
    query = "id"
    for _ in range(depth):
        query = f"parent {{ {query} }}"
    return f'{{ goalStory(id: "g-2") {{ {query} }} }}'


async def test_protection_limits(gql, world) -> None:
    assert (await gql(_nested(13)))["goalStory"] is not None
    errors = await gql.errors(_nested(15))
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT" and "depth" in errors[0]["message"]
    aliases = [f'a{i}: actor(id: "a-1") {{ id }}' for i in range(31)]
    errors = await gql.errors(f"{{ {' '.join(aliases)} }}")
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT" and "aliases" in errors[0]["message"]
    assert len(await gql(f"{{ {' '.join(aliases[:30])} }}")) == 30
    tokens = " ".join("id" for _ in range(5000))
    errors = await gql.errors(f"{{ actors {{ nodes {{ {tokens} }} }} }}")
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT" and "token" in errors[0]["message"]


async def test_introspection_is_not_limited_by_depth(gql, world) -> None:
    from graphql import get_introspection_query

    data = await gql(get_introspection_query(descriptions=True))
    types = {t["name"]: t for t in data["__schema"]["types"]}
    assert types["Actor"]["description"].startswith("A participant")


def test_unexpected_errors_are_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    error = GraphQLError("secret detail: password=hunter2", path=["actors"], original_error=RuntimeError("boom"))
    with caplog.at_level(logging.ERROR, logger="coco.graphql"):
        masked = with_code(error)
    assert masked.message == "Unexpected error." and masked.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert "boom" in caplog.text


def test_unavailable_and_timeout_codes() -> None:
    assert extensions_of(Unavailable("the database is unavailable")) == {"code": "SERVICE_UNAVAILABLE"}
    assert extensions_of(StatementTimeout("too long")) == {"code": "TIMEOUT"}


async def test_deeply_nested_filters_are_refused_or_answered_never_a_500(gql, world) -> None:
    def nested(depth: int) -> dict:
        where: dict = {"name": {"eq": "Ada"}}
        for _ in range(depth):
            where = {"not": where}
        return where

    query = "query($w: ActorWhere) { actors(where: $w) { nodes { id } } }"
    assert (await gql(query, {"w": nested(60)}))["actors"]["nodes"] == [{"id": "a-1"}]
    assert (await gql(query, {"w": nested(61)}))["actors"]["nodes"] != [{"id": "a-1"}]
    assert (await gql.errors(query, {"w": nested(300)}))[0]["extensions"]["code"] == "BAD_USER_INPUT"
    literal = '{name: {eq: "Ada"}}'
    for _ in range(300):
        literal = "{not: " + literal + "}"
    errors = await gql.errors("{ actors(where: " + literal + ") { nodes { id } } }")
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
