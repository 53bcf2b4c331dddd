"""Compiled mutations write what the resolvers write, record the same events and answer the same payloads;
bad input gets the resolvers' errors with their paths, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from graphql_helpers import snapshot
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config import Settings
from api.edge.auth import READ, WRITE, Caller, Principal, current_caller
from api.graphql.compiled import PreparedWrite, recent_plans
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.schema import make_schema
from api.store import Reader, WriteService

Seed = Callable[[AsyncEngine], Awaitable[None]]
SETTINGS = Settings()
LIMITS = Limits(max_page_size=SETTINGS.graphql_max_page_size, default_page_size=SETTINGS.graphql_default_page_size)

CHECKIN = 'actorId: "a-1", teamId: "t-1", date: "2026-06-01", next: ["x"], createdAt: "2026-06-01T08:00:00+02:00"'
MISSING_TEAM = CHECKIN.replace("t-1", "t-404")
TWICE = '"n-6"'
EVENT = "id cursor eventType occurredAt actor { id name } __typename"

# Each document written once by the resolvers and once through the compiled path, on the same world.
WRITES = [
    # A create whose payload is rendered in its one statement: own fields, relations, its event.
    f"""mutation One {{ __typename createTeamCheckin(input: {{id: "n-1", {CHECKIN}, blockers: []}}) {{
        __typename teamCheckin {{ id actorId teamId date next previously blockers createdAt nodeId __typename
          team {{ name members {{ id name }} }} actor {{ name teams {{ totalCount }} }} }}
        coordinationEvent {{ {EVENT} }} }} }}""",
    # The event's reference is the row being written: rendered inside the transaction instead.
    f"""mutation {{ createTeamCheckin(input: {{id: "n-2", {CHECKIN}}}) {{
        coordinationEvent {{ eventType reference {{ ... on TeamCheckin {{ id next team {{ id }} }} }} }}
        teamCheckin {{ id }} }} }}""",
    # Bulk, aliases, rows in input order and events in commit order.
    f"""mutation {{ made: createTeamCheckins(input: [{{id: "n-4", {CHECKIN}}}, {{id: "n-3", {CHECKIN}}}]) {{
        events: coordinationEvents {{ {EVENT} }} rows: teamCheckins {{ id createdAt }} }} }}""",
    # A tree (goal stories) checks its hierarchy in a transaction; timeframes, connections, a parent.
    """mutation { createGoalStory(input: {id: "g-9", title: "New", parentId: "g-1", teamIds: ["t-2"],
        timeframe: {start: "2026-07-01", end: "2026-07-31"}, createdAt: "2026-06-01T00:00:00Z"}) {
        goalStory { id title timeframe { start end } parent { title } teams { name }
          children { totalCount } updates { totalCount } } } }""",
    """mutation { createGoalStoryUpdate(input: {id: "u-9", actorId: "a-2", goalStoryId: "g-2", date: "2026-06-02",
        title: "T", content: "C", status: AT_RISK, progressPercent: 40, createdAt: "2026-06-02T00:00:00Z"}) {
        goalStoryUpdate { id status progressPercent goalStory { title } actor { actorType } }
        coordinationEvent { eventType occurredAt actor { id } } } }""",
    # No events: actors and teams.
    """mutation { a: __typename createActor(input: {id: "a-9", actorType: AGENT, name: "New"}) {
        actor { id actorType name role teams { totalCount } } } b: __typename }""",
    """mutation { createTeams(input: [{id: "t-8", name: "B", memberIds: ["a-1", "a-3"]}, {id: "t-7", name: "A"}]) {
        teams { id name members { id } } } }""",
    # Updates: a change (an event), a no-op (none), an explicit null.
    """mutation { updateTeamCheckin(id: "c-1", input: {next: ["later"], blockers: null}) {
        teamCheckin { id next blockers createdAt } coordinationEvent { eventType actor { id } } } }""",
    """mutation { updateTeamCheckin(id: "c-2", input: {date: "2026-05-19"}) {
        teamCheckin { id date } coordinationEvent { id } } }""",
    """mutation { updateGoalStory(id: "g-3", input: {parentId: "g-2", description: null}) {
        goalStory { id parent { id } description } } }""",
    # Deletes show the row as it was.
    """mutation { deleteTeamCheckin(id: "c-4") { deletedId teamCheckin { id date actor { name } } } }""",
    """mutation { deleteGoalStory(id: "g-4") { goalStory { title timeframe { end } } deletedId } }""",
]

# Each refused by the write service (or by validation): the same errors both ways, nothing written.
REFUSED = [
    f'mutation {{ createTeamCheckin(input: {{id: "n-5", {MISSING_TEAM}}}) {{ teamCheckin {{ id }} }} }}',
    f'mutation {{ createTeamCheckin(input: {{id: "c-1", {CHECKIN}}}) {{ teamCheckin {{ id }} }} }}',
    f"mutation {{ createTeamCheckins(input: [{{id: {TWICE}, {CHECKIN}}}, {{id: {TWICE}, {CHECKIN}}}]) "
    "{ teamCheckins { id } } }",
    'mutation { updateTeamCheckin(id: "nope", input: {next: []}) { teamCheckin { id } } }',
    'mutation { updateGoalStory(id: "g-1", input: {parentId: "g-2"}) { goalStory { id } } }',
    'mutation { deleteTeam(id: "t-1") { deletedId } }',
    'mutation { createActor(input: {id: "", actorType: PERSON, name: "x"}) { actor { id } } }',
]


def _context(engine: AsyncEngine, *, resolvers_only: bool) -> Context:
    return Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS, resolvers_only=resolvers_only)


async def _written(
    engine: AsyncEngine,
    reseed: Seed,
    document: str,
    *,
    resolvers_only: bool,
    variables: Any = None,
    principal: Principal | None = None,
) -> Any:
    """The world seeded afresh, the document executed on it (a schema of its own, so that nothing is recorded
    from another run) by `principal` (None: a trusted caller): the result, and the tables after it."""
    await reseed(engine)
    schema = make_schema(SETTINGS)
    token = current_caller.set(None if principal is None else Caller(principal))
    try:
        result = await schema.execute(
            document, variable_values=variables, context_value=_context(engine, resolvers_only=resolvers_only)
        )
    finally:
        current_caller.reset(token)
    return result, schema, await _tables(engine)


async def _tables(engine: AsyncEngine) -> dict[str, list[Any]]:
    """Every row; an event without its id, cursor and (for an update, the time of the write) occurred_at."""
    tables = await snapshot(engine)
    async with engine.connect() as conn:
        events = await conn.execute(
            text(
                "SELECT e.actor_id, e.event_type, e.reference_id, e.occurred_at = coalesce(c.created_at, u.created_at) "
                "FROM coordination_events e LEFT JOIN team_checkins c ON c.id = e.reference_id "
                "LEFT JOIN goal_story_updates u ON u.id = e.reference_id ORDER BY e.seq"
            )
        )
        tables["coordination_events"] = [tuple(r) for r in events]
    return tables


def _comparable(data: Any) -> Any:
    """The payload with each event's id and cursor (drawn anew by each run) replaced by placeholders."""
    if isinstance(data, dict):
        return {
            k: (
                "<drawn>" if k in ("id", "cursor") and data.get("__typename") == "CoordinationEvent" else _comparable(v)
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_comparable(v) for v in data]
    return data


def _fallbacks() -> dict[str, float]:
    return {
        reason: REGISTRY.get_sample_value("coco_graphql_fallbacks_total", {"reason": reason}) or 0.0
        for reason in ("unsupported", "invalid_input", "unavailable", "refused", "unexpected")
    }


@pytest.mark.parametrize("document", WRITES)
async def test_compiled_mutations_write_and_answer_what_the_resolvers_do(
    engine: AsyncEngine, reseed: Seed, document: str
) -> None:
    resolved, _, resolved_tables = await _written(engine, reseed, document, resolvers_only=True)
    assert resolved.errors is None, resolved.errors
    before = _fallbacks()
    compiled, schema, compiled_tables = await _written(engine, reseed, document, resolvers_only=False)
    assert compiled.errors is None, compiled.errors
    # Through the compiled path (recorded for the next time), not the resolvers.
    assert _fallbacks() == before
    assert any(isinstance(entry, PreparedWrite) for _, entry in recent_plans(schema).cache.items())
    # Same payload, key order included; same rows, same events.
    assert json.dumps(_comparable(compiled.data)) == json.dumps(_comparable(resolved.data))
    assert compiled_tables == resolved_tables


async def test_each_event_shown_is_the_one_recorded(engine: AsyncEngine, reseed: Seed) -> None:
    compiled, _, _ = await _written(engine, reseed, WRITES[2], resolvers_only=False)
    async with engine.connect() as conn:
        recorded = [
            {"id": r.id, "cursor": str(r.seq), "reference": r.reference_id}
            for r in await conn.execute(
                text("SELECT id, seq, reference_id FROM coordination_events WHERE reference_id LIKE 'n-%' ORDER BY seq")
            )
        ]
    shown = compiled.data["made"]["events"]
    assert [(e["id"], e["cursor"]) for e in shown] == [(r["id"], r["cursor"]) for r in recorded]
    assert [r["id"] for r in compiled.data["made"]["rows"]] == ["n-4", "n-3"]


@pytest.mark.parametrize("document", REFUSED)
async def test_refused_mutations_get_the_resolvers_errors_and_write_nothing(
    engine: AsyncEngine, reseed: Seed, document: str
) -> None:
    resolved, _, resolved_tables = await _written(engine, reseed, document, resolvers_only=True)
    before = _fallbacks()
    compiled, schema, compiled_tables = await _written(engine, reseed, document, resolvers_only=False)
    assert resolved.errors and compiled.errors
    assert [(e.message, e.path, e.extensions) for e in compiled.errors] == [
        (e.message, e.path, e.extensions) for e in resolved.errors
    ]
    assert compiled.data == resolved.data
    # Left to the resolvers (counted), never recorded; nothing written either way.
    assert sum(_fallbacks().values()) == sum(before.values()) + 1
    assert not any(isinstance(entry, PreparedWrite) for _, entry in recent_plans(schema).cache.items())
    await reseed(engine)
    assert compiled_tables == resolved_tables == await _tables(engine)


async def test_variables_and_bad_variables(engine: AsyncEngine, reseed: Seed) -> None:
    document = """mutation M($input: CreateTeamCheckinInput!) { createTeamCheckin(input: $input) {
        teamCheckin { id date team { name } } } }"""
    good = {"input": {"id": "n-7", "actorId": "a-3", "teamId": "t-2", "date": "2026-06-03"}}
    good["input"]["createdAt"] = "2026-06-03T09:00:00Z"
    resolved, _, resolved_tables = await _written(engine, reseed, document, resolvers_only=True, variables=good)
    compiled, _, compiled_tables = await _written(engine, reseed, document, resolvers_only=False, variables=good)
    assert compiled.errors is None and compiled.data == resolved.data
    assert compiled_tables == resolved_tables
    bad = {"input": {**good["input"], "date": "2026-13-01"}}
    resolved, _, resolved_tables = await _written(engine, reseed, document, resolvers_only=True, variables=bad)
    compiled, _, compiled_tables = await _written(engine, reseed, document, resolvers_only=False, variables=bad)
    assert resolved.errors and [e.message for e in compiled.errors] == [e.message for e in resolved.errors]
    assert compiled_tables == resolved_tables


async def test_what_is_not_compiled_is_left_to_the_resolvers(engine: AsyncEngine, reseed: Seed) -> None:
    # Two mutations in one operation: each commits on its own, so the resolvers run them in order.
    document = f"""mutation {{ a: createTeamCheckin(input: {{id: "n-8", {CHECKIN}}}) {{ teamCheckin {{ id }} }}
        b: deleteTeamCheckin(id: "n-8") {{ deletedId }} }}"""
    before = _fallbacks()
    compiled, _, tables = await _written(engine, reseed, document, resolvers_only=False)
    assert compiled.errors is None and compiled.data == {"a": {"teamCheckin": {"id": "n-8"}}, "b": {"deletedId": "n-8"}}
    assert _fallbacks() == {**before, "unsupported": before["unsupported"] + 1}
    assert "n-8" not in {r[0] for r in tables["team_checkins"]}


async def test_a_repeated_mutation_writes_again_through_its_recorded_plan(
    engine: AsyncEngine, reseed: Seed, server_url: str
) -> None:
    await reseed(engine)
    document = f"""mutation Again {{ createTeamCheckin(input: {{{CHECKIN}}}) {{
        teamCheckin {{ id date createdAt team {{ name }} }} coordinationEvent {{ eventType cursor }} }} }}"""
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        answers = [(await client.post("/graphql", json={"query": document})).json() for _ in range(3)]
        # GET never writes, whatever was recorded.
        refused = await client.get("/graphql", params={"query": document})
        assert refused.status_code == 405
    ids = [a["data"]["createTeamCheckin"]["teamCheckin"]["id"] for a in answers]
    assert len(set(ids)) == 3
    for answer in answers:
        payload = answer["data"]["createTeamCheckin"]
        assert payload["teamCheckin"]["date"] == "2026-06-01"
        assert payload["teamCheckin"]["createdAt"] == "2026-06-01T06:00:00+00:00"
        assert payload["teamCheckin"]["team"] == {"name": "Backend"}
        assert payload["coordinationEvent"]["eventType"] == "TEAM_CHECKIN"
    async with engine.connect() as conn:
        stored = await conn.execute(
            text(
                "SELECT c.id, e.seq FROM team_checkins c JOIN coordination_events e ON e.reference_id = c.id "
                "WHERE c.id = ANY(:ids) ORDER BY e.seq"
            ),
            {"ids": ids},
        )
        assert [(r.id, str(r.seq)) for r in stored] == [
            (i, a["data"]["createTeamCheckin"]["coordinationEvent"]["cursor"])
            for i, a in zip(ids, answers, strict=True)
        ]


# A write token limited to t-2: its creates are not limited by teams, but what its payloads read below the
# written rows is (a check-in in t-1 shows no team; g-2's parent g-1 is t-1's).
SCOPED = [
    """mutation { createTeamCheckin(input: {id: "n-9", actorId: "a-3", teamId: "t-1", date: "2026-06-04",
        createdAt: "2026-06-04T00:00:00Z"}) { teamCheckin { id team { name } actor { name teams { nodes { id } } } }
        coordinationEvent { eventType actor { id } reference { ... on TeamCheckin { id team { id } } } } } }""",
    """mutation { updateGoalStory(id: "g-2", input: {title: "API v2"}) {
        goalStory { title parent { id } teams { id } updates { totalCount } } } }""",
]


@pytest.mark.parametrize("document", SCOPED)
async def test_scoped_payloads_are_the_resolvers(engine: AsyncEngine, reseed: Seed, document: str) -> None:
    principal = Principal(frozenset({READ, WRITE}), authenticated=True, teams=frozenset({"t-2"}))
    resolved, _, resolved_tables = await _written(engine, reseed, document, resolvers_only=True, principal=principal)
    before = _fallbacks()
    compiled, _, compiled_tables = await _written(engine, reseed, document, resolvers_only=False, principal=principal)
    assert resolved.errors is None and compiled.errors is None, (resolved.errors, compiled.errors)
    assert _fallbacks() == before
    assert json.dumps(compiled.data) == json.dumps(resolved.data)
    assert compiled_tables == resolved_tables
    payload = next(iter(compiled.data.values()))
    if "teamCheckin" in payload:
        assert payload["teamCheckin"]["team"] is None and payload["teamCheckin"]["id"] == "n-9"
        # The row itself is not one the scope reads: the event's reference to it is null, as any read of it.
        assert payload["coordinationEvent"]["reference"] is None
    else:
        assert payload["goalStory"]["parent"] is None and payload["goalStory"]["title"] == "API v2"
