"""A lean server-sent events load generator: many streams in one process, no HTTP library.

`python -m bench.sse_client HOST PORT STREAMS WANTED` opens STREAMS connections
to `GET /coordination_events` (Accept: text/event-stream), prints `ready` once
every stream has its response headers (the server subscribes before it sends
them), and when each stream has received WANTED events (or stdin closes, or
the deadline passes) prints one JSON line: for every cursor, the monotonic
times at which streams read its frame.

Each connection is an asyncio Protocol whose `data_received` decodes the
chunked body and the SSE frames in place: no task, no wake-up, no parsing
library per stream, so that at 1,000 streams the generator does not measure
itself. The receipt time is taken once per read, before any parsing: the
moment the bytes left the socket.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

PATH = "/coordination_events"


class BadStream(Exception):
    pass


class Chunked:
    """Decodes a `Transfer-Encoding: chunked` body fed in arbitrary pieces."""

    def __init__(self) -> None:
        self.buffer = b""
        self.remaining = 0  # bytes of the current chunk not yet read
        self.trailer = 0  # bytes of the CRLF after a chunk not yet read
        self.ended = False

    def between(self) -> bool:
        """At a chunk's start: nothing of an earlier one is still expected."""
        return not (self.buffer or self.remaining or self.trailer or self.ended)

    def feed(self, data: bytes) -> bytes:
        buffer = self.buffer + data if self.buffer else data
        out: list[bytes] = []
        at, size = 0, len(buffer)
        while at < size and not self.ended:
            if self.trailer:
                take = min(self.trailer, size - at)
                at += take
                self.trailer -= take
            elif self.remaining:
                take = min(self.remaining, size - at)
                out.append(buffer[at : at + take])
                at += take
                self.remaining -= take
                if not self.remaining:
                    self.trailer = 2
            else:
                line_end = buffer.find(b"\r\n", at)
                if line_end < 0:
                    break
                self.remaining = int(buffer[at:line_end].split(b";", 1)[0], 16)
                at = line_end + 2
                if not self.remaining:
                    self.ended = True
        self.buffer = buffer[at:] if not self.ended else b""
        return out[0] if len(out) == 1 else b"".join(out)


class Frames:
    """Splits an SSE byte stream into events: (event type, id, data) once each is complete."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[str, str, str]]:
        buffer = self.buffer + data if self.buffer else data
        events = []
        at = 0
        while True:
            end = buffer.find(b"\n\n", at)
            if end < 0:
                self.buffer = buffer[at:]
                return events
            kind, ident, data_lines = "message", "", []
            for line in buffer[at:end].split(b"\n"):
                if line.startswith(b":"):
                    continue
                name, _, value = line.partition(b":")
                if value.startswith(b" "):
                    value = value[1:]
                if name == b"data":
                    data_lines.append(value.decode())
                elif name == b"id":
                    ident = value.decode()
                elif name == b"event":
                    kind = value.decode()
            at = end + 2
            if data_lines:
                events.append((kind, ident, "\n".join(data_lines)))


EVENT_LINES = b"\nevent: coordination_event\ndata: "


def whole_events(data: bytes) -> list[int] | None:
    """The cursors of `data` when it is exactly one whole chunk holding only whole `coordination_event` frames
    (what the server writes per live batch), read with a few searches; None for anything else, which the
    decoders take. At 10,000 streams on the server's two cores, the client's own parsing delayed delivery."""
    head_end = data.find(b"\r\n", 0, 10)
    if head_end <= 0:
        return None
    try:
        size = int(data[:head_end], 16)
    except ValueError:
        return None
    at, end = head_end + 2, head_end + 2 + size
    if size == 0 or len(data) != end + 2 or not data.endswith(b"\r\n"):
        return None
    cursors = []
    while at < end:
        line_end = data.find(b"\n", at, end)
        if line_end < 0 or not data.startswith(b"id: ", at) or not data.startswith(EVENT_LINES, line_end):
            return None
        frame_end = data.find(b"\n\n", line_end + len(EVENT_LINES), end)
        if frame_end < 0:
            return None
        cursors.append(int(data[at + 4 : line_end]))
        at = frame_end + 2
    return cursors if at == end else None


class Lean(asyncio.Protocol):
    """One subscriber's connection, read in place: `on_ready` once it is subscribed, `on_event(cursor, t)` per
    event; the first failure of a process's connections sets their shared `failed`."""

    def __init__(
        self,
        request: bytes,
        on_ready: Callable[[], None],
        on_event: Callable[[int, float], None],
        check_documents: bool,
        failed: asyncio.Future[None],
    ) -> None:
        self.request = request
        self.on_ready = on_ready
        self.on_event = on_event
        self.check_documents = check_documents
        self.failed = failed
        self.head = b""
        self.transport: asyncio.Transport | None = None
        self.error: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] - a TCP transport (uvloop's is no asyncio.Transport)
        self.transport.write(self.request)

    def fail(self, error: str) -> None:
        self.error = self.error or error
        if not self.failed.done():
            self.failed.set_result(None)
        if self.transport is not None:
            self.transport.close()


class Stream(Lean):
    """An event stream: ready once its response started."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = False
        self.body = Chunked()
        self.frames = Frames()
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()  # CLOCK_MONOTONIC: comparable with the writer's clock in another process
        try:
            if not self.started:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, data = self.head[:end].decode("latin-1"), self.head[end + 4 :]
                status = head.split(" ", 2)[1]
                if status != "200" or "transfer-encoding: chunked" not in head.lower():
                    raise BadStream(f"the event stream answered: {head.splitlines()[0]!r}")
                self.started = True
                self.on_ready()
            elif not self.check_documents and self.body.between() and not self.frames.buffer:
                cursors = whole_events(data)
                if cursors is not None:
                    for cursor in cursors:
                        self.on_event(cursor, now)
                    return
            for kind, ident, document in self.frames.feed(self.body.feed(data)):
                if kind != "coordination_event":
                    raise BadStream(f"{kind}: {document}")
                cursor = int(ident)
                if self.check_documents and json.loads(document)["cursor"] != ident:
                    raise BadStream(f"frame id {ident} carries the document of another event: {document[:200]}")
                self.on_event(cursor, now)
        except (BadStream, ValueError, KeyError, IndexError) as error:
            self.fail(str(error))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass(frozen=True)
class Target:
    """A client process's command line: where, how many connections, how many events each waits for."""

    host: str
    port: int
    streams: int
    wanted: int
    timeout: float = 120.0


async def run(target: Target) -> None:
    request = (
        f"GET {PATH} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\nAccept: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()
    await hold(Stream, request, target, started="streams started")


async def hold(protocol: type[Lean], request: bytes, target: Target, *, started: str, settle_s: float = 0.0) -> None:
    """Open the target's connections (each a `protocol` sending `request`), say `ready` once every one is,
    then report each event's receipt times when each has had the events it waits for, or stdin closes."""
    host, port, streams, wanted, timeout = target.host, target.port, target.streams, target.wanted, target.timeout
    loop = asyncio.get_running_loop()
    receipts: dict[int, list[float]] = {}
    counts = [0] * streams
    ready = 0
    all_ready = loop.create_future()
    finished = 0
    all_finished = loop.create_future()
    failed: asyncio.Future[None] = loop.create_future()

    def on_ready() -> None:
        nonlocal ready
        ready += 1
        if ready == streams and not all_ready.done():
            all_ready.set_result(None)

    def on_event_of(i: int) -> Callable[[int, float], None]:
        def on_event(cursor: int, now: float) -> None:
            nonlocal finished
            receipts.setdefault(cursor, []).append(now)
            counts[i] += 1
            if counts[i] == wanted:
                finished += 1
                if finished == streams and not all_finished.done():
                    all_finished.set_result(None)

        return on_event

    protocols: list[Lean] = []
    for i in range(streams):
        _, made = await loop.create_connection(
            lambda i=i: protocol(request, on_ready, on_event_of(i), check_documents=i == 0, failed=failed), host, port
        )
        protocols.append(made)
    done, _ = await asyncio.wait([all_ready, failed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if all_ready not in done:
        errors = [p.error for p in protocols if p.error]
        raise SystemExit(f"only {ready} of {streams} {started}: {errors[:3]}")
    if settle_s:
        await asyncio.sleep(settle_s)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stdin_closed = asyncio.ensure_future(loop.run_in_executor(None, sys.stdin.read))
    await asyncio.wait([all_finished, stdin_closed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    errors = sorted({p.error for p in protocols if p.error})
    for connection in protocols:
        if connection.transport is not None:
            connection.transport.close()
    sys.stdout.write(json.dumps({"receipts": receipts, "errors": errors, "cpu_s": time.process_time()}) + "\n")
    sys.stdout.flush()


def main(run: Callable[[Target], Coroutine[Any, Any, None]] | None = None) -> None:
    """A client process's command line (host, port, streams, events wanted, timeout), for either
    transport: this one's `run` unless another is given."""
    run = run or globals()["run"]
    args = sys.argv[1:]
    target = Target(args[0], int(args[1]), int(args[2]), int(args[3]), *(float(a) for a in args[4:5]))
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(target))
    else:
        uvloop.run(run(target))
    # The stdin reader thread may still be blocked; nothing is left to do.
    sys.stdout.flush()


if __name__ == "__main__":
    main()
