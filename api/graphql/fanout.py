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

Over WebSocket (both protocols) a compiled subscription goes further: its resolver sends each batch's frames
itself through its operation's handler (`Direct`), so that an event costs a subscriber a wake-up and a
send, not graphql-core's execution and Strawberry's result handling as well; what a compiled read cannot
answer, and every error, still goes the executor's way.

The resolvers stay the reference: a selection that does not compile, a client that asked for the resolvers
(`Context.resolvers_only`) or a batch whose read failed is executed through them, event by event, with fresh
loaders, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult, OperationType

from api.graphql.compiled import EventsView, NotPlannable, compile_events
from api.graphql.context import Context
from api.graphql.loaders import Loaders
from api.graphql.strawberry_adapter import LegacyWSHandler, StrawberryExecutor, TransportWSHandler
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
        key = (fingerprint, id(batch))
        entry = self._entries.get(key)
        if entry is None or entry[0] is not batch:  # (an id can be reused once its batch is gone)
            task = asyncio.get_running_loop().create_task(self._read(events, batch, reader))
            task.add_done_callback(_retrieve)
            if key in self._entries:
                self._kept -= len(self._entries.pop(key)[0])
            entry = self._entries[key] = (batch, task)
            self._kept += len(batch)
            while self._kept > self.size and len(self._entries) > 1:
                self._kept -= len(self._entries.popitem(last=False)[1][0])
        task = entry[1]
        if task.done():  # most sharers: read while they waited for their turn
            return task.result()
        # One sharer leaving (its subscriber gone) does not cancel the read the others wait for.
        return await asyncio.shield(task)

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

# Set for an operation's task by the protocol handlers below: how to send one of its `next` (`data`) frames.
_SENDER: ContextVar[Callable[[Rendered], Awaitable[None]] | None] = ContextVar("coco_frame_sender", default=None)
# Set by the executor before the subscription's resolver runs: its compiled selection.
_COMPILED: ContextVar[Any] = ContextVar("coco_compiled_events", default=None)


@dataclass(frozen=True, slots=True)
class Direct:
    """A compiled subscription served over WebSocket: each batch's payloads, shared, are sent by the subscription
    itself as its protocol's frames, without graphql-core's and Strawberry's per-event execution and result
    handling (which cost more than the send)."""

    send: Callable[[Rendered], Awaitable[None]]
    compiled: tuple[EventsView, str]

    async def deliver(self, batch: Sequence[dict[str, Any]], reader: Any) -> bool:
        """Send the batch's frames; False (nothing sent) when its read failed: the resolvers answer instead."""
        events, fingerprint = self.compiled
        try:
            texts = await RENDERS.texts(events, fingerprint, batch, reader)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.debug("a batch's compiled read failed (%s): the resolvers answer", error)
            return False
        for text in texts:
            await self.send(Rendered(text))
        return True


def direct() -> Direct | None:
    """For the subscription resolver of the running operation: how to send its events itself, or None (not over
    WebSocket, or not compiled)."""
    send, compiled = _SENDER.get(), _COMPILED.get()
    if send is None or compiled is None or compiled is _UNPLANNABLE:
        return None
    return Direct(send, compiled)


class DirectTransportWSHandler(TransportWSHandler):
    """graphql-transport-ws, whose compiled subscriptions send their `next` frames themselves."""

    async def run_operation(self, operation: Any) -> None:
        async def send(rendered: Rendered) -> None:
            # The operation's own path: nothing is sent once it has completed.
            await operation.send_operation_message({"id": operation.id, "type": "next", "payload": {"data": rendered}})

        token = _SENDER.set(send)
        try:
            await super().run_operation(operation)
        finally:
            _SENDER.reset(token)


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
