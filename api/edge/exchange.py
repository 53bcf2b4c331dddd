"""One HTTP request's way out: everything the edge does to the answer, in one `send`.

In the order the edge's parts apply it (four middlewares did, each with its own `send`): the body limit's silence once
the limit is passed (the 413 goes out instead), the one allowed origin named
instead of `*`, draining's watch on an event stream (ended at shutdown after its
last complete event), then the status, size and request id the log line and the
metrics report.
"""

from __future__ import annotations

from starlette.types import Message, Send

from api.edge.draining import EVENT_STREAM, Draining, Stream

REQUEST_ID = b"x-request-id"
ALLOW_ORIGIN = b"access-control-allow-origin"


class Exchange:
    __slots__ = ("draining", "ended", "exceeded", "origin", "rid", "sent", "started", "status", "stream", "wire")

    def __init__(self, wire: Send, rid: str, draining: Draining | None) -> None:
        self.wire = wire
        self.rid = rid.encode()
        # Only an answer to a client that accepts an event stream may become one that draining ends.
        self.draining = draining
        self.stream: Stream | None = None
        self.ended = False
        # The one allowed origin to name (configured origins only); None: the front ends' headers stand.
        self.origin: bytes | None = None
        # The body limit was passed: the app's own answer gives way to the 413.
        self.exceeded = False
        self.started = False
        self.status = 0
        self.sent = 0

    async def send(self, message: Message) -> None:
        """The app's messages."""
        if self.exceeded:
            return
        if message["type"] == "http.response.start":
            self.started = True
            if self.origin is not None:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != ALLOW_ORIGIN]
                headers += [(ALLOW_ORIGIN, self.origin), (b"vary", b"Origin")]
                message = {**message, "headers": headers}
        await self.deliver(message)

    async def refuse(self, message: Message) -> None:
        """The edge's own answers once the origin is known (a refused token, a body too large)."""
        if message["type"] == "http.response.start" and self.origin is not None:
            headers = [*message.get("headers", []), (ALLOW_ORIGIN, self.origin), (b"vary", b"Origin")]
            message = {**message, "headers": headers}
        await self.deliver(message)

    async def deliver(self, message: Message) -> None:
        """Draining's watch, then the status, the size and the request id."""
        if self.ended:
            return
        kind = message["type"]
        if kind == "http.response.body":
            if self.draining is not None and not message.get("more_body", False):
                self.ended = True
            self.sent += len(message.get("body", b""))
            await self.wire(message)
            return
        if kind == "http.response.start":
            self.status = message["status"]
            await self.wire({**message, "headers": [*message.get("headers", []), (REQUEST_ID, self.rid)]})
            if self.draining is not None and any(
                name == b"content-type" and value.startswith(EVENT_STREAM) for name, value in message.get("headers", [])
            ):
                self.stream = self.draining.register(self.end_stream)
            return
        await self.wire(message)

    async def end_stream(self) -> None:
        """Draining ends the event stream: the response ends here, whatever the app still sends."""
        if not self.ended:
            self.ended = True
            await self.wire({"type": "http.response.body", "body": b"", "more_body": False})
