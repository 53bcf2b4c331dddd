"""The webhooks row: commit-to-receipt lag of webhook deliveries at 100 events/s, and server CPU per delivery.

A receiver (a lean asyncio HTTP/1.1 server on a thread of this process, answering
200 at once) is registered as a webhook through the store; once the first warm-up event
reaches it (a server process holds the webhook's lease), check-ins are written
one at a time through the write service, `1 / rate` apart. An event's lag runs
from its commit returning here to the receiver reading its request, both on
this process's clock. The server's CPU time over the run, divided by the events
delivered, is its cost per delivery (the live feed's reads in every worker
included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from api.store import WebhookStore
from api.store.database import create_engine
from api.store.writes import WriteService
from api.webhooks.manage import WebhookAdmin
from bench.subscriptions import cpu_seconds, percentiles

KEY = "webhooks"
RATE = 100.0
WARMUP_EVENTS = 5


class Receiver(asyncio.Protocol):
    """Reads requests (Content-Length bodies, kept-alive connections) and answers 200 to each."""

    def __init__(self, receipts: dict[int, float], arrived: Callable[[], None]) -> None:
        self.receipts = receipts
        self.arrived = arrived
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").lower()
            length = next(
                (int(line.split(":", 1)[1]) for line in head.split("\r\n") if line.startswith("content-length:")), 0
            )
            if len(self.buffer) < end + 4 + length:
                return
            body, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
            cursor = json.loads(body)["data"]["cursor"]
            self.receipts.setdefault(cursor, time.perf_counter())
            self.arrived()
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")


class ReceiverThread:
    """The receiver on an event loop of its own, in a thread: answering never waits for the writer's turn."""

    def __init__(self, arrived: Callable[[], None]) -> None:
        self.receipts: dict[int, float] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-receiver", daemon=True)
        self.arrived = arrived

    async def __aenter__(self) -> int:
        """The port it listens on."""
        self.thread.start()

        async def serve() -> asyncio.Server:
            return await self.loop.create_server(lambda: Receiver(self.receipts, self.arrived), "127.0.0.1", 0)

        self.server = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(serve(), self.loop))
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 10)


@dataclass
class Report:
    events: int = 0
    rate: float = RATE
    delivered: int = 0
    lag_ms: dict[str, float] = field(default_factory=dict)
    server_cpu_ms_per_delivery: float | None = None
    skipped: str | None = None
    load_average: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def measure(
    database_url: str, events: int, *, actor_id: str, team_id: str, server_pids: Callable[[], list[int]] | None = None
) -> Report:
    receipt = asyncio.Event()
    here = asyncio.get_running_loop()
    receiver = ReceiverThread(lambda: here.call_soon_threadsafe(receipt.set))
    receipts = receiver.receipts
    port = await receiver.__aenter__()
    engine = create_engine(database_url, pool_size=2)
    store = WebhookStore(engine)
    hook = await WebhookAdmin(store, allow_private=True).create(f"http://127.0.0.1:{port}/hook", description="bench")
    writer = WriteService(engine)

    async def write(n: int) -> dict[int, float]:
        committed: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(n):
            result = await writer.create(
                "team_checkin", [{"actor_id": actor_id, "team_id": team_id, "date": "2026-05-22", "next": [f"w{i}"]}]
            )
            committed[result.events[0]["seq"]] = time.perf_counter()
            # Paced from the start, so that slow writes do not lower the rate.
            await asyncio.sleep(max(0.0, start + (i + 1) / RATE - time.perf_counter()))
        return committed

    async def arrived(cursors: list[int], within_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while not all(c in receipts for c in cursors):
                    receipt.clear()
                    await receipt.wait()

    try:
        warmup = await write(WARMUP_EVENTS)
        # A server process claims the new webhook at its next tick.
        await arrived(list(warmup), 30)
        if not all(c in receipts for c in warmup):
            return Report(skipped="the warm-up events did not arrive within 30 s")
        pids = server_pids() if server_pids else []
        cpu = cpu_seconds(pids)
        committed = await write(events)
        await arrived(list(committed), 60)
        cpu = cpu_seconds(pids) - cpu
    finally:
        await store.delete(hook.id)
        await receiver.__aexit__()
        await engine.dispose()
    lags = [receipts[c] - t for c, t in committed.items() if c in receipts]
    delivered = len(lags)
    return Report(
        events=events,
        delivered=delivered,
        lag_ms=percentiles(lags) if lags else {},
        server_cpu_ms_per_delivery=round(cpu * 1000 / delivered, 2) if pids and delivered else None,
        load_average=[round(x, 2) for x in os.getloadavg()],
    )


def table(report: Report | None) -> list[str]:
    if report is None:
        return []
    out = [f"webhooks: commit-to-receipt lag at {report.rate:.0f} events/s to a local receiver"]
    if report.skipped:
        return [*out, f"  not measured: {report.skipped}"]
    lag = report.lag_ms
    figures = " / ".join(f"{lag[k]:.1f}" for k in ("p50", "p95", "p99", "max")) if lag else "-"
    cpu = f"{report.server_cpu_ms_per_delivery:.2f}" if report.server_cpu_ms_per_delivery is not None else "-"
    complete = "" if report.delivered == report.events else " !"
    out.append(
        f"  delivered {report.delivered:,}/{report.events:,}{complete}  lag p50 / p95 / p99 / max ms: {figures}"
        f"  server CPU ms per delivery: {cpu}"
    )
    return out
