"""The edge layer (api/edge/edge.py) on requests the front ends never see as such: malformed and huge
headers, HEAD, requests and streams while the process drains, and the metrics it counts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from api import tally
from api.config import Settings
from api.edge.draining import Draining
from api.edge.edge import Edge

from .conftest import READ_TOKEN, Served, bearer
from .test_observability import samples

FRESH_ID = re.compile(r"[0-9a-f]{32}")


async def test_malformed_headers_get_clear_answers(server_url: str, secured_url: str) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        # Bytes that are not UTF-8 in the token: refused as any unknown token is, not a fault.
        refused = await client.get("/actors", headers={"Authorization": b"Bearer \xff\xfe"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "PGRST301"
        assert FRESH_ID.fullmatch(refused.headers["x-request-id"])
        # Not a bearer scheme at all.
        basic = await client.get("/actors", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert basic.status_code == 401 and basic.json()["code"] == "PGRST301"
        # Two Authorization headers: the first counts.
        both = await client.get("/actors", headers=[("Authorization", "Bearer wrong"), *bearer(READ_TOKEN).items()])
        assert both.status_code == 401
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        # A request id that is not sane (not ASCII, too long) is replaced; a later sane one is kept.
        for given in (b"\xc3\xa9t\xc3\xa9", b"x" * 129):
            answered = await client.get("/actors?limit=1", headers={"X-Request-Id": given})
            assert answered.status_code == 200
            assert FRESH_ID.fullmatch(answered.headers["x-request-id"])
        kept = await client.get("/actors?limit=1", headers=[("X-Request-Id", "bad id"), ("X-Request-Id", "good-id")])
        assert kept.headers["x-request-id"] == "good-id"
        # An Accept header naming the event stream in capitals still asks for it (media types ignore case).
        async with client.stream("GET", "/coordination_events", headers={"Accept": "TEXT/EVENT-STREAM"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")


async def test_huge_headers_are_answered(server_url: str, secured_url: str) -> None:
    huge = "x" * 12_000
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        answered = await client.get("/actors?limit=1", headers={"X-Request-Id": huge, "X-Padding": huge})
        assert answered.status_code == 200
        assert FRESH_ID.fullmatch(answered.headers["x-request-id"])
        # A huge Accept is the REST layer's to refuse, in its own dialect.
        refused = await client.get("/actors", headers={"Accept": "application/x-" + huge})
        assert refused.status_code == 406
        assert refused.json()["code"] == "PGRST107"
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        refused = await client.get("/actors", headers={"Authorization": f"Bearer {huge}"})
        assert refused.status_code == 401 and refused.json()["code"] == "PGRST301"


async def test_head_answers_as_get_without_a_body(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        for path in ("/actors?limit=1", "/actors?id=eq.nobody", "/healthz", "/nothing_here"):
            got = await client.get(path)
            head = await client.head(path)
            assert head.status_code == got.status_code, path
            assert head.content == b"", path
            for name in ("content-type", "content-range", "vary", "proxy-status"):
                assert head.headers.get(name) == got.headers.get(name), (path, name)
            assert FRESH_ID.fullmatch(head.headers["x-request-id"])


# ---------------------------------------------------------------- draining


async def _endless(request: Request) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        yield b": open\n\n"
        while True:
            await asyncio.sleep(0.01)
            yield b"data: tick\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@contextlib.contextmanager
def draining_app() -> Iterator[tuple[str, Draining]]:
    draining = Draining()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        draining.bind(asyncio.get_running_loop())
        yield

    async def ordinary(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/stream", _endless), Route("/plain", ordinary)],
        middleware=[Middleware(Edge, settings=Settings(), draining=draining)],
        lifespan=lifespan,
    )
    with Served(app) as url:
        yield url, draining


async def _until(condition: object, limit_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_request_during_the_drain_is_answered_and_streams_end() -> None:
    with draining_app() as (url, draining):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            events = {"Accept": "text/event-stream"}
            async with client.stream("GET", "/stream", headers=events) as open_before:
                lines = open_before.aiter_lines()
                assert await anext(lines) == ": open"
                await _until(lambda: len(draining.streams) == 1)
                assert draining.begin()
                # The stream ends (the client reads to its end, no error), after whole events only.
                rest = [line async for line in lines]
                assert all(line in ("", "data: tick") for line in rest)
            await _until(lambda: not draining.streams)
            # While draining: an ordinary request gets its answer ...
            plain = await client.get("/plain", headers=events)
            assert plain.status_code == 200 and plain.json() == {"ok": True}
            # ... and a stream opened now ends at once.
            async with client.stream("GET", "/stream", headers=events) as opened_during:
                assert opened_during.status_code == 200
                during = [line async for line in opened_during.aiter_lines()]
                assert during[:1] == [": open"]
            # A response for a client that did not ask for an event stream is not the drain's to end.
            async with client.stream("GET", "/stream") as not_asked:
                assert await anext(not_asked.aiter_lines()) == ": open"
                assert not draining.streams


# ---------------------------------------------------------------- metrics counted in memory


def test_the_tally_of_several_processes_is_summed() -> None:
    directory = tempfile.mkdtemp()
    # As two worker processes would: a file each.
    first, second = tally.Tally(directory, name="1"), tally.Tally(directory, name="2")
    first.count("GET", "/{resource}", 200, 0.003)
    first.count("GET", "/{resource}", 200, 0.2)
    second.count("GET", "/{resource}", 200, 40.0)
    second.count("POST", '/we"ird', 201, 0.001)
    found = samples(tally.exposition(first, directory).decode())
    assert ("coco_http_requests_total", {"method": "GET", "route": "/{resource}", "status": "200"}, 3.0) in found
    assert ("coco_http_requests_total", {"method": "POST", "route": '/we"ird', "status": "201"}, 1.0) in found
    buckets = {
        s[1]["le"]: s[2]
        for s in found
        if s[0] == "coco_http_request_duration_seconds_bucket" and s[1]["method"] == "GET"
    }
    assert buckets["0.005"] == 1 and buckets["0.25"] == 2 and buckets["30.0"] == 2 and buckets["+Inf"] == 3
    (total,) = [s[2] for s in found if s[0] == "coco_http_request_duration_seconds_sum" and s[1]["method"] == "GET"]
    assert total == pytest.approx(40.203)
    # Alone (no directory), a process reports its own counts only.
    own = samples(tally.exposition(first).decode())
    assert ("coco_http_requests_total", {"method": "GET", "route": "/{resource}", "status": "200"}, 2.0) in own
    tally.prepare(directory)
    assert not os.listdir(directory)


async def test_metrics_count_refusals_and_name_each_family_once(secured_url: str) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        before = samples((await client.get("/metrics")).text)
        await client.get("/actors")
        after_text = (await client.get("/metrics")).text
    after = samples(after_text)

    def refused(found: list[tuple[str, dict[str, str], float]]) -> float:
        key = {"method": "GET", "route": "/{resource}", "status": "401"}
        return sum(v for n, labels, v in found if n == "coco_http_requests_total" and labels == key)

    assert refused(after) == refused(before) + 1
    assert after_text.count("# TYPE coco_http_requests_total counter") == 1
    assert after_text.count("# TYPE coco_http_request_duration_seconds histogram") == 1
