"""The subscriptions row: commit-to-receipt latency of live events over server-sent events.

For each subscriber count, the streams are opened against a running server
(`GET /coordination_events`, Accept: text/event-stream) by lean client
processes (bench/sse_client.py), spread so that no one process parses more
than `STREAMS_PER_PROCESS` streams. Once every stream has its headers (so is
subscribed), check-ins are written one at a time through the write service in
this process, `pace` apart; each event's latency, for each stream, is from the
writer's commit returning to the stream reading the event's frame (both
CLOCK_MONOTONIC, comparable across processes on one machine).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from api.store.database import create_engine
from api.store.writes import WriteService

ROOT = Path(__file__).resolve().parents[1]
KEY = "subscriptions"
# The same row over GraphQL subscriptions (WebSocket, graphql-transport-ws): its own key in `--only` and the JSON.
GRAPHQL_KEY = "subscriptions_graphql"
SIZES = (1, 100, 1000)
TARGET_P99_MS = {"sse": 50.0, "graphql": 100.0}
TARGET_AT = 1000
STREAMS_PER_PROCESS = 500
# Events written before measuring (the first frames warm caches and connections).
WARMUP_EVENTS = 3
# Each transport's client process (same command line and output) and how the table names it.
CLIENTS = {"sse": "bench.sse_client", "graphql": "bench.ws_client"}
TITLES = {
    "sse": "SSE (GET /coordination_events)",
    "graphql": "GraphQL over WebSocket (subscription coordinationEvents, graphql-transport-ws)",
}


@dataclass
class Plan:
    """How many events to write to how many subscribers, how far apart."""

    subscribers: int
    events: int
    pace_s: float


def default_plans(sizes: Sequence[int] = SIZES, events: int = 200, pace_s: float = 0.02) -> list[Plan]:
    """Fewer, wider-spaced events for many subscribers: 1,000 streams x 50 events/s would
    measure a backlog on two cores, not the latency of one event."""
    plans = []
    for n in sizes:
        if n <= 100:
            plans.append(Plan(n, events, pace_s))
        else:
            plans.append(Plan(n, max(20, events // 2), max(pace_s, n / 20_000)))
    return plans


@dataclass
class Result:
    subscribers: int
    events: int
    pace_ms: float
    client_processes: int
    receipts: int
    expected: int
    latency_ms: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # CPU time per event written (warm-up included) of the server's processes and of the
    # client processes: what the fan-out costs, whatever else the machine was doing.
    server_cpu_ms_per_event: float | None = None
    client_cpu_ms_per_event: float | None = None

    @property
    def complete(self) -> bool:
        return self.receipts == self.expected and not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


@dataclass
class Report:
    transport: str
    results: list[Result]
    target_at: int = TARGET_AT
    skipped: str | None = None
    load_average: list[float] = field(default_factory=list)

    @property
    def target_p99_ms(self) -> float:
        """Issue 19's: SSE p99 under 50 ms at 1,000 subscribers, GraphQL over WebSocket under 100 ms."""
        return TARGET_P99_MS[self.transport]

    @property
    def met(self) -> bool | None:
        at = next((r for r in self.results if r.subscribers == self.target_at), None)
        if at is None or not at.latency_ms:
            return None
        return at.complete and at.latency_ms["p99"] < self.target_p99_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "target_p99_ms": self.target_p99_ms,
            "target_at": self.target_at,
            "met": self.met,
            "skipped": self.skipped,
            "load_average": self.load_average,
            "results": [r.as_dict() for r in self.results],
        }


def percentiles(latencies: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds of latencies in seconds."""
    ordered = sorted(latencies)
    if len(ordered) == 1:
        only = ordered[0] * 1000
        return {"p50": only, "p95": only, "p99": only, "max": only}
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000, "max": ordered[-1] * 1000}


def latencies_of(committed: dict[int, float], receipts: dict[int, list[float]]) -> list[float]:
    return [t - committed[cursor] for cursor, times in receipts.items() if cursor in committed for t in times]


class Clients:
    """Client processes holding `n` streams between them."""

    def __init__(
        self,
        base_url: str,
        n: int,
        wanted: int,
        timeout: float,
        transport: str = "sse",
        per_process: int = STREAMS_PER_PROCESS,
    ) -> None:
        self.module = CLIENTS[transport]
        self.per_process = per_process
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.n, self.wanted, self.timeout = n, wanted, timeout
        self.processes: list[asyncio.subprocess.Process] = []

    @property
    def shares(self) -> list[int]:
        count = max(1, math.ceil(self.n / self.per_process))
        return [self.n // count + (1 if i < self.n % count else 0) for i in range(count)]

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        for share in self.shares:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                self.host,
                str(self.port),
                str(share),
                str(self.wanted),
                str(self.timeout),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 30,
            )
            self.processes.append(process)
        for process in self.processes:
            assert process.stdout is not None
            try:
                line = await asyncio.wait_for(process.stdout.readline(), self.timeout)
            except TimeoutError:
                raise RuntimeError(f"the {self.module} streams did not open within {self.timeout:.0f} s") from None
            if line.strip() != b"ready":
                raise RuntimeError(f"a {self.module} process did not get its streams (exit {process.returncode})")

    async def collect(self) -> tuple[dict[int, list[float]], list[str], float]:
        """Every stream's receipts by cursor, the errors, and the clients' CPU seconds."""
        receipts: dict[int, list[float]] = {}
        errors: list[str] = []
        cpu_s = 0.0
        for process in self.processes:
            assert process.stdout is not None and process.stdin is not None
            line = await asyncio.wait_for(process.stdout.readline(), self.timeout + 30)
            process.stdin.close()
            await process.wait()
            if not line:
                errors.append(f"a {self.module} process exited with {process.returncode} without results")
                continue
            answer = json.loads(line)
            errors.extend(answer["errors"])
            cpu_s += answer["cpu_s"]
            for cursor, times in answer["receipts"].items():
                receipts.setdefault(int(cursor), []).extend(times)
        return receipts, errors, cpu_s

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def write_events(writer: WriteService, n: int, pace_s: float, actor_id: str, team_id: str) -> dict[int, float]:
    committed: dict[int, float] = {}
    for i in range(n):
        result = await writer.create(
            "team_checkin",
            [{"actor_id": actor_id, "team_id": team_id, "date": "2026-05-22", "next": [f"live event {i}"]}],
        )
        committed[result.events[0]["seq"]] = time.perf_counter()
        await asyncio.sleep(pace_s)
    return committed


def cpu_seconds(pids: Sequence[int]) -> float:
    """User and system CPU time the processes have used so far (those still running)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def measure_one(
    base_url: str,
    writer: WriteService,
    plan: Plan,
    *,
    actor_id: str,
    team_id: str,
    server_pids: Callable[[], list[int]] | None = None,
    transport: str = "sse",
) -> Result:
    wanted = WARMUP_EVENTS + plan.events
    clients = Clients(base_url, plan.subscribers, wanted, timeout=60 + wanted * plan.pace_s * 2, transport=transport)
    await clients.start()
    try:
        pids = server_pids() if server_pids else []
        server_cpu = cpu_seconds(pids)
        await write_events(writer, WARMUP_EVENTS, plan.pace_s, actor_id, team_id)
        committed = await write_events(writer, plan.events, plan.pace_s, actor_id, team_id)
        receipts, errors, client_cpu = await clients.collect()
        server_cpu = cpu_seconds(pids) - server_cpu
    finally:
        await clients.stop()
    latencies = latencies_of(committed, receipts)
    return Result(
        plan.subscribers,
        plan.events,
        plan.pace_s * 1000,
        len(clients.shares),
        len(latencies),
        plan.events * plan.subscribers,
        percentiles(latencies) if latencies else {},
        errors[:5],
        server_cpu_ms_per_event=round(server_cpu * 1000 / wanted, 2) if pids else None,
        client_cpu_ms_per_event=round(client_cpu * 1000 / wanted, 2),
    )


async def measure(
    base_url: str,
    database_url: str,
    plans: Sequence[Plan],
    *,
    actor_id: str,
    team_id: str,
    server_pids: Callable[[], list[int]] | None = None,
    transport: str = "sse",
) -> Report:
    """Every plan in turn against the server at `base_url` (whose processes `server_pids`
    lists, for their CPU time), writing into `database_url`."""
    engine = create_engine(database_url, pool_size=2)
    writer = WriteService(engine)
    results = []
    try:
        for plan in plans:
            results.append(
                await measure_one(
                    base_url,
                    writer,
                    plan,
                    actor_id=actor_id,
                    team_id=team_id,
                    server_pids=server_pids,
                    transport=transport,
                )
            )
    finally:
        await engine.dispose()
    return Report(transport, results, load_average=[round(x, 2) for x in os.getloadavg()])


def table(report: Report | None) -> list[str]:
    """The subscriptions section of the printed table."""
    if report is None:
        return []
    out = [
        f"subscriptions over {TITLES.get(report.transport, report.transport)}, commit-to-receipt ms "
        f"(target p99 < {report.target_p99_ms:.0f} ms at {report.target_at:,} subscribers)"
    ]
    if report.skipped:
        out.append(f"  not measured: {report.skipped}")
        return out
    header = [
        "subscribers",
        "events",
        "pace ms",
        "clients",
        "receipts",
        "p50",
        "p95",
        "p99",
        "max",
        "target",
        "CPU ms/event: server",
        "clients",
    ]
    lines = [header]
    for r in report.results:
        verdict = ""
        if r.subscribers == report.target_at:
            verdict = "ok" if report.met else "MISSED"
        figures = [f"{r.latency_ms[k]:.1f}" for k in ("p50", "p95", "p99", "max")] if r.latency_ms else ["-"] * 4
        cpu = [f"{ms:.1f}" if ms is not None else "-" for ms in (r.server_cpu_ms_per_event, r.client_cpu_ms_per_event)]
        lines.append(
            [
                f"{r.subscribers:,}",
                str(r.events),
                f"{r.pace_ms:.0f}",
                str(r.client_processes),
                f"{r.receipts:,}/{r.expected:,}" + ("" if r.complete else " !"),
                *figures,
                verdict,
                *cpu,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out.extend("  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(line)).rstrip() for line in lines)
    for r in report.results:
        for error in r.errors:
            out.append(f"  {r.subscribers:,} subscribers: {error}")
    return out
