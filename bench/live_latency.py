"""Commit-to-receipt latency of live coordination events on its own (`make bench-live`).

The same measurement as the subscriptions row of `make bench` (bench/subscriptions.py):
`coco serve --workers N` on the benchmark cluster's small dataset, 1, 100 and
1,000 SSE streams held by lean client processes, check-ins written one at a time
through the write service. `--transport graphql` measures GraphQL subscriptions over
WebSocket the same way (bench/ws_client.py). With `--profile DIR`, py-spy (when installed) records
each worker during the largest count. `--transport feed` measures the engine
alone instead: LiveFeed subscribers in this process, no HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from api.live import LiveFeed
from api.store import Reader
from api.store.database import create_engine
from api.store.writes import WriteService
from bench import subscriptions
from bench.cluster import Cluster, reset_writes
from bench.seed import QUICK
from bench.servers import ServerProcess, descendants, free_port

ACTOR, TEAM = "p-1", "t-1"
DATABASE = "coco_bench_quick"


async def _receive(events: AsyncIterator[dict[str, Any]], wanted: int, received: dict[int, list[float]]) -> None:
    """One in-process subscriber: each event's receipt time, until `wanted` events came."""
    seen = 0
    async for event in events:
        received.setdefault(event["cursor"], []).append(time.perf_counter())
        seen += 1
        if seen == wanted:
            return


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="1,100,1000", help="comma-separated subscriber counts")
    parser.add_argument("--events", type=int, default=200, help="events per count (half as many above 100)")
    parser.add_argument("--pace-ms", type=float, default=20.0, help="least pause between writes")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the server")
    parser.add_argument(
        "--transport",
        choices=("sse", "graphql", "feed"),
        default="sse",
        help="sse, graphql (subscriptions over WebSocket) or feed (in process, no HTTP)",
    )
    parser.add_argument("--profile", type=Path, help="write py-spy collapsed stacks of the workers here")
    parser.add_argument(
        "--ours-root",
        type=Path,
        default=ROOT,
        help="serve from another checkout of this repository (e.g. the code before a change)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plans = subscriptions.default_plans([int(s) for s in args.subscribers.split(",")], args.events, args.pace_ms / 1000)
    cluster = Cluster()
    cluster.start()
    try:
        db = asyncio.run(cluster.prepare(DATABASE, QUICK))
        try:
            if args.transport == "feed":
                asyncio.run(in_process(db.url, plans))
            else:
                report = served(db.url, plans, args.workers, args.profile, args.ours_root.resolve(), args.transport)
                print("\n".join(subscriptions.table(report)))
        finally:
            asyncio.run(reset_writes(db.url, db.seed_max_seq))
    finally:
        cluster.stop()
    return 0


def served(
    database_url: str,
    plans: list[subscriptions.Plan],
    workers: int,
    profile: Path | None,
    root: Path = ROOT,
    transport: str = "sse",
) -> subscriptions.Report:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    server = ServerProcess(
        "coco serve",
        [sys.executable, "-m", "api", "serve", "--workers", str(workers), "--port", str(port)],
        port=port,
        cwd=root,
        log_file=ROOT / "bench" / ".data" / "logs" / "coco-live.log",
        ready_path="/healthz",
        env={**env, "DATABASE_URL": database_url, "PYTHONPATH": str(root), "COCO_LOG_LEVEL": "warning"},
    )
    server.start()
    try:
        report = (
            asyncio.run(
                subscriptions.measure(
                    server.base_url,
                    database_url,
                    plans[:-1],
                    actor_id=ACTOR,
                    team_id=TEAM,
                    server_pids=server.pids,
                    transport=transport,
                )
            )
            if len(plans) > 1
            else None
        )
        spies = _profile(server, profile, plans[-1]) if profile else []
        last = asyncio.run(
            subscriptions.measure(
                server.base_url,
                database_url,
                plans[-1:],
                actor_id=ACTOR,
                team_id=TEAM,
                server_pids=server.pids,
                transport=transport,
            )
        )
        for spy in spies:
            spy.wait()
    finally:
        server.stop()
    if report is not None:
        last.results[:0] = report.results
    return last


def _profile(server: ServerProcess, directory: Path, plan: subscriptions.Plan) -> list[subprocess.Popen[bytes]]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: no profile", file=sys.stderr)
        return []
    directory.mkdir(parents=True, exist_ok=True)
    assert server.process is not None
    # The workers are the processes that hold the live feed; the helpers are small.
    pids = [pid for pid in descendants(server.process.pid) if _is_worker(pid)]
    seconds = int(plan.events * plan.pace_s + 15)
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(pid),
                "-d",
                str(seconds),
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(directory / f"worker-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def _is_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False
    return "multiprocessing" in cmdline and "resource_tracker" not in cmdline


async def in_process(database_url: str, plans: list[subscriptions.Plan]) -> None:
    engine = create_engine(database_url, pool_size=5)
    writer = WriteService(engine)
    feed = LiveFeed(database_url, Reader(engine))
    await feed.start()
    try:
        for plan in plans:
            received: dict[int, list[float]] = {}
            tasks = [
                asyncio.create_task(_receive(feed.subscribe(), plan.events, received)) for _ in range(plan.subscribers)
            ]
            committed = await subscriptions.write_events(writer, plan.events, plan.pace_s, ACTOR, TEAM)
            await asyncio.wait(tasks, timeout=60)
            latencies = subscriptions.latencies_of(committed, received)
            figures = subscriptions.percentiles(latencies) if latencies else {}
            print(
                f"feed {plan.subscribers:>6} subscribers, {len(latencies)}/{plan.events * plan.subscribers} "
                "receipts, ms: " + "  ".join(f"{k} {v:.1f}" for k, v in figures.items()),
                flush=True,
            )
    finally:
        await feed.stop()
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
