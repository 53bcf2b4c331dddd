"""Values at the edges of what PostgreSQL and the driver hold, through every front end that writes.

A write either succeeds and is answered as a success (the row and its event stored), or is refused
with a client error and leaves every table as it was, coordination_events included. Messages are in
our words: never the driver's (`query argument $2`), never Python's (`datetime.datetime(...)`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService
from tests.conftest import table_counts
from tests.mcp_support import connect

# Each instant's UTC value lies within years 1-9999 (storable and readable) or not.
TIMESTAMPS_STORED = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59+14:00",
    "2026-03-05T09:15:00.5-06:00",
    "2026-03-05T09:15:00",
]
TIMESTAMPS_REFUSED = [
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-00:01",
    "10000-01-01T00:00:00Z",
    "0000-12-31T23:59:59Z",
    "-0001-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
]
PERCENTS_STORED = [0, 100]
PERCENTS_REFUSED = [-1, 101, 2**31, 2**31 - 1, -(2**31), 2**63, 2**64, -(2**63) - 1, 10**30, 1.5]
DATES_STORED = ["0001-01-01", "9999-12-31"]
DATES_REFUSED = ["10000-01-01", "0000-12-31", "2026-02-30"]

LEAKS = re.compile(r"query argument \$|datetime\.|<class|NoneType|Traceback|asyncpg|sqlalchemy|\bdict\b|\bint\(")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
ZONES = ("America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Amsterdam", "Asia/Kolkata")


def instant(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def world(writer: WriteService) -> WriteService:
    await writer.create("actor", [{"id": "a-1", "actor_type": "agent", "name": "Bot"}])
    await writer.create("team", [{"id": "t-1", "name": "T", "member_ids": ["a-1"]}])
    await writer.create("goal_story", [{"id": "g-1", "title": "G"}])
    return writer


@pytest_asyncio.fixture(loop_scope="session")
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        yield client


# A write through one front end: (stored, the message of a refusal or None).
Write = Callable[[str, dict[str, Any]], Awaitable[tuple[bool, str | None]]]


def checkin(n: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"c-{n}", "actor_id": "a-1", "team_id": "t-1", "date": "2026-05-22", **fields}


def update(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"u-{n}",
        "actor_id": "a-1",
        "goal_story_id": "g-1",
        "date": "2026-05-22",
        "title": "T",
        "content": "C",
        **fields,
    }


async def check(engine: AsyncEngine, write: Callable[[], Awaitable[tuple[bool, str | None]]], stored: bool) -> None:
    """Run one write and hold it to its promise: exactly the row and its event, or nothing at all."""
    before = await table_counts(engine)
    done, message = await write()
    after = await table_counts(engine)
    changed = {t: after[t] - before[t] for t in after if after[t] != before[t]}
    if stored:
        assert done, message
        assert len(changed) == 2 and set(changed.values()) == {1} and "coordination_events" in changed, changed
    else:
        assert not done, "stored, but expected a refusal"
        assert changed == {}, changed
        assert message and not LEAKS.search(message), message


def rest(http: httpx.AsyncClient, prefer: str) -> Write:
    async def write(resource: str, document: dict[str, Any]) -> tuple[bool, str | None]:
        answer = await http.post(f"/{resource}", json=document, headers={"Prefer": prefer})
        if answer.status_code in (200, 201):
            return True, None
        assert answer.status_code == 400, answer.text
        body = answer.json()
        return False, f"{body['message']} {body['details']}"

    return write


def graphql(http: httpx.AsyncClient) -> Write:
    mutations = {
        "team_checkins": ("createTeamCheckin", "CreateTeamCheckinInput", "teamCheckin"),
        "goal_story_updates": ("createGoalStoryUpdate", "CreateGoalStoryUpdateInput", "goalStoryUpdate"),
    }

    async def write(resource: str, document: dict[str, Any]) -> tuple[bool, str | None]:
        name, kind, key = mutations[resource]
        query = (
            f"mutation($i: {kind}!) {{ {name}(input: $i) {{ {key} {{ id createdAt }} coordinationEvent {{ id }} }} }}"
        )
        wire = {_camel(k): v for k, v in document.items()}
        body = (await http.post("/graphql", json={"query": query, "variables": {"i": wire}})).json()
        if not body.get("errors"):
            assert RFC3339.match(body["data"][name][key]["createdAt"]), body
            return True, None
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
        return False, body["errors"][0]["message"]

    return write


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


async def test_timestamps_through_rest_and_graphql(http: httpx.AsyncClient, world: WriteService) -> None:
    engine = world.engine
    n = 0
    for write in (rest(http, "return=minimal"), rest(http, "return=representation"), graphql(http)):
        for value, stored in [*((v, True) for v in TIMESTAMPS_STORED), *((v, False) for v in TIMESTAMPS_REFUSED)]:
            for resource, make in (("team_checkins", checkin), ("goal_story_updates", update)):
                n += 1
                document = make(n, created_at=value)
                await check(engine, lambda w=write, r=resource, d=document: w(r, d), stored)


async def test_stored_boundaries_read_back_as_rfc3339_in_any_zone(http: httpx.AsyncClient, world: WriteService) -> None:
    values = TIMESTAMPS_STORED[:4]
    created = await http.post("/team_checkins", json=[checkin(i, created_at=v) for i, v in enumerate(values)])
    assert created.status_code == 201, created.text
    for zone in (None, *ZONES):
        headers = {"Prefer": f"timezone={zone}"} if zone else {}
        rows = (await http.get("/team_checkins?select=id,created_at&order=id", headers=headers)).json()
        for row, value in zip(rows, values, strict=True):
            assert RFC3339.match(row["created_at"]), (zone, row)
            assert instant(row["created_at"]) == instant(value), (zone, row, value)
        # The same through the event stream's representation of events, and a write's representation.
        events = (await http.get("/coordination_events?select=occurred_at", headers=headers)).json()
        assert all(RFC3339.match(e["occurred_at"]) for e in events), events
    patched = await http.patch(
        "/team_checkins?id=eq.c-0",
        json={"created_at": "9999-12-31T23:59:59Z"},
        headers={"Prefer": "return=representation, timezone=Pacific/Kiritimati"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()[0]["created_at"] == "9999-12-31T23:59:59+00:00"
    data = (await http.post("/graphql", json={"query": "{ teamCheckins { nodes { createdAt } } }"})).json()["data"]
    assert all(RFC3339.match(node["createdAt"]) for node in data["teamCheckins"]["nodes"]), data


async def test_updates_refuse_what_cannot_be_stored(http: httpx.AsyncClient, world: WriteService) -> None:
    engine = world.engine
    assert (await http.post("/goal_story_updates", json=update(1))).status_code == 201
    before = await table_counts(engine)
    for value in TIMESTAMPS_REFUSED:
        answer = await http.patch("/goal_story_updates?id=eq.u-1", json={"created_at": value})
        assert answer.status_code == 400 and not LEAKS.search(answer.text), answer.text
        answer = await http.put("/goal_story_updates?id=eq.u-1", json=update(1, created_at=value))
        assert answer.status_code == 400 and not LEAKS.search(answer.text), answer.text
        body = (
            await http.post(
                "/graphql",
                json={
                    "query": 'mutation($v: DateTime) { updateGoalStoryUpdate(id: "u-1", input: {createdAt: $v}) '
                    "{ goalStoryUpdate { id } } }",
                    "variables": {"v": value},
                },
            )
        ).json()
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
        assert not LEAKS.search(body["errors"][0]["message"]), body
    for value in PERCENTS_REFUSED:
        answer = await http.patch("/goal_story_updates?id=eq.u-1", json={"progress_percent": value})
        assert answer.status_code == 400 and not LEAKS.search(answer.text), answer.text
    assert await table_counts(engine) == before
    # At the bounds: stored as sent (never as -infinity or infinity), each change with its event.
    for value in TIMESTAMPS_STORED[:4]:
        answer = await http.patch("/goal_story_updates?id=eq.u-1", json={"created_at": value})
        assert answer.status_code == 204, answer.text
        row = (await http.get("/goal_story_updates?id=eq.u-1&select=created_at")).json()[0]
        assert RFC3339.match(row["created_at"]) and instant(row["created_at"]) == instant(value), row
    for value in DATES_STORED:
        assert (await http.patch("/goal_story_updates?id=eq.u-1", json={"date": value})).status_code == 204
        assert (await http.get("/goal_story_updates?id=eq.u-1&select=date")).json() == [{"date": value}]
    after = await table_counts(engine)
    assert after["coordination_events"] == before["coordination_events"] + 4 + len(DATES_STORED)


async def test_integers_and_dates_through_rest_and_graphql(http: httpx.AsyncClient, world: WriteService) -> None:
    engine = world.engine
    n = 100
    cases: list[tuple[str, Any, bool]] = [
        *(("progress_percent", v, True) for v in PERCENTS_STORED),
        *(("progress_percent", v, False) for v in PERCENTS_REFUSED),
        *(("date", v, True) for v in DATES_STORED),
        *(("date", v, False) for v in DATES_REFUSED),
    ]
    for write in (rest(http, "return=minimal"), rest(http, "return=representation"), graphql(http)):
        for name, value, stored in cases:
            n += 1
            document = update(n, **{name: value})
            await check(engine, lambda w=write, d=document: w("goal_story_updates", d), stored)


async def test_mcp_posts_store_or_refuse(server_url: str, database_url: str, world: WriteService) -> None:
    engine = world.engine
    async with connect("http", server_url, database_url) as client:

        async def post(document: dict[str, Any]) -> tuple[bool, str | None]:
            result = await client.call_tool("post_goal_story_update", document)
            return (False, result.content[0].text) if result.is_error else (True, None)

        n = 200
        for name, value, stored in [
            *(("progress_percent", v, True) for v in PERCENTS_STORED),
            *(("progress_percent", v, False) for v in PERCENTS_REFUSED),
            *(("date", v, True) for v in DATES_STORED),
            *(("date", v, False) for v in DATES_REFUSED),
        ]:
            n += 1
            document = {k: v for k, v in update(n, **{name: value}).items()}
            await check(engine, lambda d=document: post(d), stored)
