"""The edge: the one ASGI layer every request and WebSocket passes, before any front end.

It reads the request's headers once (api/edge/incoming.py), and then, in this order:
the request id, and at the end the log line and the metrics (api/edge/observe.py);
draining's watch on WebSockets and event streams (api/edge/draining.py); CORS, the
token and the body limit (api/edge/guard.py); the live feed's event stream
(api/sse/stream.py), and the paths that one app answers whatever the method (the REST
resources', GraphQL's), which go straight to it; every other request goes on to the
app's routes. Each answer leaves through one `send` (api/edge/exchange.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import Settings
from api.edge import incoming as headers
from api.edge.draining import GOING_AWAY, Draining, Stream
from api.edge.exchange import REQUEST_ID, Exchange
from api.edge.guard import Guard
from api.edge.observe import Observer, new_request_id


class Events(Protocol):
    """The live feed's event stream (api/sse/stream.py, a layer above this one)."""

    def asks_for_events(self, scope: Scope, wants_event_stream: bool) -> bool: ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        draining: Draining | None = None,
        events: Events | None = None,
        direct: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.guard = Guard(settings)
        self.observer = Observer(settings.log_format)
        self.draining = draining or Draining()
        self.events = events
        # Paths answered by one app whatever the method (the REST resources): no route needs trying.
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # ------------------------------------------------------------ HTTP

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = headers.read(scope["headers"])
        rid = incoming.request_id or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        exchange = Exchange(send, rid, self.draining if incoming.mentions_events else None)
        events = self.events
        if events is not None and events.asks_for_events(scope, incoming.wants_events):
            app: ASGIApp = events
        else:
            app = self.direct.get(scope["path"], self.app)
        status = 0
        try:
            await self.guard.http(scope, receive, incoming, exchange, app)
        except asyncio.CancelledError:
            if not _drained(exchange.stream):
                raise
        except Exception:
            status = exchange.status or 500
            raise
        finally:
            if exchange.stream is not None:
                self.draining.streams.discard(exchange.stream)
            self.observer.record(
                scope, rid, status or exchange.status or 500, exchange.sent, time.perf_counter() - started
            )

    # ------------------------------------------------------------ WebSocket

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = headers.read(scope["headers"])
        rid = incoming.request_id or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 0
        closed = False
        stream: Stream | None = None

        async def observed(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "websocket.accept":
                status = 101
                message = {**message, "headers": [*message.get("headers", []), (REQUEST_ID, rid.encode())]}
            elif kind == "websocket.close" and not status:
                status = 403  # closed before it was accepted: the handshake was refused
            await send(message)

        async def going_away() -> None:
            nonlocal closed
            if not closed:
                closed = True
                await observed({"type": "websocket.close", "code": GOING_AWAY, "reason": "server shutting down"})

        async def tracked(message: Message) -> None:
            nonlocal closed, stream
            if closed:
                return  # closed by the drain: what the app still says goes nowhere
            if message["type"] == "websocket.accept":
                await observed(message)
                stream = self.draining.register(going_away)
                return
            if message["type"] == "websocket.close":
                closed = True
            await observed(message)

        try:
            await self.guard.websocket(scope, receive, tracked, incoming, self.app)
        except asyncio.CancelledError:
            if not _drained(stream):
                raise
        except Exception:
            status = status or 500
            raise
        finally:
            if stream is not None:
                self.draining.streams.discard(stream)
            self.observer.record(scope, rid, status or 500, 0, time.perf_counter() - started)


def _drained(stream: Stream | None) -> bool:
    """Whether the task was cancelled by the drain, which already ended the response: then the request
    is over (the cancellation is taken back)."""
    if stream is None or not stream.drained:
        return False
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    return True
