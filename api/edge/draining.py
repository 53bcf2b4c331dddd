"""Graceful shutdown: streams that never end by themselves end when the server is told to stop.

On SIGTERM uvicorn stops accepting connections, lets requests in flight
finish, and only then runs the app's lifespan shutdown; but an event stream or
a GraphQL subscription never finishes, so each would hold the process until
the graceful timeout and then be cut without a close frame. So the signal
also starts draining here: WebSockets are closed with 1001 (going away) and
event streams (text/event-stream responses: the live feed, MCP's stream) are
ended after their last complete event, at once, while ordinary requests
carry on to their answers. Clients reconnect elsewhere (SSE with
Last-Event-ID, subscriptions with `after`) and miss nothing.

Shutdown always finishes: uvicorn cancels what is still running when the
graceful period ends, but a request that never yields the event loop (CPU
work between two awaits) cannot be cancelled, and neither uvicorn nor the
cleanup after it would ever run. So the signal also arms a watchdog thread:
a process still running `force_after_s` later logs why and ends itself
(running the `on_forced_exit` callbacks first: the embedded PostgreSQL of a
one-worker `coco serve` is stopped). A server in a thread of another process
(tests) never receives the signal, so it is never armed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any

log = logging.getLogger("coco.draining")

GOING_AWAY = 1001
FINISH_TIMEOUT_S = 1.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)
EVENT_STREAM = b"text/event-stream"


class Stream:
    """A request's task whose response never ends by itself, and how to end it cleanly."""

    def __init__(self, task: asyncio.Task[Any], finish: Callable[[], Awaitable[None]]) -> None:
        self.task = task
        self.finish = finish
        self.drained = False


# Called, in the order given, before a process that has to be ended exits.
_FORCED_EXIT: list[Callable[[], None]] = []


@contextlib.contextmanager
def on_forced_exit(callback: Callable[[], None]) -> Iterator[None]:
    """Run `callback` should this process be ended by the watchdog while the block runs."""
    _FORCED_EXIT.append(callback)
    try:
        yield
    finally:
        _FORCED_EXIT.remove(callback)


def _force_exit(sig: int, after_s: float) -> None:
    log.error(
        "still running %g s after the signal to stop (a request or the cleanup did not finish): ending the process",
        after_s,
    )
    for callback in list(_FORCED_EXIT):
        try:
            callback()
        except Exception:
            log.exception("while ending the process")
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(128 + sig)


class Draining:
    """Begins once, when the process starts to shut down, and ends the streams of this process.

    With `force_after_s`, a signal to stop also arms the watchdog (see the module)."""

    def __init__(self, *, force_after_s: float | None = None) -> None:
        self.started = False
        self.streams: set[Stream] = set()
        self.tasks: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.force_after_s = force_after_s
        self._watchdog: threading.Timer | None = None

    def arm(self, sig: int) -> None:
        """Should this process still run `force_after_s` from now, end it then."""
        if self.force_after_s is None or self._watchdog is not None:
            return
        self._watchdog = threading.Timer(self.force_after_s, _force_exit, args=(sig, self.force_after_s))
        self._watchdog.daemon = True
        self._watchdog.start()

    def finished(self) -> None:
        """The process has cleaned up: what follows (the embedded PostgreSQL's own stop) is not cut short."""
        if self._watchdog is not None:
            self._watchdog.cancel()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def begin(self, then: Callable[[], object] | None = None) -> bool:
        """Start draining (once); `then` runs on the loop once the streams are ended (at most
        FINISH_TIMEOUT_S later). False when draining had begun or cannot (no loop): `then` is not run."""
        if self.started or self._loop is None:
            return False
        self.started = True
        log.info(
            "shutting down: closing %d WebSocket(s) and event stream(s); requests in flight finish", len(self.streams)
        )
        # From a signal handler too: the streams are ended on the loop's own turn.
        self._loop.call_soon_threadsafe(lambda: self._keep(asyncio.ensure_future(self._drain_then(then))))
        return True

    async def _drain_then(self, then: Callable[[], object] | None) -> None:
        # The server hears of the signal only after the streams are ended: told at once, it could close
        # the WebSockets itself first (uvicorn: 1012, "service restart") instead of our 1001.
        drained = asyncio.ensure_future(self._drain())
        await asyncio.wait({drained}, timeout=FINISH_TIMEOUT_S)
        if then is not None:
            then()

    def _keep(self, task: asyncio.Future[Any]) -> None:
        """Hold the task until it is done (the loop keeps only a weak reference to it)."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def register(self, finish: Callable[[], Awaitable[None]]) -> Stream:
        """The current task serves a stream; once draining has begun, it is ended at once."""
        stream = Stream(asyncio.current_task(), finish)  # type: ignore[arg-type]
        self.streams.add(stream)
        if self.started:
            asyncio.get_running_loop().call_soon(lambda: self._keep(asyncio.ensure_future(self._end(stream))))
        return stream

    async def _drain(self) -> None:
        await asyncio.gather(*(self._end(stream) for stream in list(self.streams)), return_exceptions=True)

    async def _end(self, stream: Stream) -> None:
        if stream.drained or stream.task.done():
            return
        stream.drained = True
        # A client that stopped reading would hold the last write (flow control) for ever.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stream.finish(), FINISH_TIMEOUT_S)
        stream.task.cancel()

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """Begin draining on SIGTERM or SIGINT, then hand the signal to whoever handled it before
        (the server, which stops). Signals reach the main thread only; elsewhere nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

        def handle(sig: int, frame: FrameType | None) -> None:
            self.arm(sig)
            chained = previous[signal.Signals(sig)]
            if callable(chained) and self.begin(then=lambda: chained(sig, frame)):
                return
            self.begin()
            if callable(chained):
                chained(sig, frame)
            elif chained == signal.SIG_DFL:
                signal.default_int_handler(sig, frame) if sig == signal.SIGINT else _default(sig)

        for sig in SIGNALS:
            signal.signal(sig, handle)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _default(sig: int) -> None:
    signal.signal(sig, signal.SIG_DFL)
    signal.raise_signal(sig)
