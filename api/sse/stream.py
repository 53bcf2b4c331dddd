"""Server-sent events for `GET /coordination_events` with `Accept: text/event-stream`.

A tiny ASGI middleware rather than a route, because the REST layer owns the
path for JSON: only GET requests to the path that ask for an event stream are
answered here; everything else passes through untouched.

Query parameters (PostgREST style, `eq` only):
  after=<cursor>           start after this cursor (`Last-Event-ID` wins when both are given)
  actor_id=eq.<id>         events of this actor
  event_type=eq.<type>     team_checkin or goal_story_update
  reference_id=eq.<id>     events about this check-in or update
  team_id=<id> | eq.<id>   events whose check-in, or whose update's goal story, belongs to the team

Each event is `id: <cursor>`, `event: coordination_event`, `data: <JSON document>`;
a comment line every keep-alive interval keeps proxies from closing an idle
stream. A subscriber that falls behind gets `event: error` with code
`subscriber_overflow` and `last_cursor`, and the stream ends; reconnecting
with `Last-Event-ID` (browsers do it by themselves) carries on without a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Coroutine, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.edge.replies import send_json
from api.entities import EVENT_TYPES
from api.errors import InvalidInput
from api.live.cursors import parse_cursor
from api.live.subscriber import SubscriberOverflow
from api.plan import Condition, Filter, all_of

log = logging.getLogger("coco.live")

PATH = "/coordination_events"
MEDIA_TYPE = "text/event-stream"
KEEPALIVE_S = 15.0
# Clients wait this long before reconnecting (the SSE `retry:` field).
RETRY_MS = 1000
EQ_FIELDS = ("actor_id", "event_type", "reference_id")


class BadRequest(Exception):
    pass


class EventStream:
    def __init__(self, app: ASGIApp, *, path: str = PATH, keepalive: float = KEEPALIVE_S) -> None:
        self.app = app
        self.path = path
        self.keepalive = keepalive
        self.frames = Frames()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].rstrip("/") != self.path
            or scope["method"] != "GET"
            or not wants_event_stream(scope)
        ):
            await self.app(scope, receive, send)
            return
        feed = getattr(scope["app"].state, "live", None)
        if feed is None:
            await send_json(send, 503, {"code": "unavailable", "message": "the live feed is not running"})
            return
        streaming = Streaming(send, self.keepalive, self.frames)
        try:
            where, after, team_id = parse_request(scope)
            streaming.events = feed.subscribe_batches(
                where=where, after=after, team_id=team_id, sink=streaming.write_now
            )
        except (BadRequest, InvalidInput) as error:
            await send_json(send, 400, {"code": "bad_request", "message": str(error)})
            return
        except RuntimeError as error:
            await send_json(send, 503, {"code": "unavailable", "message": str(error)})
            return
        await streaming.run(receive)


class Frames:
    """Each event's SSE frame, encoded once for every stream that sends it."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.cache: OrderedDict[int, bytes] = OrderedDict()
        # The feed offers one batch object to all subscribers of a filter: join its frames once.
        self._batch: Sequence[dict[str, Any]] | None = None
        self._joined = b""

    def batch(self, events: Sequence[dict[str, Any]]) -> bytes:
        """The frames of `events`, one after the other."""
        if len(events) == 1:
            return self(events[0])
        if events is not self._batch:  # holding the batch keeps its identity from being reused
            self._batch, self._joined = events, b"".join(map(self, events))
        return self._joined

    def __call__(self, event: dict[str, Any]) -> bytes:
        cursor = event["cursor"]
        frame = self.cache.get(cursor)
        if frame is None:
            frame = (
                f"id: {cursor}\nevent: coordination_event\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
            ).encode()
            self.cache[cursor] = frame
            if len(self.cache) > self.size:
                self.cache.popitem(last=False)
        return frame


class Streaming:
    """One response: events as they come, keep-alive comments, until the client leaves.

    Events reach it two ways, in one order. The feed hands a live batch straight to
    `write_now` when this stream is idle (nothing queued, nothing being written): the
    frames go to the socket from the feed's own loop, without waking this stream's task,
    which at a thousand streams is most of the cost of an event. Everything else (a
    replay, a batch that found the stream busy) comes through `events` to `forward`.
    """

    def __init__(self, send: Send, keepalive: float, frames: Frames) -> None:
        self.send = send
        self.events: AsyncGenerator[Sequence[dict[str, Any]], None] | None = None
        self.keepalive = keepalive
        self.frames = frames
        self.lock = asyncio.Lock()
        # A write that `write_now` started and the connection made wait (back-pressure):
        # it finishes before any other write starts.
        self.unfinished: asyncio.Future[None] | None = None
        self.started = False

    async def run(self, receive: Receive) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        await self.write(f": coordination events\nretry: {RETRY_MS}\n\n")
        self.started = True
        tasks: list[asyncio.Future[None]] = [
            asyncio.create_task(self.forward()),
            asyncio.create_task(self.beat()),
            asyncio.create_task(_disconnected(receive)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.started = False
            if self.unfinished is not None:
                tasks.append(self.unfinished)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.events is not None:
                with contextlib.suppress(Exception):
                    await self.events.aclose()
            with contextlib.suppress(OSError):
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def forward(self) -> None:
        assert self.events is not None
        try:
            async for batch in self.events:
                # Every event waiting for this stream in one write: one turn, one system call.
                await self.write(self.frames.batch(batch))
        except SubscriberOverflow as overflow:
            await self.error("subscriber_overflow", str(overflow), last_cursor=overflow.last_cursor)
        except InvalidInput as error:
            await self.error("bad_request", str(error))
        except Exception as error:  # the database went away for good, say: tell the client, who reconnects
            log.warning("event stream ended: %s", error)
            await self.error("unavailable", "the event stream was interrupted; reconnect with Last-Event-ID")

    async def error(self, code: str, message: str, **extra: Any) -> None:
        document = {"code": code, "message": message, **extra}
        await self.write(f"event: error\ndata: {json.dumps(document, separators=(',', ':'))}\n\n")

    async def beat(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive)
            await self.write(": keep-alive\n\n")

    async def write(self, text: str | bytes) -> None:
        body = text.encode() if isinstance(text, str) else text
        async with self.lock:
            if self.unfinished is not None:
                unfinished, self.unfinished = self.unfinished, None
                await unfinished
            await self.send({"type": "http.response.body", "body": body, "more_body": True})

    def write_now(self, batch: Sequence[dict[str, Any]]) -> bool:
        """Write `batch` from the caller's own turn, if nothing else is being written;
        False (nothing written) leaves it to `forward`."""
        if not self.started or self.lock.locked() or self.unfinished is not None:
            return False
        message = {"type": "http.response.body", "body": self.frames.batch(batch), "more_body": True}
        # Driven by hand, as a task would: ASGI servers write at once unless the client
        # is not reading, and only then does the send wait.
        # An ASGI server's send is a coroutine function: its call is a coroutine to drive.
        sending = cast(Coroutine[Any, Any, None], self.send(message))
        try:
            waiting = sending.send(None)
        except StopIteration:
            return True
        except Exception as error:  # whatever the write raised, the stream ends as if `forward` had met it
            log.warning("event stream ended: %s", error)
            self.unfinished = asyncio.ensure_future(_raise(error))
            return True
        self.unfinished = asyncio.ensure_future(_finish(sending, waiting))
        return True


async def _finish(coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Carry on a coroutine that was started by hand and had to wait for `waiting`."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                # As a task does with a future its coroutine yields: take over the wait
                # (the future still says someone is blocked on it, and refuses a second await).
                waiting._asyncio_future_blocking = False
                await waiting
        except BaseException as error:  # a cancellation, say: the coroutine gets it where it waits
            try:
                waiting = coroutine.throw(error)
            except StopIteration:
                return
            continue
        try:
            waiting = coroutine.send(None)
        except StopIteration:
            return


async def _raise(error: Exception) -> None:
    raise error


async def _disconnected(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


def wants_event_stream(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept":
            ranges = value.decode("latin-1").split(",")
            if any(r.split(";")[0].strip().lower() == MEDIA_TYPE for r in ranges):
                return True
    return False


def parse_request(scope: Scope) -> tuple[Filter | None, int | None, str | None]:
    """The filter, the cursor to start after, and the team, from the query and Last-Event-ID."""
    conditions: list[Filter] = []
    after: int | None = None
    team_id: str | None = None
    seen: set[str] = set()
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if name in seen:
            raise BadRequest(f"{name} is given more than once")
        seen.add(name)
        if name == "after":
            after = parse_cursor(value, "after")
        elif name in EQ_FIELDS:
            op, _, operand = value.partition(".")
            if op != "eq" or not _:
                raise BadRequest(f"{name} takes eq.<value> on the event stream (only eq is supported)")
            if name == "event_type" and operand not in EVENT_TYPES:
                raise BadRequest(f"event_type must be one of {', '.join(EVENT_TYPES)}")
            conditions.append(Condition(name, "eq", operand))
        elif name == "team_id":
            team_id = value[3:] if value.startswith("eq.") else value
            if not team_id:
                raise BadRequest("team_id needs a team id")
        else:
            raise BadRequest(
                f"the event stream does not take {name!r}; it takes after, "
                f"{', '.join(EQ_FIELDS)} (eq.<value>) and team_id"
            )
    for header, value in scope["headers"]:
        if header == b"last-event-id" and value.strip():
            after = parse_cursor(value.decode("latin-1").strip(), "Last-Event-ID")
    return all_of(*conditions), after, team_id
