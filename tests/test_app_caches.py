"""Two apps built in one process share no cache: each keeps what it built in caches of its own.

Every cache of built things belongs to a service of one app (api/cache.py). Both apps here
answer the same requests over real HTTP; whatever one of them built is never found in the
other's caches, and `/metrics` reports each cache's entries and lookups.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from api.store.writes import WriteService
from tests.conftest import RunningServer
from tests.live.helpers import checkins, seed
from tests.live.servers import stream, take

NAMES = {
    "rest_shapes",
    "rest_write_plans",
    "plan_statements",
    "bundle_statements",
    "compiled_statements",
    "graphql_requests",
    "graphql_measures",
    "sse_frames",
}
QUERY = '{ actor(id: "a-0") { name } }'


async def _use_every_cache(url: str, writer: WriteService) -> None:
    """Requests that each build something worth keeping, twice (the second finds it)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(2):
            created = await client.post(
                "/actors",
                json={"id": f"cache-{uuid.uuid4().hex[:8]}", "actor_type": "person", "name": "cached"},
                headers={"Prefer": "return=representation"},
            )
            assert created.status_code == 201 and created.json()[0]["name"] == "cached", created.text
            assert (await client.get("/actors?id=eq.a-0")).json()[0]["name"] == "a-0"
            response = await client.post("/graphql", json={"query": QUERY})
            assert response.json() == {"data": {"actor": {"name": "a-0"}}}
    async with stream(url) as events:
        [written] = await checkins(writer, 1)
        [message] = await take(events, 1)
        assert message.data["cursor"] == str(written["seq"])  # cursors are opaque strings in every dialect


def _entries(app: Any) -> dict[str, list[Any]]:
    """What each cache of the app holds, by cache name (several caches may share one)."""
    found: dict[str, list[Any]] = {}
    for cache in app.state.caches:
        found.setdefault(cache.name, []).extend(value for _, value in cache.items())
    return found


def _shared(one: dict[str, list[Any]], other: dict[str, list[Any]]) -> set[int]:
    """The objects (by identity: equal frames are expected, the same object is not) held by both."""
    held = {id(value) for values in one.values() for value in values if value is not None}
    return held & {id(value) for values in other.values() for value in values if value is not None}


async def test_two_apps_in_one_process_share_no_cache_entry(database_url: str, writer: WriteService) -> None:
    await seed(writer)
    first, second = RunningServer(database_url), RunningServer(database_url)
    with first as first_url, second as second_url:
        async with httpx.AsyncClient(base_url=second_url, timeout=30) as client:
            assert (await client.get("/livez")).status_code == 200  # its middleware (the SSE cache's owner) is built
        await _use_every_cache(first_url, writer)

        used, untouched = _entries(first.app), _entries(second.app)
        assert set(used) == set(untouched) and set(used) >= NAMES  # every cache this test fills, at least
        assert all(used[name] for name in NAMES), {name: len(used[name]) for name in NAMES}
        # The second app's own live feed read where the events end when it started (a plan statement
        # of its own); nothing else was asked of it.
        assert not any(untouched[name] for name in NAMES - {"plan_statements"}), untouched
        assert not _shared(used, untouched)
        assert not {id(cache) for cache in first.app.state.caches} & {id(cache) for cache in second.app.state.caches}

        # The same requests to the second app: it builds its own, and finds nothing of the first's.
        await _use_every_cache(second_url, writer)
        again = _entries(second.app)
        assert all(again[name] for name in NAMES)
        assert not _shared(_entries(first.app), again)

        async with httpx.AsyncClient(base_url=first_url, timeout=30) as client:
            metrics = (await client.get("/metrics")).text
        hits = re.search(r'^coco_cache_lookups_total\{cache="rest_shapes",result="hit"\} (\S+)$', metrics, re.MULTILINE)
        assert hits is not None and float(hits.group(1)) >= 1
        plans = re.search(
            r'^coco_cache_lookups_total\{cache="rest_write_plans",result="hit"\} (\S+)$', metrics, re.MULTILINE
        )
        assert plans is not None and float(plans.group(1)) >= 1
        assert re.search(r'^coco_cache_entries\{cache="sse_frames"\} [1-9]', metrics, re.MULTILINE)
