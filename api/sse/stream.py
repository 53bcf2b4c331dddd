"""Server-sent events for `GET /coordination_events` with `Accept: text/event-stream`.

Not a route, because the REST layer owns the path for JSON: the edge
(api/edge/edge.py) hands only GET requests to the path that ask for an event
stream here; everything else goes on to the routes untouched.

Query parameters (PostgREST style, `eq` only):
  after=<cursor>           start after this cursor (`Last-Event-ID` wins when both are given)
  actor_id=eq.<id>         events of this actor
  event_type=eq.<type>     team_checkin or goal_story_update
  reference_id=eq.<id>     events about this check-in or update
  team_id=<id> | eq.<id>   events whose check-in, or whose update's goal story, belongs to the team

Each event is `id: <cursor>`, `event: coordination_event`, `data: <JSON document>`
(the CoCo document and its `cursor`, a string as in GraphQL);
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
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope, Send

from api.cache import BoundedCache, Caches
from api.edge.replies import send_json
from api.entities import EVENT_TYPES
from api.errors import InvalidInput
from api.live.cursors import parse_cursor
from api.live.feed import Attachment
from api.live.rounds import Handed, Rounds
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
    """The endpoint; the edge (api/edge/edge.py) hands it the requests `asks_for_events` picks."""

    def __init__(self, *, path: str = PATH, keepalive: float = KEEPALIVE_S, caches: Caches | None = None) -> None:
        self.path = path
        # This app's own: the frames encoded for its streams, what writes live batches to them, their keep-alives.
        self.frames = Frames()
        self.writer = Writer()
        self.beats = Beats(keepalive, self.writer)
        if caches is not None:
            caches.add(self.frames.cache)

    @property
    def keepalive(self) -> float:
        return self.beats.keepalive

    def asks_for_events(self, scope: Scope, wants_event_stream: bool) -> bool:
        """A GET of the path from a client that accepts an event stream; everything else is the REST layer's."""
        return wants_event_stream and scope["method"] == "GET" and scope["path"].rstrip("/") == self.path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        feed = getattr(scope["app"].state, "live", None)
        if feed is None:
            await send_json(send, 503, {"code": "unavailable", "message": "the live feed is not running"})
            return
        streaming = Streaming(send, self.frames, self.writer)
        try:
            where, after, team_id = parse_request(scope)
            streaming.events = feed.attach(
                where=where, after=after, team_id=team_id, sink=streaming.hand_over, wake=streaming.wake
            )
        except (BadRequest, InvalidInput) as error:
            await send_json(send, 400, {"code": "bad_request", "message": str(error)})
            return
        except RuntimeError as error:
            await send_json(send, 503, {"code": "unavailable", "message": str(error)})
            return
        await streaming.run(receive, self.beats)


FRAMES_KEPT = 4096
KEEP_ALIVE: Message = {"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True}


class Frames:
    """Each event's SSE frame, encoded once for every stream that sends it."""

    def __init__(self, size: int = FRAMES_KEPT) -> None:
        self.cache: BoundedCache[int, bytes] = BoundedCache("sse_frames", size)
        # The feed offers one batch object to all subscribers of a filter: its frames are joined once,
        # and the one message carrying them is what the writer sends to each of its streams.
        self._batch: Sequence[dict[str, Any]] | None = None
        self._joined = b""
        self._message: Message = {}

    def batch(self, events: Sequence[dict[str, Any]]) -> bytes:
        """The frames of `events`, one after the other."""
        if events is not self._batch:  # holding the batch keeps its identity from being reused
            joined = self(events[0]) if len(events) == 1 else b"".join(map(self, events))
            self._batch, self._joined = events, joined
            self._message = {"type": "http.response.body", "body": joined, "more_body": True}
        return self._joined

    def message(self, events: Sequence[dict[str, Any]]) -> Message:
        """`batch` as the ASGI message that sends it (shared: never modified)."""
        self.batch(events)
        return self._message

    def __call__(self, event: dict[str, Any]) -> bytes:
        cursor = event["cursor"]
        frame = self.cache.get(cursor)
        if frame is None:
            # Cursors are opaque: a string, as GraphQL's `cursor` and the `id:` line carry it.
            document = json.dumps({**event, "cursor": str(cursor)}, separators=(",", ":"))
            frame = f"id: {cursor}\nevent: coordination_event\ndata: {document}\n\n".encode()
            self.cache.put(cursor, frame)
        return frame


class Writer(Rounds[tuple["Streaming", Message]]):
    """Writes the live batches the feed hands to idle streams, and their keep-alives: all of them from one
    task (`api.live.rounds`), the feed's sink only queuing a stream's frames."""

    async def write(self, item: tuple[Streaming, Message], round_: asyncio.Task[None]) -> None:
        stream, message = item
        if not stream.started:  # the stream ended while its frames waited here
            stream.written()
            return
        stream.carrier = round_
        try:
            await stream.send(message)
        except Exception as error:  # whatever the write raised, that stream ends
            stream.broken(error)
        finally:
            stream.written()

    def abandon(self, stream: Streaming) -> None:
        """Cancel the write of `stream`'s frames that waits on its client (the stream has ended)."""
        task = stream.carrier
        if task is None:
            return  # not started yet: the round drops the frames of an ended stream
        if self.round is task:  # not handed on yet: the others' frames must not go with it
            self.hand_on(task)
        task.cancel()


class Beats:
    """The keep-alive comments of all of an app's streams, from one timer.

    Every half interval it looks at each stream: one that wrote nothing since the last look
    gets a comment (through the writer, as a live batch), so no stream is silent for longer
    than the interval, and a stream that events keep busy gets none."""

    def __init__(self, keepalive: float, writer: Writer) -> None:
        self.keepalive = keepalive
        self.writer = writer
        self.streams: set[Streaming] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, stream: Streaming) -> None:
        self.streams.add(stream)
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._beat())

    def discard(self, stream: Streaming) -> None:
        self.streams.discard(stream)

    async def _beat(self) -> None:
        me = asyncio.current_task()
        try:
            while self.streams:
                await asyncio.sleep(self.keepalive / 2)
                for stream in list(self.streams):
                    if stream.wrote:
                        stream.wrote = False
                    elif stream.idle():
                        stream.busy = True
                        self.writer.push((stream, KEEP_ALIVE))
        finally:
            if self.task is me:
                self.task = None


class Streaming(Handed):
    """One response: events as they come, keep-alive comments, until the client leaves.

    A stream has one task, the request's own, and it waits for the client to leave (ASGI's
    `http.disconnect`): at ten thousand streams a worker, a task, a future and a closure
    more per stream are tens of megabytes. Live batches that find the stream idle are handed
    over by the feed (`hand_over`) and written by the app's `Writer`; keep-alives by the
    app's `Beats`, through the same writer. Everything else (the replay, a batch that found
    the stream busy, the end of the subscription) calls `wake`, which interrupts the wait
    (by cancelling it, taken back at once) for the task to write what is queued, in order
    after whatever the writer holds of the stream, and then to wait again.
    """

    __slots__ = (
        "carrier",
        "ending",
        "events",
        "frames",
        "poked",
        "pulling",
        "send",
        "started",
        "task",
        "waiting",
        "writer",
        "wrote",
    )

    def __init__(self, send: Send, frames: Frames, writer: Writer) -> None:
        super().__init__()
        self.send = send
        self.events: Attachment | None = None
        self.frames = frames
        self.writer = writer
        self.task: asyncio.Task[Any] | None = None
        self.started = False
        # `carrier`: the round writing the frames handed to the writer (`busy`), once one is.
        self.carrier: asyncio.Task[None] | None = None
        # Something is queued for the task to write (or it is writing): the feed's batches wait behind it.
        self.pulling = False
        # The task waits for the client to leave; `poked`: that wait is being interrupted by `wake`.
        self.waiting = False
        self.poked = False
        # The writer's send failed: the stream ends.
        self.ending = False
        # Something was written since the keep-alive timer last looked.
        self.wrote = True

    async def run(self, receive: Receive, beats: Beats) -> None:
        events, task = self.events, asyncio.current_task()
        assert events is not None and task is not None
        self.task = task
        try:
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
            await self.write(f": coordination events\nretry: {RETRY_MS}\n\n".encode())
            self.started = True
            beats.add(self)
            # One loop in this frame (no helper coroutine): a frame more per held stream is a few hundred bytes.
            while await self.forward(events, receive) and not self.ending and not events.ended:
                # Nothing queued: from here until `wake`, the feed hands batches to the writer.
                self.pulling = False
                self.waiting = True
                try:
                    message: Message = await receive()
                except asyncio.CancelledError:
                    if not self.poked or task.uncancel():  # not (only) `wake`'s: the request is cancelled
                        raise
                    continue
                finally:
                    self.waiting = self.poked = False
                if message["type"] == "http.disconnect":
                    return
        finally:
            self.started = False
            beats.discard(self)
            if self.busy:
                self.writer.abandon(self)
            events.close()
            with contextlib.suppress(OSError):
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def forward(self, events: Attachment, receive: Receive) -> bool:
        """Write what is queued for this stream; False when the stream is to end (an error was sent, or
        the client left)."""
        self.pulling = True
        # From a second batch on (a replay, read a page at a time), the client's disconnect is watched: the
        # server drops what is sent to a client that left, so nothing else would stop the reading.
        watch: asyncio.Task[None] | None = None
        first = True
        try:
            async with contextlib.aclosing(events.pending()) as batches:
                async for batch in batches:
                    if watch is not None and watch.done():
                        return False
                    if watch is None and not first:
                        watch = asyncio.get_running_loop().create_task(_until_disconnect(receive))
                    first = False
                    # Every event waiting for this stream in one write: one turn, one system call.
                    await self.write(self.frames.batch(batch))
        except SubscriberOverflow as overflow:
            await self.error("subscriber_overflow", str(overflow), last_cursor=str(overflow.last_cursor))
            return False
        except InvalidInput as error:
            await self.error("bad_request", str(error))
            return False
        except Exception as error:  # the database went away for good, say: tell the client, who reconnects
            log.warning("event stream ended: %s", error)
            await self.error("unavailable", "the event stream was interrupted; reconnect with Last-Event-ID")
            return False
        finally:
            left = watch is not None and watch.done()
            if watch is not None:
                watch.cancel()
        return not left

    async def error(self, code: str, message: str, **extra: Any) -> None:
        document = {"code": code, "message": message, **extra}
        await self.write(f"event: error\ndata: {json.dumps(document, separators=(',', ':'))}\n\n".encode())

    async def write(self, body: bytes) -> None:
        """Write from this stream's task, after whatever the writer holds of it."""
        await self.until_written()
        self.wrote = True
        await self.send({"type": "http.response.body", "body": body, "more_body": True})

    def idle(self) -> bool:
        """Nothing of this stream is being written or waits to be."""
        return self.started and not self.busy and not self.pulling

    def hand_over(self, batch: Sequence[dict[str, Any]]) -> bool:
        """The feed's sink: `batch`'s frames to the writer, if nothing else of this stream is being
        written; False (nothing taken) leaves the batch queued, and `wake` follows."""
        if not self.idle():
            return False
        self.busy = self.wrote = True
        self.writer.push((self, self.frames.message(batch)))
        return True

    def wake(self) -> None:
        """The feed queued something for this stream, or ended its subscription: its task takes over."""
        self.pulling = True
        if self.waiting and not self.poked and self.task is not None:
            self.poked = True
            self.task.cancel()

    def written(self) -> None:
        self.carrier = None
        super().written()

    def broken(self, error: Exception) -> None:
        log.warning("event stream ended: %s", error)
        self.ending = True
        self.wake()


async def _until_disconnect(receive: Receive) -> None:
    """Once the client has left (a receive that fails says so too: nothing more can be sent to it)."""
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass


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
