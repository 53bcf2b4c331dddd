"""Actor-bound writes: a token that carries an actor writes check-ins and goal story updates only as
that actor, on every write path (REST, GraphQL, MCP), and every table is unchanged after a refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService
from tests.conftest import TABLES
from tests.mcp_support import seed

from .conftest import SECRET, RunningServer, bearer, signed

P1 = signed({"role": "write", "actor_id": "p-1"})
P1_READ = signed({"role": "read", "actor_id": "p-1"})
TRUSTED = signed({"role": "write"})
ADMIN_P1 = signed({"role": "admin", "actor_id": "p-1"})
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


@pytest.fixture(scope="module")
def jwt_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, jwt_secret=SECRET) as url:
        yield url


@pytest.fixture
async def seeded(clean: AsyncEngine) -> AsyncEngine:
    writer = WriteService(clean)
    await seed(writer)
    await writer.create(
        "team_checkin",
        [
            {"id": "c-1", "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-01"},
            {"id": "c-2", "actor_id": "p-2", "team_id": "t-2", "date": "2026-05-01"},
        ],
    )
    await writer.create(
        "goal_story_update",
        [
            {
                "id": "u-1",
                "actor_id": "p-1",
                "goal_story_id": "g-1",
                "date": "2026-05-01",
                "title": "a",
                "content": "a",
            },
            {
                "id": "u-2",
                "actor_id": "p-2",
                "goal_story_id": "g-2",
                "date": "2026-05-01",
                "title": "b",
                "content": "b",
            },
        ],
    )
    return clean


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """Every row of every table, as JSON, in a stable order."""
    out: dict[str, Any] = {}
    async with engine.connect() as conn:
        for table in (t.strip() for t in TABLES.split(",")):
            rows = await conn.execute(text(f"SELECT coalesce(json_agg(t ORDER BY t::text), '[]') FROM {table} t"))
            out[table] = rows.scalar_one()
    return out


def checkin(actor: str | None = None, **more: Any) -> dict[str, Any]:
    document = {"team_id": "t-1", "date": "2026-05-20", **more}
    if actor is not None:
        document["actor_id"] = actor
    return document


def update(actor: str) -> dict[str, Any]:
    return {"actor_id": actor, "goal_story_id": "g-1", "date": "2026-05-20", "title": "t", "content": "c"}


def refused_rest(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert set(body) == {"code", "message", "details", "hint"}
    assert body["code"] == "42501" and body["message"].startswith("permission denied"), body


async def test_rest_writes_as_another_actor_are_refused_and_change_nothing(jwt_url: str, seeded: AsyncEngine) -> None:
    before = await snapshot(seeded)
    attempts = [
        ("POST", "/team_checkins", checkin("p-2")),
        ("POST", "/team_checkins", [checkin("p-1"), checkin("p-1"), checkin("p-2")]),
        ("POST", "/goal_story_updates", update("p-2")),
        ("POST", "/goal_story_updates", [update("p-1"), update("p-2")]),
        ("PATCH", "/team_checkins?id=eq.c-2", {"blockers": ["none"]}),
        ("PATCH", "/team_checkins?id=in.(c-1,c-2)", {"blockers": ["none"]}),
        ("PATCH", "/team_checkins?id=eq.c-1", {"actor_id": "p-2"}),
        ("PATCH", "/goal_story_updates?id=eq.u-2", {"title": "mine now"}),
        ("PUT", "/team_checkins?id=eq.c-2", checkin("p-2", id="c-2")),
        ("PUT", "/team_checkins?id=eq.c-2", checkin("p-1", id="c-2")),
        ("POST", "/team_checkins?on_conflict=id", checkin("p-1", id="c-2")),
        ("DELETE", "/team_checkins?id=eq.c-2", None),
        ("DELETE", "/team_checkins", None),
        ("DELETE", "/goal_story_updates?id=eq.u-2", None),
        # What only a trusted or admin token writes.
        ("POST", "/actors", {"actor_type": "agent", "name": "Sneaky"}),
        ("PATCH", "/teams?id=eq.t-1", {"member_ids": ["p-1"]}),
        ("POST", "/goal_stories", {"title": "mine"}),
        ("DELETE", "/goal_stories?id=eq.g-1a-i", None),
    ]
    async with httpx.AsyncClient(base_url=jwt_url, timeout=30) as client:
        for method, path, body in attempts:
            headers = {**bearer(P1), "Prefer": "resolution=merge-duplicates"} if "on_conflict" in path else bearer(P1)
            answer = await client.request(method, path, json=body, headers=headers)
            refused_rest(answer)
            assert await snapshot(seeded) == before, (method, path)


async def test_rest_writes_as_itself(jwt_url: str, seeded: AsyncEngine) -> None:
    async with httpx.AsyncClient(base_url=jwt_url, timeout=30) as client:
        headers = {**bearer(P1), "Prefer": "return=representation"}
        # A left-out actor_id is the token's.
        created = await client.post("/team_checkins", json=[checkin(None), checkin(None)], headers=headers)
        assert created.status_code == 201, created.text
        assert [r["actor_id"] for r in created.json()] == ["p-1", "p-1"]
        given = await client.post("/team_checkins", json=checkin("p-1"), headers=headers)
        assert given.status_code == 201 and given.json()[0]["actor_id"] == "p-1", given.text
        changed = await client.patch("/team_checkins?id=eq.c-1", json={"blockers": ["x"]}, headers=headers)
        assert changed.status_code == 200 and changed.json()[0]["blockers"] == ["x"], changed.text
        put = await client.put("/team_checkins?id=eq.c-1", json=checkin(None, id="c-1"), headers=headers)
        assert put.status_code == 200 and put.json()[0]["actor_id"] == "p-1", put.text
        # Filtered to its own rows, a bulk change passes.
        own = await client.patch("/team_checkins?actor_id=eq.p-1", json={"next": ["y"]}, headers=headers)
        assert own.status_code == 200 and len(own.json()) == 4, own.text
        deleted = await client.delete("/team_checkins?id=eq.c-1", headers=headers)
        assert deleted.status_code == 200 and deleted.json()[0]["id"] == "c-1", deleted.text
        mine = await client.post("/goal_story_updates", json={**update("p-1"), "actor_id": None}, headers=headers)
        assert mine.status_code == 201 and mine.json()[0]["actor_id"] == "p-1", mine.text

        # A read token with an actor still may not write at all.
        assert (await client.post("/team_checkins", json=checkin(None), headers=bearer(P1_READ))).status_code == 403
        # A write token without an actor is a trusted integration; admin writes anything, as anyone.
        for token in (TRUSTED, ADMIN_P1):
            other = await client.post("/team_checkins", json=checkin("p-2"), headers={**headers, **bearer(token)})
            assert other.status_code == 201 and other.json()[0]["actor_id"] == "p-2", other.text
            assert (await client.delete("/team_checkins?id=eq.c-2", headers=bearer(token))).status_code in (200, 204)
            await client.post("/team_checkins", json=checkin("p-2", id="c-2"), headers=bearer(token))
            actor = await client.post("/actors", json={"actor_type": "agent", "name": "Ok"}, headers=bearer(token))
            assert actor.status_code == 201, actor.text


GRAPHQL_REFUSED = [
    'mutation { createTeamCheckin(input: {actorId: "p-2", teamId: "t-1", date: "2026-05-20"}) { teamCheckin { id } } }',
    'mutation { createTeamCheckins(input: [{actorId: "p-1", teamId: "t-1", date: "2026-05-20"},'
    ' {actorId: "p-2", teamId: "t-1", date: "2026-05-20"}]) { teamCheckins { id } } }',
    'mutation { updateTeamCheckin(id: "c-2", input: {blockers: ["x"]}) { teamCheckin { id } } }',
    'mutation { updateTeamCheckin(id: "c-1", input: {actorId: "p-2"}) { teamCheckin { id } } }',
    'mutation { deleteTeamCheckin(id: "c-2") { deletedId } }',
    'mutation { createGoalStoryUpdate(input: {actorId: "p-2", goalStoryId: "g-1", date: "2026-05-20",'
    ' title: "t", content: "c"}) { goalStoryUpdate { id } } }',
    'mutation { updateGoalStoryUpdate(id: "u-2", input: {title: "x"}) { goalStoryUpdate { id } } }',
    'mutation { deleteGoalStoryUpdate(id: "u-2") { deletedId } }',
    'mutation { createActor(input: {actorType: AGENT, name: "Sneaky"}) { actor { id } } }',
    'mutation { updateTeam(id: "t-1", input: {name: "Mine"}) { team { id } } }',
    'mutation { deleteGoalStory(id: "g-1a-i") { deletedId } }',
]


async def test_graphql_writes_as_another_actor_are_forbidden(jwt_url: str, seeded: AsyncEngine) -> None:
    before = await snapshot(seeded)
    async with httpx.AsyncClient(base_url=jwt_url, timeout=30) as client:
        for query in GRAPHQL_REFUSED:
            answer = await client.post("/graphql", json={"query": query}, headers=bearer(P1))
            errors = answer.json().get("errors")
            assert errors and errors[0]["extensions"]["code"] == "FORBIDDEN", (query, answer.text)
            assert errors[0]["message"].startswith("permission denied")
            assert await snapshot(seeded) == before, query

        own = await client.post(
            "/graphql",
            json={
                "query": 'mutation { createTeamCheckin(input: {actorId: "p-1", teamId: "t-1", date: "2026-05-20"})'
                " { teamCheckin { actor { id } } } }"
            },
            headers=bearer(P1),
        )
        assert own.json() == {"data": {"createTeamCheckin": {"teamCheckin": {"actor": {"id": "p-1"}}}}}, own.text
        mine = await client.post(
            "/graphql",
            json={
                "query": 'mutation { updateTeamCheckin(id: "c-1", input: {blockers: ["y"]}) { teamCheckin { id } } }'
            },
            headers=bearer(P1),
        )
        assert "errors" not in mine.json(), mine.text


async def test_mcp_tools_post_only_as_the_token_actor(jwt_url: str, seeded: AsyncEngine) -> None:
    before = await snapshot(seeded)

    def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}

    async with httpx.AsyncClient(base_url=jwt_url, timeout=30) as client:
        for name, arguments in [
            ("post_team_checkin", {"actor_id": "p-2", "team_id": "t-1", "date": "2026-05-22"}),
            ("post_goal_story_update", update("p-2")),
        ]:
            answer = await client.post("/mcp", json=call(name, arguments), headers={**MCP_HEADERS, **bearer(P1)})
            result = answer.json()["result"]
            assert result["isError"] is True, answer.text
            error = result["structuredContent"]["error"]
            assert (error["kind"], error["argument"], error["ids"]) == ("forbidden", "actor_id", ["p-2"]), error
            assert await snapshot(seeded) == before, name

        done = await client.post(
            "/mcp",
            json=call("post_team_checkin", {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22"}),
            headers={**MCP_HEADERS, **bearer(P1)},
        )
        assert done.json()["result"].get("isError") is not True, done.text
        assert json.loads(done.json()["result"]["content"][0]["text"])["team_checkin"]["actor_id"] == "p-1"
