"""Subscriptions at scale: each event batch is read once per distinct selection and access scope, and every
subscriber sharing them is sent the same payload text.

The subscription resolver (api/graphql/subscriptions.py) yields each event of a live-feed batch as a
`LiveEvent`. graphql-core then executes the operation once per subscriber and event; `SharedExecutor` (the
executor of every schema of api/graphql/schema.py) answers that execution, when the subscription's selection
compiles (`compiled.compile_events`), with the event's payload text from `Renders`: the first subscriber to
ask for a batch reads the whole batch with its nested selections in one statement, under its own access
scope, and the others with the same compiled selection and the same scope wait for that read and take its
text. The live feed hands the same batch object to every subscriber of one filter (scope included), so a
batch is read once per (selection, scope) whatever the number of subscribers. Strawberry's protocol handlers
then put the `Rendered` payload in their message, and the route's `encode_json` splices it in as it is
(`frame`): only the subscription id differs from one subscriber's frame to the next.

Over WebSocket a compiled subscription goes further: its resolver sends each batch's frames itself, without
graphql-core's execution and Strawberry's result handling. Over the legacy graphql-ws it does so through its
operation's handler (`Direct`), a wake-up and a send per subscriber and batch. Over graphql-transport-ws
(`Pushed`), as SSE streams do, a live batch that finds the subscription waiting is handed over by the feed
itself, its shared read started then, in the feed's turn; one task (`FrameWriter`) writes every handed
batch's frames once its read is done, straight to each connection's ASGI send, and no subscriber's task wakes.
What a compiled read cannot answer, and every error, still goes the executor's way.

The resolvers stay the reference: a selection that does not compile, a client that asked for the resolvers
(`Context.resolvers_only`) or a batch whose read failed is executed through them, event by event, with fresh
loaders, as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult, OperationType
from starlette.types import Send

from api.graphql.compiled import EventsView, NotPlannable, compile_events
from api.graphql.context import Context
from api.graphql.loaders import Loaders
from api.graphql.strawberry_adapter import LegacyWSHandler, StrawberryExecutor, TransportWSHandler, operation_open
from api.live.rounds import Handed, Rounds
from api.store import current_scope

log = logging.getLogger("coco.graphql.fanout")

# Payloads kept for the sharers still to ask (counted in events: a replayed page holds hundreds): a batch is
# asked for by its sharers within the feed's fan-out of it, so this covers thousands of distinct filters.
EVENTS_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event of a live-feed batch, as the subscription resolver yields it."""

    batch: Sequence[dict[str, Any]]
    index: int
    to_object: Callable[[dict[str, Any]], Any]

    def as_object(self) -> Any:
        return self.to_object(self.batch[self.index])


class Rendered:
    """A subscription payload's JSON text (`{"data": ...}`), shared by every subscriber sent it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


# The message types that carry a payload's data: graphql-transport-ws `next`, graphql-ws `data`.
KINDS = {kind: f',"type":"{kind}","payload":' for kind in ("next", "data")}
_string: Callable[[str], str] = json.encoder.encode_basestring_ascii


def frame(message: object) -> str | None:
    """A protocol message whose payload's data is `Rendered` (graphql-transport-ws `next`, graphql-ws `data`),
    as JSON text with the payload spliced in; None for any other message."""
    if type(message) is not dict:
        return None
    payload = message.get("payload")
    if type(payload) is not dict or type(payload.get("data")) is not Rendered:
        return None
    text: str = payload["data"].text
    if len(payload) == 1 and len(message) == 3 and type(message.get("id")) is str and message.get("type") in KINDS:
        # The frame of every subscriber, built once per subscriber and event: nothing but the id to encode.
        return '{"id":' + _string(message["id"]) + KINDS[message["type"]] + text + "}"
    extra = {k: v for k, v in payload.items() if k != "data"}
    if extra:
        text = text[:-1] + "," + json.dumps(extra, separators=(",", ":"))[1:]
    head = {k: v for k, v in message.items() if k != "payload"}
    return json.dumps(head, separators=(",", ":"))[:-1] + ',"payload":' + text + "}"


class Renders:
    """The payload texts of recent batches, by compiled selection, access scope and batch."""

    def __init__(self, size: int = EVENTS_KEPT) -> None:
        self.size = size
        self._kept = 0  # events in the batches kept
        self._entries: OrderedDict[tuple[str, int], tuple[Sequence[Any], asyncio.Task[list[str]]]] = OrderedDict()
        # Statements run for batches (one per batch, selection and scope): what the sharing saves is visible.
        self.reads = 0

    async def texts(
        self, events: EventsView, fingerprint: str, batch: Sequence[dict[str, Any]], reader: Any
    ) -> list[str]:
        """The payload of each event of `batch`, read once for every caller with this `fingerprint` (the compiled
        selection and the access scope). The read runs under the first caller's scope, which every sharer has."""
        task = self.start(events, fingerprint, batch, reader)
        if task.done():  # most sharers: read while they waited for their turn
            return task.result()
        # One sharer leaving (its subscriber gone) does not cancel the read the others wait for.
        return await asyncio.shield(task)

    def start(
        self,
        events: EventsView,
        fingerprint: str,
        batch: Sequence[dict[str, Any]],
        reader: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[list[str]]:
        """The read of `batch`'s payloads for `fingerprint`, started now unless it was already: under the running
        task's access scope, or under `context`'s (a subscriber's, when the frame writer reads for it)."""
        key = (fingerprint, id(batch))
        entry = self._entries.get(key)
        if entry is None or entry[0] is not batch:  # (an id can be reused once its batch is gone)
            task = asyncio.get_running_loop().create_task(self._read(events, batch, reader), context=context)
            task.add_done_callback(_retrieve)
            if key in self._entries:
                self._kept -= len(self._entries.pop(key)[0])
            entry = self._entries[key] = (batch, task)
            self._kept += len(batch)
            while self._kept > self.size and len(self._entries) > 1:
                self._kept -= len(self._entries.popitem(last=False)[1][0])
        return entry[1]

    async def _read(self, events: EventsView, batch: Sequence[dict[str, Any]], reader: Any) -> list[str]:
        self.reads += 1
        rows = json.loads(await reader.json_array(events.read([doc["cursor"] for doc in batch])))
        if len(rows) != len(batch):
            raise LookupError(f"{len(rows)} of a batch of {len(batch)} events read")
        head = '{"data":{' + json.dumps(events.key) + ":"
        return [head + json.dumps(row, separators=(",", ":")) + "}}" for row in rows]


class _SharedEvent:
    """One event of a compiled subscription, executed as graphql-core executes a per-event executor."""

    __slots__ = ("compiled", "event", "executor")

    def __init__(self, executor: SharedExecutor, event: LiveEvent, compiled: tuple[EventsView, str]) -> None:
        self.executor, self.event, self.compiled = executor, event, compiled

    async def execute_operation(self, serially: bool | None = None) -> Any:
        executor = self.executor
        events, fingerprint = self.compiled
        try:
            texts = await RENDERS.texts(events, fingerprint, self.event.batch, executor.context_value.reader)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # The resolvers read the event again, with their own errors if the database is failing.
            log.debug("subscription %s: a batch's compiled read failed (%s)", executor.operation_name(), error)
            per_event = StrawberryExecutor.build_per_event_executor(executor, self.event)
            result = per_event.execute_operation(serially)
            return await result if executor.is_awaitable(result) else result
        return ExecutionResult(data=Rendered(texts[self.event.index]), errors=None)  # type: ignore[arg-type]


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Every sharer may be gone by the time a read fails: its error is logged by the sharers that wait.
    if not task.cancelled():
        task.exception()


RENDERS = Renders()

# Not compiled (or not yet tried) for this operation: the resolvers answer its events.
_UNPLANNABLE = object()


class SharedExecutor(StrawberryExecutor):
    """graphql-core's executor as Strawberry builds it, answering the events of a compiled subscription from
    the shared payloads (see the module). Every other operation executes unchanged."""

    # The Strawberry schema (compiling reads its field definitions): set by `bound`.
    strawberry_schema: Any = None

    @classmethod
    def bound(cls, schema: Any) -> type[SharedExecutor]:
        return type(cls.__name__, (cls,), {"strawberry_schema": schema})

    def build_resolve_info(self, *args: Any, **kwargs: Any) -> Any:
        info = super().build_resolve_info(*args, **kwargs)
        if info.parent_type is self.schema.subscription_type and self.operation.operation is OperationType.SUBSCRIPTION:
            # The subscription's resolver runs next, in this task: it sends compiled events itself (`direct`).
            _COMPILED.set(self.compiled())
        return info

    def compiled(self) -> Any:
        """The subscription's compiled selection and sharing key, or _UNPLANNABLE (compiled once per subscription,
        on the executor each event's execution starts from)."""
        compiled = getattr(self, "coco_events", None)
        if compiled is None:
            compiled = self.coco_events = self._compile()
        return compiled

    def build_per_event_executor(self, payload: Any) -> Any:
        if not isinstance(payload, LiveEvent):
            return super().build_per_event_executor(payload)
        compiled = self.compiled()
        if compiled is _UNPLANNABLE:
            return super().build_per_event_executor(payload)
        # A shared payload needs no executor of its own (graphql-core copies the whole executor for each).
        return _SharedEvent(self, payload, compiled)

    def _compile(self) -> Any:
        context = self.context_value
        if not isinstance(context, Context) or context.resolvers_only or self.strawberry_schema is None:
            return _UNPLANNABLE
        try:
            events = compile_events(
                self.strawberry_schema, self.operation, self.fragment_definitions, self.variable_values, context.limits
            )
        except NotPlannable as error:
            log.debug("subscription %s: its events go through the resolvers (%s)", self.operation_name(), error)
            return _UNPLANNABLE
        except Exception as error:  # bad input, or a fault here: the resolvers answer, with their errors
            log.debug("subscription %s: its events go through the resolvers (%s)", self.operation_name(), error)
            return _UNPLANNABLE
        # The sharing key: the compiled selection (variables applied) and the subscriber's access scope as the
        # store applies it to every read (a connection's token, so the subscription's, never changes).
        return (events, f"{events.read([])!r} {current_scope()!r}")

    def operation_name(self) -> str:
        return self.operation.name.value if self.operation.name else "(anonymous)"

    def execute_operation(self, serially: bool | None = None) -> Any:
        event = self.root_value
        if not isinstance(event, LiveEvent):
            return super().execute_operation(serially)
        return self._by_resolvers(event, serially)

    def _by_resolvers(self, event: LiveEvent, serially: bool | None) -> Any:
        # Nested fields are read fresh for every event: a long subscription never serves a row as it
        # was when an earlier event was sent.
        self.context_value.loaders = Loaders(self.context_value.reader)
        self.root_value = event.as_object()
        return super().execute_operation(serially)


# ---------------------------------------------------------------- frames sent by the subscription itself


async def _read(compiled: tuple[EventsView, str], batch: Sequence[dict[str, Any]], reader: Any) -> list[str] | None:
    """The batch's payload texts, from the read shared by its subscribers; None when it failed (the resolvers
    answer instead)."""
    events, fingerprint = compiled
    try:
        return await RENDERS.texts(events, fingerprint, batch, reader)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        log.debug("a batch's compiled read failed (%s): the resolvers answer", error)
        return None


# Set for an operation's task by the legacy protocol's handler below: how to send one of its `data` frames.
_SENDER: ContextVar[Callable[[Rendered], Awaitable[None]] | None] = ContextVar("coco_frame_sender", default=None)
# Set for an operation's task by the graphql-transport-ws handler below: the handler and the operation.
_OPERATION: ContextVar[tuple[DirectTransportWSHandler, Any] | None] = ContextVar("coco_operation", default=None)
# Set by the executor before the subscription's resolver runs: its compiled selection.
_COMPILED: ContextVar[Any] = ContextVar("coco_compiled_events", default=None)
# The ASGI `send` of the WebSocket connection the running task serves: set by the route for each connection.
SOCKET_SEND: ContextVar[Send | None] = ContextVar("coco_socket_send", default=None)


@dataclass(frozen=True, slots=True)
class Direct:
    """A compiled subscription served over the legacy graphql-ws: each batch's payloads, shared, are sent by the
    subscription itself as its protocol's frames, without graphql-core's and Strawberry's per-event execution and
    result handling (which cost more than the send)."""

    send: Callable[[Rendered], Awaitable[None]]
    compiled: tuple[EventsView, str]
    # The feed hands this protocol's subscriptions nothing directly: their task takes every batch.
    sink: None = None

    async def deliver(self, batch: Sequence[dict[str, Any]], reader: Any) -> bool:
        """Send the batch's frames; False (nothing sent) when its read failed: the resolvers answer instead."""
        texts = await _read(self.compiled, batch, reader)
        if texts is None:
            return False
        for text in texts:
            await self.send(Rendered(text))
        return True


class Pushed(Handed):
    """A compiled subscription over graphql-transport-ws, whose frames go to the connection's ASGI `send` as
    text built here (the id spliced before each shared payload), below Strawberry's and Starlette's WebSocket
    wrappers, which cost more than the frame.

    Events reach it two ways, in one order, as the SSE stream's do (api/sse/stream.py). A live batch that finds
    the subscription idle (its task waiting for the feed, nothing of it being written) is handed over by the
    feed itself (`hand_over`, the feed's sink): its shared read starts there, in the feed's turn, and the
    process's `FrameWriter` writes its frames once the read is done, without waking this subscription's task,
    which at a thousand subscribers would cost more than the writing. Everything else (a replay, a batch that
    found it busy) comes through its task (`deliver`), after whatever the writer holds of it; so do the
    operation's other messages (`complete`, `error`, a result of the resolvers), see `DirectTransportWSHandler`.
    """

    __slots__ = ("compiled", "context", "handler", "operation", "prefix", "reader", "send")

    def __init__(
        self,
        handler: DirectTransportWSHandler,
        operation: Any,
        send: Send,
        compiled: tuple[EventsView, str],
        reader: Any,
    ) -> None:
        super().__init__()
        self.handler, self.operation, self.send, self.compiled, self.reader = handler, operation, send, compiled, reader
        self.prefix = '{"id":' + _string(operation.id) + KINDS["next"]
        # The subscriber's context (its principal, so its access scope): the writer's reads for it run in it.
        self.context = contextvars.copy_context()

    @property
    def sink(self) -> Callable[[Sequence[dict[str, Any]]], bool]:
        return self.hand_over

    def open(self) -> bool:
        """Whether the operation still runs (the client has not completed it, nor has it ended)."""
        return operation_open(self.handler, self.operation)

    def hand_over(self, batch: Sequence[dict[str, Any]]) -> bool:
        """The feed's sink: `batch` to the writer, its read started, if nothing of this subscription is being
        written; False (nothing taken) leaves the batch to the subscription's task."""
        if self.busy or not self.open():
            return False
        events, fingerprint = self.compiled
        RENDERS.start(events, fingerprint, batch, self.reader, self.context)
        self.busy = True
        WRITER.push((self, batch))
        return True

    async def deliver(self, batch: Sequence[dict[str, Any]], reader: Any) -> bool:
        """From the subscription's task: send the batch's frames after the writer's; False (nothing sent) when its
        read failed: the resolvers answer instead."""
        await self.until_written()
        texts = await _read(self.compiled, batch, reader)
        if texts is None:
            return False
        await self.write(texts)
        return True

    async def write(self, texts: list[str]) -> None:
        send, prefix = self.send, self.prefix
        for text in texts:
            if not self.open():  # completed by the client meanwhile: nothing more for its id
                return
            try:
                await send({"type": "websocket.send", "text": prefix + text + "}"})
            except OSError as error:  # the client is gone: its connection's handler ends the operation
                log.debug("a subscription's frame could not be written (%s)", error)
                return

    def failed(self, batch: Sequence[dict[str, Any]], error: BaseException) -> None:
        """The writer could not read a batch it was handed: the operation ends with an `error` saying where to
        resume (every event before the batch was sent), as a subscriber that falls behind is told."""
        log.warning("a subscription's events could not be read (%s): it ends with where to resume", error)
        resume = str(batch[0]["cursor"] - 1)
        message = {
            "id": self.operation.id,
            "type": "error",
            "payload": [
                {
                    "message": f"the events could not be read; subscribe again with after={resume}",
                    "extensions": {"code": "SERVICE_UNAVAILABLE", "lastCursor": resume},
                }
            ],
        }
        task = asyncio.get_running_loop().create_task(self._end(message))
        _ENDING.add(task)
        task.add_done_callback(_ENDING.discard)

    async def _end(self, message: dict[str, Any]) -> None:
        try:
            await self.operation.send_operation_message(message)  # after the writer's frames; forgets the id
        except Exception as error:  # the connection is gone: nothing to tell
            log.debug("a subscription's error could not be sent (%s)", error)
        finally:
            task = self.operation.task
            if task is not None:
                task.cancel()


# Operations being ended by the writer (the loop holds weak references to tasks).
_ENDING: set[asyncio.Task[None]] = set()


class FrameWriter(Rounds[tuple["Pushed", Sequence[dict[str, Any]]]]):
    """Writes the live batches the feed hands to idle subscriptions (`Pushed.hand_over`), all from one task
    (`api.live.rounds`): for each handed batch, its read (started when it was handed, shared by every
    subscriber of the selection and scope, so done for all but the first), then one send per event. A round
    waiting for a read keeps the queue; it is looked at again once the read is done."""

    def __init__(self) -> None:
        super().__init__()
        # The round waiting for a read (not a client): it is not handed on.
        self.reading: asyncio.Task[None] | None = None
        # Batches written by the writer rather than by their subscription's task: what the path saves is visible.
        self.batches = 0

    def holds(self, round_: asyncio.Task[None]) -> bool:
        return self.reading is round_

    async def write(self, item: tuple[Pushed, Sequence[dict[str, Any]]], round_: asyncio.Task[None]) -> None:
        pushed, batch = item
        try:
            events, fingerprint = pushed.compiled
            read = RENDERS.start(events, fingerprint, batch, pushed.reader, pushed.context)
            if not read.done():
                self.reading = round_
                try:
                    await asyncio.wait((read,))
                finally:
                    self.reading = None
                self.check_soon(round_)
            error = RuntimeError("the read was cancelled") if read.cancelled() else read.exception()
            if error is not None:
                pushed.failed(batch, error)
                return
            self.batches += 1
            await pushed.write(read.result())
        except Exception as error:  # whatever the send raised, that subscriber's connection is gone
            log.debug("a subscription's frames could not be written (%s)", error)
        finally:
            pushed.written()


WRITER = FrameWriter()


def direct(reader: Any) -> Direct | Pushed | None:
    """For the subscription resolver of the running operation: how to send its events itself, or None (not over
    WebSocket, or not compiled)."""
    compiled = _COMPILED.get()
    if compiled is None or compiled is _UNPLANNABLE:
        return None
    operation, send = _OPERATION.get(), SOCKET_SEND.get()
    if operation is not None and send is not None:
        handler, op = operation
        pushed = handler.coco_pushed[op.id] = Pushed(handler, op, send, compiled, reader)
        return pushed
    sender = _SENDER.get()
    return None if sender is None else Direct(sender, compiled)


class DirectTransportWSHandler(TransportWSHandler):
    """graphql-transport-ws, whose compiled subscriptions send their `next` frames themselves (`Pushed`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The compiled subscriptions of this connection, by operation id.
        self.coco_pushed: dict[str, Pushed] = {}

    async def run_operation(self, operation: Any) -> None:
        token = _OPERATION.set((self, operation))
        try:
            await super().run_operation(operation)
        finally:
            _OPERATION.reset(token)
            # (the client may have completed the id and subscribed again with it: that one stays)
            pushed = self.coco_pushed.get(operation.id)
            if pushed is not None and pushed.operation is operation:
                del self.coco_pushed[operation.id]

    async def send_message(self, message: Any) -> None:
        # An operation's messages go after whatever the frame writer holds of it.
        operation_id = message.get("id") if isinstance(message, dict) else None
        pushed = self.coco_pushed.get(operation_id) if isinstance(operation_id, str) else None
        if pushed is not None and pushed.busy:
            await pushed.until_written()
        await super().send_message(message)


class DirectLegacyWSHandler(LegacyWSHandler):
    """The legacy graphql-ws, whose compiled subscriptions send their `data` frames themselves."""

    async def handle_async_results(self, operation_id: str, *args: Any, **kwargs: Any) -> None:
        async def send(rendered: Rendered) -> None:
            await self.send_message({"type": "data", "id": operation_id, "payload": {"data": rendered}})

        token = _SENDER.set(send)
        try:
            await super().handle_async_results(operation_id, *args, **kwargs)
        finally:
            _SENDER.reset(token)
