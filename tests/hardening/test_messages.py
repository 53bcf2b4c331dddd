"""Errors in our words, and of a bounded size: never the driver's or Python's, never every key of a batch,
never a traceback in the log for what was only the client's mistake."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService
from tests.conftest import RunningServer, table_counts

LEAKS = re.compile(r"query argument \$|datetime\.|<class|NoneType|Traceback|asyncpg|sqlalchemy|\bint\(|\bstr\b")
LIMIT = 64 * 1024


@pytest_asyncio.fixture(loop_scope="session")
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def small_body_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, max_body_bytes=LIMIT) as url:
        yield url


async def test_numbers_past_bigint_are_refused_in_our_words(http: httpx.AsyncClient, clean: AsyncEngine) -> None:
    for query in ("offset=99999999999999999999999", "limit=99999999999999999999999"):
        answer = await http.get(f"/actors?{query}")
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"] == f"{query.split('=')[0]} must be at most 9223372036854775807"
    nested = await http.get("/teams?select=id,members:actors(id)&members.offset=99999999999999999999999")
    assert nested.status_code == 400 and not LEAKS.search(nested.text), nested.text
    # A Range past bigint at its end is open-ended; at its start, refused.
    assert (await http.get("/actors", headers={"Range": "0-99999999999999999999999"})).status_code == 200
    assert (await http.get("/actors", headers={"Range": "99999999999999999999999-"})).status_code == 400


async def test_values_past_their_column_are_refused_in_our_words(http: httpx.AsyncClient, writer: WriteService) -> None:
    await writer.create("actor", [{"id": "a-1", "actor_type": "agent", "name": "Bot"}])
    await writer.create("team", [{"id": "t-1", "name": "T"}])
    await writer.create("team_checkin", [{"id": "c-1", "actor_id": "a-1", "team_id": "t-1", "date": "2026-05-22"}])
    for value in ("10000-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999-00:01"):
        answer = await http.patch("/team_checkins?id=eq.c-1", json={"created_at": value})
        assert answer.status_code == 400 and not LEAKS.search(answer.text), answer.text
    # A cursor holding a number its column cannot hold (made by hand: the API never hands one out).
    await writer.create("goal_story", [{"id": "g-1", "title": "G"}])
    update = {"id": "u-1", "actor_id": "a-1", "goal_story_id": "g-1", "date": "2026-05-22", "title": "T"}
    await writer.create("goal_story_update", [{**update, "content": "C", "progress_percent": 5}])
    order = "orderBy: [{field: PROGRESS_PERCENT}]"
    page = await http.post("/graphql", json={"query": f"{{ goalStoryUpdates({order}) {{ edges {{ cursor }} }} }}"})
    cursor = page.json()["data"]["goalStoryUpdates"]["edges"][0]["cursor"]
    labels, values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert values[0] == 5
    for number in (10**30, 2**31, -(2**63) - 1):
        after = base64.urlsafe_b64encode(json.dumps([labels, [number, values[1]]]).encode()).decode().rstrip("=")
        query = f"query($a: String) {{ goalStoryUpdates(after: $a, {order}) {{ nodes {{ id }} }} }}"
        body = (await http.post("/graphql", json={"query": query, "variables": {"a": after}})).json()
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
        assert not LEAKS.search(body["errors"][0]["message"]), body
    # The driver had sent the statement but not its values: no connection is left holding it open (its
    # locks would stall the next TRUNCATE, migration or VACUUM until that connection's next use).
    async with writer.engine.connect() as conn:
        stuck = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active' AND wait_event = 'ClientRead'"
            )
        )
    assert stuck == 0


async def test_a_conflict_over_a_large_batch_names_the_first_ids_and_counts_the_rest(
    http: httpx.AsyncClient, clean: AsyncEngine
) -> None:
    batch = [{"id": f"a-{n:05}", "actor_type": "agent", "name": "n"} for n in range(50_000)]
    assert (await http.post("/actors", json=batch, headers={"Prefer": "return=minimal"})).status_code == 201
    again = await http.post("/actors", json=batch, headers={"Prefer": "return=minimal"})
    assert again.status_code == 409
    assert len(again.content) < 2_000, len(again.content)
    body = again.json()
    assert body["details"] == f"Key (id)=({', '.join(f'a-{n:05}' for n in range(20))} and 49,980 more) already exists."
    document = {"input": [{"id": f"a-{n:05}", "actorType": "AGENT", "name": "n"} for n in range(30)]}
    graphql = (
        await http.post(
            "/graphql",
            json={
                "query": "mutation($input: [CreateActorInput!]!) { createActors(input: $input) { actors { id } } }",
                "variables": document,
            },
        )
    ).json()
    extensions = graphql["errors"][0]["extensions"]
    assert extensions["code"] == "CONFLICT" and len(extensions["ids"]) == 20 and extensions["count"] == 30
    assert graphql["errors"][0]["message"].endswith("and 10 more")
    assert (await table_counts(clean))["actors"] == 50_000


async def test_a_chunked_body_over_the_limit_is_413_without_a_traceback(
    small_body_url: str, clean: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps([{"actor_type": "agent", "name": "x" * 100}] * 2000).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    with caplog.at_level(logging.INFO):
        async with httpx.AsyncClient(base_url=small_body_url, timeout=30) as client:
            for path in ("/actors", "/graphql"):
                answer = await client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
                assert answer.status_code == 413, answer.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
    assert (await table_counts(clean))["actors"] == 0
