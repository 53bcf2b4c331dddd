"""Commit-to-receipt latency of live coordination events (a benchmark, not a test).

For 1, 100 and 1,000 concurrent subscribers it writes events one at a time
through the write service (one check-in each, paced so the feed is measured,
not a backlog) and records, for every subscriber and event, the time from the
writer's commit returning to the subscriber holding the parsed event.

Two transports:
  sse      one uvicorn server process; the subscribers are httpx streams in a second
           process (at 1,000 streams that client's own parsing is part of the figure)
  feed     LiveFeed subscribers in this process (the engine alone: NOTIFY, one read
           per wake-up, fan-out), no HTTP

Run with `make bench-live`; DATABASE_URL points it at a database of your own
(it writes actors, teams and check-ins there), otherwise an embedded
PostgreSQL is started in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.database import create_engine  # noqa: E402
from api.embedded import EmbeddedPostgres  # noqa: E402
from api.live import LiveFeed  # noqa: E402
from api.migrate import upgrade  # noqa: E402
from api.writes import OnConflict, WriteService  # noqa: E402

Receipts = dict[int, list[float]]  # cursor -> receipt times (one per subscriber)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "COCO_MIGRATE_ON_START": "0"}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
                                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                                "--timeout-graceful-shutdown", "5"],
                               cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


async def sse_subscriber(client: httpx.AsyncClient, after: int, receipts: Receipts, opened: list[int],
                         ready: asyncio.Event, total: int, wanted: int) -> None:
    async with client.stream("GET", "/coordination_events", params={"after": str(after)},
                             headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        opened.append(1)
        if len(opened) == total:
            ready.set()
        seen = 0
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                now = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
                receipts.setdefault(json.loads(line[6:])["cursor"], []).append(now)
                seen += 1
                if seen == wanted:
                    return


def sse_clients(url: str, n: int, after: int, wanted: int, pipe: Connection) -> None:
    """In a process of its own, so that parsing 1,000 streams does not delay the writer's clock."""

    async def main() -> Receipts:
        receipts: Receipts = {}
        ready, opened = asyncio.Event(), []
        limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
        async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(300), limits=limits) as client:
            tasks = [asyncio.create_task(sse_subscriber(client, after, receipts, opened, ready, n, wanted))
                     for _ in range(n)]
            await asyncio.wait_for(ready.wait(), 120)
            pipe.send("ready")
            try:
                await asyncio.wait_for(asyncio.gather(*tasks), 120 + wanted * n / 1000)
            except TimeoutError:
                pass
        return receipts

    pipe.send(asyncio.run(main()))


async def feed_subscriber(feed: LiveFeed, after: int, receipts: Receipts, wanted: int) -> None:
    seen = 0
    async for event in feed.subscribe(after=after):
        receipts.setdefault(event["cursor"], []).append(time.perf_counter())
        seen += 1
        if seen == wanted:
            return


async def write_events(writer: WriteService, n: int, pace: float) -> dict[int, float]:
    committed: dict[int, float] = {}
    for i in range(n):
        result = await writer.create("team_checkin", [{"actor_id": "bench-actor", "team_id": "bench-team",
                                                       "date": "2026-05-22", "next": [f"event {i}"]}])
        committed[result.events[0]["seq"]] = time.perf_counter()
        await asyncio.sleep(pace)
    return committed


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000, "max": ordered[-1] * 1000}


async def measure(label: str, subscribers: int, events: int, pace: float, writer: WriteService,
                  subscribe: Callable[[int], Awaitable[Callable[[], Awaitable[Receipts]]]]) -> None:
    after = await latest_cursor(writer)
    collect = await subscribe(after)
    committed = await write_events(writer, events, pace)
    receipts = await collect()
    latencies = [t - committed[cursor] for cursor, times in receipts.items() if cursor in committed for t in times]
    expected = events * subscribers
    figures = percentiles(latencies)
    print(f"{label:5} {subscribers:>6} {events:>6} {pace * 1000:>5.0f} {len(latencies):>9}/{expected:<9} "
          + "  ".join(f"{k} {v:7.1f}" for k, v in figures.items()), flush=True)


async def latest_cursor(writer: WriteService) -> int:
    result = await writer.create("team_checkin", [{"actor_id": "bench-actor", "team_id": "bench-team",
                                                   "date": "2026-05-22"}])
    return result.events[0]["seq"]


async def run(database_url: str, sizes: list[int], events: int, pace: float) -> None:
    engine = create_engine(database_url, pool_size=5)
    await upgrade(engine)
    writer = WriteService(engine)
    await writer.create("actor", [{"id": "bench-actor", "actor_type": "agent", "name": "bench"}],
                        on_conflict=OnConflict.IGNORE)
    await writer.create("team", [{"id": "bench-team", "name": "bench"}],
                        on_conflict=OnConflict.IGNORE)
    print(f"{os.cpu_count()} cores; events written one at a time, `pace` ms apart; latency from the "
          "writer's commit returning to the subscriber holding the parsed event")
    print(f"{'how':5} {'subs':>6} {'events':>6} {'pace':>5} {'receipts':>19} percentiles (ms)")

    process, url = start_server(database_url)
    spawn = multiprocessing.get_context("spawn")
    try:
        for n in sizes:
            per_run = max(20, events // max(1, n // 100)) if n > 100 else events

            async def start_sse(after: int, n: int = n, per_run: int = per_run) -> Callable[[], Awaitable[Receipts]]:
                parent, child = spawn.Pipe()
                clients = spawn.Process(target=sse_clients, args=(url, n, after, per_run, child))
                clients.start()
                assert await asyncio.to_thread(parent.recv) == "ready"

                async def collect() -> Receipts:
                    receipts = await asyncio.to_thread(parent.recv)
                    await asyncio.to_thread(clients.join)
                    return receipts

                return collect

            # Paced so that the frames per second stay within what two cores can push
            # (1,000 streams x 50 events/s would measure a backlog, not the latency).
            await measure("sse", n, per_run, max(pace, n / 10_000), writer, start_sse)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

    feed = LiveFeed(database_url, engine)
    await feed.start()
    try:
        for n in sizes:
            async def start_feed(after: int, n: int = n) -> Callable[[], Awaitable[Receipts]]:
                receipts: Receipts = {}
                tasks = [asyncio.create_task(feed_subscriber(feed, after, receipts, events)) for _ in range(n)]

                async def collect() -> Receipts:
                    try:
                        await asyncio.wait_for(asyncio.gather(*tasks), 120)
                    except TimeoutError:
                        pass
                    return receipts

                return collect

            await measure("feed", n, events, pace, writer, start_feed)
    finally:
        await feed.stop()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="1,100,1000", help="comma-separated subscriber counts")
    parser.add_argument("--events", type=int, default=200, help="events per run (fewer over SSE at 1,000)")
    parser.add_argument("--pace-ms", type=float, default=20.0, help="pause between writes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.subscribers.split(",")]
    database_url = os.environ.get("DATABASE_URL")
    if database_url:
        asyncio.run(run(database_url, sizes, args.events, args.pace_ms / 1000))
        return
    with tempfile.TemporaryDirectory(prefix="coco-bench-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "data")
        postgres.start()
        try:
            url = postgres.create_database(f"coco_bench_{uuid.uuid4().hex[:8]}")
            asyncio.run(run(url, sizes, args.events, args.pace_ms / 1000))
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
