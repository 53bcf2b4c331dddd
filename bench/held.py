"""Connections held (`make bench-held`): one server holding many SSE streams and GraphQL
WebSocket subscriptions at once, and what that costs each event and each worker.

`coco serve --workers 2` on the benchmark cluster's small dataset; lean client processes
(bench/sse_client.py, bench/ws_client.py; `--per-process` streams each) open both
populations together (10,000 SSE streams and 1,000 `coordinationEvents` subscriptions
by default) and hold them; once every one is subscribed, check-ins are written one at a
time through the write service, paced as the subscriptions row paces its 1,000 (one
event per 20,000 connections per second at least: here 550 ms apart), and every
connection is expected to receive every event. Reported per transport: commit-to-receipt
p50/p95/p99/max and delivered/expected; per worker: the RSS sampled every 250 ms over the
whole run (before the clients connect, once they are all held, and the peak) and how many
connections it held; the CPU per event of the server and the clients.

File descriptors: each worker may get any share of the connections, so the harness
raises its soft limit to the hard one (the server and the clients inherit it) and stops
with a message when that is below what the run needs; the ephemeral port range must
cover every client connection (all to one address and port).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from api.store.database import create_engine
from api.store.writes import WriteService
from bench import subscriptions
from bench.cluster import Cluster, reset_writes
from bench.live_latency import ACTOR, DATABASE, TEAM, _is_worker, _profile
from bench.report import write_json
from bench.seed import QUICK
from bench.servers import Sampler, ServerProcess, free_port, rss_kb

SSE_STREAMS = 10_000
WS_SUBSCRIPTIONS = 1_000
TARGET_SSE_P99_MS = 250.0
MEMORY_TARGET_MB = 200.0
# Descriptors a process needs beside its connections (the pool, the listener, logs, pipes).
SPARE_FDS = 256
PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


@dataclass
class Delivery:
    """One transport's receipts."""

    transport: str
    connections: int
    client_processes: int
    receipts: int
    expected: int
    latency_ms: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    client_cpu_ms_per_event: float | None = None

    @property
    def complete(self) -> bool:
        return self.receipts == self.expected and not self.errors


@dataclass
class Worker:
    pid: int
    idle_rss_mb: float | None
    held_rss_mb: float | None
    peak_rss_mb: float
    connections: int | None  # sockets it opened between the idle and the held snapshot
    # False: the worker was gone at the end (died, or uvicorn's supervisor killed it for missing its
    # 5 s health check); a worker with no idle figure is the one started in its place.
    lasted: bool = True


@dataclass
class Held:
    sse: Delivery
    ws: Delivery
    events: int
    pace_ms: float
    open_s: float  # from the first client process starting to every connection subscribed
    workers: list[Worker]
    server_cpu_ms_per_event: float | None
    load_average: list[float]
    limits: dict[str, Any]
    target_sse_p99_ms: float = TARGET_SSE_P99_MS
    memory_target_mb: float = MEMORY_TARGET_MB

    @property
    def verdicts(self) -> dict[str, bool | None]:
        p99 = self.sse.latency_ms.get("p99")
        peaks = [w.peak_rss_mb for w in self.workers]
        return {
            "sse_p99": None if p99 is None else self.sse.complete and p99 < self.target_sse_p99_ms,
            "every_event_delivered": self.sse.complete and self.ws.complete,
            "workers_lasted": all(w.lasted for w in self.workers),
            "memory": None if not peaks else max(peaks) < self.memory_target_mb,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdicts": self.verdicts}


class RssSampler(Sampler):
    """The RSS of the processes `pids` lists, every `interval_s` until stopped: each one's peak,
    and snapshots taken on demand (with its open sockets)."""

    def __init__(self, pids: Callable[[], list[int]], interval_s: float = 0.25) -> None:
        super().__init__(interval_s, name="held-rss")
        self.pids = pids
        self.peaks: dict[int, int] = {}  # pid -> kB

    def sample(self) -> None:
        self.snapshot()

    def snapshot(self) -> dict[int, tuple[int, int | None]]:
        """Each process's RSS in kB now and its open sockets."""
        now = {}
        for pid in self.pids():
            rss = rss_kb(pid)
            if rss is None:
                continue
            if rss > self.peaks.get(pid, 0):
                self.peaks[pid] = rss
            now[pid] = (rss, sockets(pid))
        return now


def sockets(pid: int) -> int | None:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    count = 0
    for fd in fds:
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:  # closed since the listing
            continue
    return count


def raise_fd_limit(needed: int) -> dict[str, Any]:
    """The soft descriptor limit raised to the hard one, for this process and what it starts;
    SystemExit when even that is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    raised = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if raised != resource.RLIM_INFINITY and raised < needed:
        raise SystemExit(
            f"the run needs {needed:,} file descriptors in one process (a worker may get every connection) "
            f"and the hard limit is {hard:,}: raise it (`ulimit -Hn`, limits.conf or the service's LimitNOFILE) "
            "or hold fewer connections (--sse, --ws)"
        )
    return {"nofile_soft_before": soft, "nofile": raised}


def check_ports(connections: int) -> dict[str, Any]:
    """The ephemeral port range and the listen backlog limit, as the kernel reports them;
    SystemExit when the range cannot give every connection its own port."""
    try:
        low, high = map(int, PORT_RANGE.read_text().split())
        somaxconn = int(SOMAXCONN.read_text())
    except (OSError, ValueError):
        return {}  # not Linux: nothing to check
    if high - low + 1 < connections:
        raise SystemExit(
            f"{connections:,} connections to one address need as many ephemeral ports; "
            f"{PORT_RANGE} gives {high - low + 1:,} ({low}-{high}): widen it (sysctl net.ipv4.ip_local_port_range)"
        )
    return {"ephemeral_ports": high - low + 1, "somaxconn": somaxconn}


def delivery(
    transport: str,
    clients: subscriptions.Clients,
    committed: dict[int, float],
    got: tuple[dict[int, list[float]], list[str], float],
    events: int,
    wanted: int,
) -> Delivery:
    receipts, errors, cpu_s = got
    latencies = subscriptions.latencies_of(committed, receipts)
    return Delivery(
        transport,
        clients.n,
        len(clients.shares) if clients.n else 0,
        len(latencies),
        events * clients.n,
        subscriptions.percentiles(latencies) if latencies else {},
        errors[:5],
        round(cpu_s * 1000 / wanted, 2),
    )


async def hold(
    base_url: str,
    database_url: str,
    *,
    sse: int,
    ws: int,
    events: int,
    pace_s: float,
    actor_id: str,
    team_id: str,
    worker_pids: Callable[[], list[int]],
    per_process: int = subscriptions.STREAMS_PER_PROCESS,
    on_held: Callable[[], object] | None = None,
) -> Held:
    """Both populations held against the server at `base_url` (whose workers `worker_pids`
    lists) while `events` check-ins are written into `database_url`, `pace_s` apart."""
    limits = {**raise_fd_limit(max(per_process, sse + ws) + SPARE_FDS), **check_ports(sse + ws)}
    wanted = subscriptions.WARMUP_EVENTS + events
    timeout = 120 + wanted * pace_s * 2
    populations = [
        subscriptions.Clients(base_url, n, wanted, timeout, transport, per_process=per_process)
        for transport, n in (("sse", sse), ("graphql", ws))
    ]
    engine = create_engine(database_url, pool_size=2)
    writer = WriteService(engine)
    try:
        with RssSampler(worker_pids) as sampler:
            idle = sampler.snapshot()
            started = time.perf_counter()
            try:
                await asyncio.gather(*(c.start() for c in populations if c.n))
                open_s = time.perf_counter() - started
                held = sampler.snapshot()
                if on_held is not None:
                    on_held()
                pids = worker_pids()
                cpu_before = {pid: subscriptions.cpu_seconds([pid]) for pid in pids}
                await subscriptions.write_events(writer, subscriptions.WARMUP_EVENTS, pace_s, actor_id, team_id)
                committed = await subscriptions.write_events(writer, events, pace_s, actor_id, team_id)
                got = await asyncio.gather(
                    *(c.collect() if c.n else _nothing() for c in populations),
                )
                # A worker gone by now took its CPU time with it: only the ones that lasted count.
                server_cpu = sum(max(0.0, subscriptions.cpu_seconds([pid]) - t) for pid, t in cpu_before.items())
                last = sampler.snapshot()
            finally:
                await asyncio.gather(*(c.stop() for c in populations))
    finally:
        await engine.dispose()
    workers = [
        Worker(
            pid,
            _mb(idle[pid][0]) if pid in idle else None,
            _mb(held[pid][0]) if pid in held else None,
            _mb(peak),
            _opened(idle.get(pid), held.get(pid)),
            pid in last,
        )
        for pid, peak in sorted(sampler.peaks.items())
    ]
    sse_delivery, ws_delivery = (
        delivery(t, c, committed, g, events, wanted)
        for t, c, g in zip(("sse", "graphql"), populations, got, strict=True)
    )
    return Held(
        sse_delivery,
        ws_delivery,
        events,
        round(pace_s * 1000, 1),
        round(open_s, 1),
        workers,
        round(server_cpu * 1000 / wanted, 2) if pids else None,
        [round(x, 2) for x in os.getloadavg()],
        limits,
    )


async def _nothing() -> tuple[dict[int, list[float]], list[str], float]:
    return {}, [], 0.0


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def _opened(idle: tuple[int, int | None] | None, held: tuple[int, int | None] | None) -> int | None:
    if idle is None or held is None or idle[1] is None or held[1] is None:
        return None
    return held[1] - idle[1]


def table(report: Held) -> list[str]:
    verdicts = report.verdicts

    def mark(ok: bool | None) -> str:
        return {True: "met", False: "MISSED", None: "no verdict"}[ok]

    out = [
        f"connections held: {report.sse.connections:,} SSE streams + {report.ws.connections:,} GraphQL WebSocket "
        f"subscriptions at once, {report.events} events {report.pace_ms:.0f} ms apart "
        f"(all open and subscribed in {report.open_s:.1f} s); load average {report.load_average}",
        "  transport  connections  clients  delivered            p50      p95      p99      max  client CPU ms/event",
    ]
    for d in (report.sse, report.ws):
        figures = (
            [f"{d.latency_ms[k]:8.1f}" for k in ("p50", "p95", "p99", "max")] if d.latency_ms else ["       -"] * 4
        )
        delivered = f"{d.receipts:,}/{d.expected:,}" + ("" if d.complete else " !")
        cpu = f"{d.client_cpu_ms_per_event:.1f}" if d.client_cpu_ms_per_event is not None else "-"
        out.append(
            f"  {d.transport:<9}  {d.connections:>11,}  {d.client_processes:>7}  {delivered:<19} {' '.join(figures)}"
            f"  {cpu}"
        )
    for d in (report.sse, report.ws):
        out.extend(f"  {d.transport} error: {e}" for e in d.errors)
    cpu = f"{report.server_cpu_ms_per_event:.1f}" if report.server_cpu_ms_per_event is not None else "-"
    out.append(f"  server CPU ms/event (all workers): {cpu}")
    out.append("  worker       RSS MB: idle     held     peak  sockets opened (held)")
    for w in report.workers:
        idle = f"{w.idle_rss_mb:.0f}" if w.idle_rss_mb is not None else "-"
        held = f"{w.held_rss_mb:.0f}" if w.held_rss_mb is not None else "-"
        conns = f"{w.connections:,}" if w.connections is not None else "-"
        fate = "" if w.lasted else "  gone before the end (died or killed by the supervisor)"
        if w.idle_rss_mb is None:
            fate += "  started during the run (in place of one that ended)"
        out.append(f"  {w.pid:<10}  {idle:>13}  {held:>7}  {w.peak_rss_mb:>7.0f}  {conns:>21}{fate}")
    out.append(
        f"  targets: SSE p99 < {report.target_sse_p99_ms:.0f} ms: {mark(verdicts['sse_p99'])}; every event delivered: "
        f"{mark(verdicts['every_event_delivered'])}; each worker < {report.memory_target_mb:.0f} MB throughout: "
        f"{mark(verdicts['memory'])}"
    )
    out.append(f"  limits: {report.limits}")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sse", type=int, default=SSE_STREAMS, help="SSE streams held")
    parser.add_argument("--ws", type=int, default=WS_SUBSCRIPTIONS, help="GraphQL WebSocket subscriptions held")
    parser.add_argument("--events", type=int, default=100, help="events written while they are held")
    parser.add_argument(
        "--pace-ms", type=float, help="pause between writes (default: as the subscriptions row paces as many)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the server")
    parser.add_argument(
        "--per-process", type=int, default=subscriptions.STREAMS_PER_PROCESS, help="connections per client process"
    )
    parser.add_argument("--profile", type=Path, help="write py-spy raw stacks of the workers here")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--ours-root", type=Path, default=ROOT, help="serve from another checkout of this repository")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    total = args.sse + args.ws
    # The subscriptions row's pacing for this many subscribers: a backlog is not the latency of one event.
    pace_s = args.pace_ms / 1000 if args.pace_ms is not None else subscriptions.default_plans([total])[0].pace_s
    # Before anything starts: the server and the client processes inherit the raised limit.
    raise_fd_limit(max(args.per_process, total) + SPARE_FDS)
    check_ports(total)
    cluster = Cluster()
    cluster.start()
    try:
        db = asyncio.run(cluster.prepare(DATABASE, QUICK))
        try:
            report = _served(db.url, args, pace_s)
        finally:
            asyncio.run(reset_writes(db.url, db.seed_max_seq))
    finally:
        cluster.stop()
    print("\n".join(table(report)))
    if args.json:
        write_json(args.json, report.as_dict())
    return 0


def _served(database_url: str, args: argparse.Namespace, pace_s: float) -> Held:
    root = args.ours_root.resolve()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    server = ServerProcess(
        "coco serve",
        [sys.executable, "-m", "api", "serve", "--workers", str(args.workers), "--port", str(port)],
        port=port,
        cwd=root,
        log_file=ROOT / "bench" / ".data" / "logs" / "coco-held.log",
        ready_path="/healthz",
        env={**env, "DATABASE_URL": database_url, "PYTHONPATH": str(root), "COCO_LOG_LEVEL": "warning"},
    )
    server.start()
    spies: list[Any] = []

    def profile() -> None:
        if args.profile:
            plan = subscriptions.Plan(args.sse + args.ws, args.events + subscriptions.WARMUP_EVENTS, pace_s)
            spies.extend(_profile(server, args.profile, plan))

    try:
        return asyncio.run(
            hold(
                server.base_url,
                database_url,
                sse=args.sse,
                ws=args.ws,
                events=args.events,
                pace_s=pace_s,
                actor_id=ACTOR,
                team_id=TEAM,
                # One worker is uvicorn's own process; more are its children.
                worker_pids=lambda: [pid for pid in server.pids() if _is_worker(pid)] or server.pids()[:1],
                per_process=args.per_process,
                on_held=profile,
            )
        )
    finally:
        for spy in spies:
            spy.wait()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
