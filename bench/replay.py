"""The event replay after an old cursor: `GET /coordination_events?after=<cursor>` as server-sent events.

What a client that was away for a while does (README.md, "Live events"): it resumes with its last cursor
and first gets what it missed, replayed from the table a page at a time, then the live events. The
stream never ends, so wrk cannot time it: here a few clients each open the stream, read until the
wanted number of replayed events have arrived, close it and open the next, for the measured seconds.
A request's latency is from sending it to reading its last wanted event's frame; the figures come back
as a `Measurement`, like wrk's.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from urllib.parse import urlsplit

from bench.loadgen import Load, Measurement
from bench.sse_client import Chunked, Frames

TOOL = "sse replay"
CLIENTS = 4  # each reads its stream to the end of the replay, as fast as the server sends it


class ReplayError(RuntimeError):
    pass


async def _one(host: str, port: int, after: int, wanted: int, timeout_s: float) -> list[int]:
    """Open the stream after `after`, read `wanted` events, close it; their cursors."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET /coordination_events?after={after} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        if not head.startswith(b"HTTP/1.1 200"):
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            raise ReplayError(f"the stream answered {status}")
        body, frames, cursors = Chunked(), Frames(), []
        while len(cursors) < wanted:
            data = await asyncio.wait_for(reader.read(65536), timeout_s)
            if not data:
                raise ReplayError(f"the stream ended after {len(cursors)} of {wanted} events")
            for kind, ident, _ in frames.feed(body.feed(data)):
                if kind != "coordination_event":
                    raise ReplayError(f"the stream sent {kind!r} instead of events")
                cursors.append(int(ident))
        return cursors[:wanted]
    finally:
        writer.close()


def check(base_url: str, after: int, wanted: int) -> str | None:
    """None when one replay brings the `wanted` events right after `after`, in cursor order."""
    split = urlsplit(base_url)
    try:
        cursors = asyncio.run(_one(split.hostname or "127.0.0.1", split.port or 80, after, wanted, 60))
    except (ReplayError, OSError, TimeoutError) as error:
        return str(error)
    if cursors != sorted(cursors) or cursors[0] <= after or len(set(cursors)) != wanted:
        return f"the replay is not in cursor order after {after}: {cursors[:5]}..."
    return None


async def _measure(host: str, port: int, after: int, wanted: int, seconds: float, timeout_s: float) -> Measurement:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                await _one(host, port, after, wanted, timeout_s)
            except (ReplayError, OSError, TimeoutError) as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.monotonic() - began
    return Measurement(
        tool=f"{TOOL} ({CLIENTS} clients, {wanted} events each)",
        requests=len(latencies),
        duration_s=round(elapsed, 2),
        requests_per_s=len(latencies) / elapsed if elapsed else 0.0,
        latency_ms=percentiles(latencies),
        errors=sum(errors.values()),
        error_detail=errors,
    )


def percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "mean": round(statistics.fmean(ordered), 2),
        "p50": at(0.5),
        "p90": at(0.9),
        "p99": at(0.99),
        "p99.9": at(0.999),
        "max": round(ordered[-1], 2),
    }


def run(base_url: str, after: int, wanted: int, load: Load) -> Measurement:
    """Warm up, then measure for the load's duration (its connections and threads do not apply)."""
    split = urlsplit(base_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    if load.warmup_s:
        asyncio.run(_measure(host, port, after, wanted, load.warmup_s, load.timeout_s))
    return asyncio.run(_measure(host, port, after, wanted, load.duration_s, load.timeout_s))
