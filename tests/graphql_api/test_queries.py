"""Every query field and every nested field, over HTTP against the seeded world."""

from __future__ import annotations

import pytest

from api.store.writes import WriteService


def ids(nodes: list[dict]) -> list[str]:
    return [n["id"] for n in nodes]


@pytest.mark.parametrize(
    ("field", "id", "selection", "expected"),
    [
        (
            "actor",
            "a-1",
            "id actorType name role timezone",
            {"id": "a-1", "actorType": "PERSON", "name": "Ada", "role": "Engineer", "timezone": "Europe/London"},
        ),
        (
            "actor",
            "a-2",
            "id actorType name role timezone",
            {"id": "a-2", "actorType": "AGENT", "name": "Bot", "role": None, "timezone": None},
        ),
        (
            "team",
            "t-1",
            "id name description memberIds",
            {"id": "t-1", "name": "Backend", "description": "APIs and data", "memberIds": ["a-2", "a-1"]},
        ),
        (
            "team",
            "t-3",
            "id name description memberIds",
            {"id": "t-3", "name": "Empty", "description": None, "memberIds": None},
        ),
        (
            "teamCheckin",
            "c-1",
            "id actorId teamId date next previously blockers createdAt",
            {
                "id": "c-1",
                "actorId": "a-1",
                "teamId": "t-1",
                "date": "2026-05-18",
                "next": ["ship"],
                "previously": None,
                "blockers": ["review"],
                "createdAt": "2026-05-18T08:00:00+00:00",
            },
        ),
        (
            "goalStory",
            "g-2",
            "id title description actorIds teamIds parentId timeframe { start end } createdAt",
            {
                "id": "g-2",
                "title": "API",
                "description": None,
                "actorIds": ["a-3", "a-1"],
                "teamIds": ["t-1", "t-2"],
                "parentId": "g-1",
                "timeframe": {"start": "2026-02-01", "end": "2026-02-28"},
                "createdAt": "2026-01-02T09:00:00+00:00",
            },
        ),
        (
            "goalStory",
            "g-3",
            "id parentId timeframe { start end }",
            {"id": "g-3", "parentId": "g-1", "timeframe": None},
        ),
        (
            "goalStoryUpdate",
            "u-1",
            "id actorId goalStoryId date title content status progressPercent createdAt",
            {
                "id": "u-1",
                "actorId": "a-1",
                "goalStoryId": "g-1",
                "date": "2026-05-01",
                "title": "Kickoff",
                "content": "Started",
                "status": "ON_TRACK",
                "progressPercent": 10,
                "createdAt": "2026-05-01T10:00:00+00:00",
            },
        ),
        ("goalStoryUpdate", "u-3", "id status progressPercent", {"id": "u-3", "status": None, "progressPercent": None}),
    ],
)
async def test_one_row_by_id(gql, world, field, id, selection, expected) -> None:
    data = await gql(f"query($id: ID!) {{ {field}(id: $id) {{ {selection} }} }}", {"id": id})
    assert data[field] == expected


@pytest.mark.parametrize("field", ["actor", "team", "teamCheckin", "goalStory", "goalStoryUpdate", "coordinationEvent"])
async def test_a_missing_id_is_null(gql, world, field) -> None:
    assert (await gql(f'{{ {field}(id: "nope") {{ id }} }}'))[field] is None


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("actors", ["a-1", "a-2", "a-3", "a-4"]),
        ("teams", ["t-1", "t-2", "t-3"]),
        ("teamCheckins", ["c-1", "c-2", "c-3", "c-4"]),
        ("goalStories", ["g-1", "g-2", "g-3", "g-4"]),
        ("goalStoryUpdates", ["u-1", "u-2", "u-3", "u-4"]),
    ],
)
async def test_every_list_defaults_to_id_order(gql, world, field, expected) -> None:
    data = await gql(
        f"{{ {field} {{ totalCount nodes {{ id }} edges {{ cursor node {{ id }} }} "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"
    )
    connection = data[field]
    assert ids(connection["nodes"]) == expected
    assert [e["node"]["id"] for e in connection["edges"]] == expected
    assert connection["totalCount"] == len(expected)
    assert connection["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": connection["edges"][0]["cursor"],
        "endCursor": connection["edges"][-1]["cursor"],
    }


async def test_events_list_in_commit_order_with_cursors(gql, world) -> None:
    data = await gql(
        "{ coordinationEvents { totalCount nodes { id cursor eventType referenceId actorId occurredAt } } }"
    )
    events = data["coordinationEvents"]["nodes"]
    # The seed wrote the check-ins, then the updates: 8 events in that order.
    assert [e["referenceId"] for e in events] == ["c-1", "c-2", "c-3", "c-4", "u-1", "u-2", "u-3", "u-4"]
    assert [int(e["cursor"]) for e in events] == sorted(int(e["cursor"]) for e in events)
    assert {e["eventType"] for e in events[:4]} == {"TEAM_CHECKIN"}
    assert events[0]["occurredAt"] == "2026-05-18T08:00:00+00:00"
    one = await gql("query($id: ID!) { coordinationEvent(id: $id) { id cursor } }", {"id": events[2]["id"]})
    assert one["coordinationEvent"] == {"id": events[2]["id"], "cursor": events[2]["cursor"]}


async def test_goal_story_nested_fields(gql, world) -> None:
    data = await gql("""{ goalStory(id: "g-1") {
        parent { id }
        children { totalCount nodes { id parent { id } } }
        updates(orderBy: [{field: DATE, direction: DESC}]) { nodes { id actor { name } goalStory { id } } }
        latestUpdate { id }
        teams { id }
        actors { id }
    } child: goalStory(id: "g-2") { parent { id title } latestUpdate { id } teams { id } actors { id }
                                    children { totalCount nodes { id } } }
      bare: goalStory(id: "g-3") { latestUpdate { id } teams { id } actors { id }
                                   updates { totalCount nodes { id } } } }""")
    root = data["goalStory"]
    assert root["parent"] is None
    assert root["children"] == {
        "totalCount": 2,
        "nodes": [{"id": "g-2", "parent": {"id": "g-1"}}, {"id": "g-3", "parent": {"id": "g-1"}}],
    }
    assert root["updates"]["nodes"] == [
        {"id": "u-2", "actor": {"name": "Ada"}, "goalStory": {"id": "g-1"}},
        {"id": "u-1", "actor": {"name": "Ada"}, "goalStory": {"id": "g-1"}},
    ]
    assert root["latestUpdate"] == {"id": "u-2"}
    assert root["teams"] == [{"id": "t-1"}] and root["actors"] == [{"id": "a-1"}]
    child = data["child"]
    assert child["parent"] == {"id": "g-1", "title": "Launch"}
    assert child["latestUpdate"] == {"id": "u-4"}
    # List references keep their stored order, not id order.
    assert ids(child["teams"]) == ["t-1", "t-2"] and ids(child["actors"]) == ["a-3", "a-1"]
    assert child["children"] == {"totalCount": 0, "nodes": []}
    assert data["bare"] == {"latestUpdate": None, "teams": [], "actors": [], "updates": {"totalCount": 0, "nodes": []}}


async def test_team_nested_fields(gql, world) -> None:
    data = await gql("""{ teams { nodes { id members { id } checkins { totalCount nodes { id } }
                                  goalStories { totalCount nodes { id } } } } }""")
    teams = {t["id"]: t for t in data["teams"]["nodes"]}
    assert ids(teams["t-1"]["members"]) == ["a-2", "a-1"]
    assert teams["t-1"]["checkins"] == {"totalCount": 3, "nodes": [{"id": "c-1"}, {"id": "c-2"}, {"id": "c-4"}]}
    assert teams["t-1"]["goalStories"] == {"totalCount": 2, "nodes": [{"id": "g-1"}, {"id": "g-2"}]}
    assert teams["t-2"]["goalStories"]["nodes"] == [{"id": "g-2"}]
    assert teams["t-3"] == {
        "id": "t-3",
        "members": [],
        "checkins": {"totalCount": 0, "nodes": []},
        "goalStories": {"totalCount": 0, "nodes": []},
    }


async def test_actor_nested_fields(gql, world) -> None:
    data = await gql("""{ actor(id: "a-1") {
        teams { nodes { id } } checkins { nodes { id } } goalStoryUpdates { nodes { id } }
        goalStories { nodes { id } } coordinationEvents { totalCount nodes { referenceId actor { id } } } }
      other: actor(id: "a-4") { teams { totalCount } checkins { totalCount } goalStoryUpdates { totalCount }
        goalStories { totalCount } coordinationEvents { totalCount } } }""")
    actor = data["actor"]
    assert ids(actor["teams"]["nodes"]) == ["t-1"]
    assert ids(actor["checkins"]["nodes"]) == ["c-1", "c-4"]
    assert ids(actor["goalStoryUpdates"]["nodes"]) == ["u-1", "u-2"]
    assert ids(actor["goalStories"]["nodes"]) == ["g-1", "g-2"]
    assert actor["coordinationEvents"]["totalCount"] == 4
    assert [e["referenceId"] for e in actor["coordinationEvents"]["nodes"]] == ["c-1", "c-4", "u-1", "u-2"]
    assert {e["actor"]["id"] for e in actor["coordinationEvents"]["nodes"]} == {"a-1"}
    assert all(v == {"totalCount": 0} for v in data["other"].values())


async def test_checkin_and_update_nested_fields(gql, world) -> None:
    data = await gql("""{ teamCheckin(id: "c-3") { actor { id } team { id } coordinationEvents {
                              totalCount nodes { eventType referenceId } } }
      goalStoryUpdate(id: "u-3") { actor { id } goalStory { id title } coordinationEvents {
                              nodes { eventType referenceId
                                      reference { ... on GoalStoryUpdate { id title } } } } } }""")
    assert data["teamCheckin"] == {
        "actor": {"id": "a-3"},
        "team": {"id": "t-2"},
        "coordinationEvents": {"totalCount": 1, "nodes": [{"eventType": "TEAM_CHECKIN", "referenceId": "c-3"}]},
    }
    assert data["goalStoryUpdate"] == {
        "actor": {"id": "a-2"},
        "goalStory": {"id": "g-2", "title": "API"},
        "coordinationEvents": {
            "nodes": [
                {"eventType": "GOAL_STORY_UPDATE", "referenceId": "u-3", "reference": {"id": "u-3", "title": "Draft"}}
            ]
        },
    }


async def test_event_reference_is_a_union(gql, world) -> None:
    data = await gql("""{ coordinationEvents { nodes { referenceId actor { id } reference { __typename
        ... on TeamCheckin { id date } ... on GoalStoryUpdate { id title } } } } }""")
    for event in data["coordinationEvents"]["nodes"]:
        reference = event["reference"]
        assert reference["id"] == event["referenceId"]
        assert reference["__typename"] == (
            "TeamCheckin" if event["referenceId"].startswith("c-") else "GoalStoryUpdate"
        )


async def test_events_of_a_checkin_and_an_update_sharing_an_id_stay_apart(gql, clean) -> None:
    writer = WriteService(clean)
    await writer.create("actor", [{"id": "a", "actor_type": "person", "name": "A"}])
    await writer.create("team", [{"id": "t", "name": "T"}])
    await writer.create("goal_story", [{"id": "g", "title": "G"}])
    await writer.create("team_checkin", [{"id": "same", "actor_id": "a", "team_id": "t", "date": "2026-01-01"}])
    await writer.create(
        "goal_story_update",
        [{"id": "same", "actor_id": "a", "goal_story_id": "g", "date": "2026-01-01", "title": "t", "content": "c"}],
    )
    data = await gql("""{ teamCheckin(id: "same") { coordinationEvents { totalCount nodes { eventType
                            reference { __typename } } } }
      goalStoryUpdate(id: "same") { coordinationEvents { totalCount
                                    nodes { eventType reference { __typename } } } } }""")
    assert data["teamCheckin"]["coordinationEvents"] == {
        "totalCount": 1,
        "nodes": [{"eventType": "TEAM_CHECKIN", "reference": {"__typename": "TeamCheckin"}}],
    }
    assert data["goalStoryUpdate"]["coordinationEvents"] == {
        "totalCount": 1,
        "nodes": [{"eventType": "GOAL_STORY_UPDATE", "reference": {"__typename": "GoalStoryUpdate"}}],
    }


async def test_event_reference_is_null_once_the_row_is_deleted(gql, fresh_world) -> None:
    await WriteService(fresh_world).delete_one("team_checkin", "c-2")
    data = await gql(
        '{ coordinationEvents(where: {referenceId: {eq: "c-2"}}) { nodes { referenceId reference { __typename } } } }'
    )
    assert data["coordinationEvents"]["nodes"] == [{"referenceId": "c-2", "reference": None}]


async def test_nested_connections_take_their_own_arguments(gql, world) -> None:
    data = await gql("""{ goalStories(where: {parentId: {isNull: true}}) { nodes { id
        recent: updates(first: 1, orderBy: [{field: DATE, direction: DESC}]) { nodes { id } pageInfo { hasNextPage } }
        risky: updates(where: {status: {eq: AT_RISK}}) { totalCount nodes { id } }
        named: children(where: {title: {like: "U%"}}) { nodes { id } } } } }""")
    roots = {g["id"]: g for g in data["goalStories"]["nodes"]}
    assert roots["g-1"]["recent"] == {"nodes": [{"id": "u-2"}], "pageInfo": {"hasNextPage": True}}
    assert roots["g-1"]["risky"] == {"totalCount": 1, "nodes": [{"id": "u-2"}]}
    assert roots["g-1"]["named"]["nodes"] == [{"id": "g-3"}]
    assert roots["g-4"]["recent"] == {"nodes": [], "pageInfo": {"hasNextPage": False}}


async def test_get_queries_and_graphiql(gql, world) -> None:
    response = await gql.http.get("/graphql", params={"query": '{ actor(id: "a-1") { name } }'})
    assert response.status_code == 200 and response.json() == {"data": {"actor": {"name": "Ada"}}}
    page = await gql.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    refused = await gql.http.get("/graphql", params={"query": 'mutation { deleteActor(id: "a-4") { deletedId } }'})
    assert 400 <= refused.status_code < 500
    assert (await gql('{ actor(id: "a-4") { id } }'))["actor"] == {"id": "a-4"}
