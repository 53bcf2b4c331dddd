"""A lean GraphQL-subscriptions-over-WebSocket load generator: many connections in one process.

`python -m bench.ws_client HOST PORT STREAMS WANTED [TIMEOUT]`, the same contract as
bench/sse_client.py: one connection per subscriber (graphql-transport-ws), each subscribed to
`coordinationEvents` with the fields of the event stream's document; `ready` once every
subscription was sent and had a moment to start (the protocol does not acknowledge a
subscribe), then one JSON line of receipts.

As the SSE client's streams, each connection is an asyncio Protocol whose `data_received` reads
its frames in place (RFC 6455: the handshake, the server's unmasked frames, ping and close): no
task, no wake-up, no library per connection and message, so that at 1,000 subscribers the
generator does not measure itself (the `websockets` asyncio client, one task and one queue per
connection, cost more CPU per event than the server it measured). The receipt time is taken
once per read, before any parsing. The first connection's messages are
parsed whole and checked; the others' `next` messages are recognised by their head and give
their cursor.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from bench import sse_client

QUERY = "subscription { coordinationEvents { id cursor eventType actorId referenceId occurredAt } }"
# The server starts a subscription when it executes the operation, after the subscribe
# message: nothing tells the client when, so it waits this long (plus a little per stream).
SETTLE_S = 1.0
NEXT = b'{"id":"1","type":"next","payload":{"data":{"coordinationEvents":{'
CURSOR = b'"cursor":"'
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class BadStream(Exception):
    pass


def masked(opcode: int, payload: bytes) -> bytes:
    """A client's frame (clients mask theirs; RFC 6455 5.3): only a few small ones per connection."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes((0x80 | opcode, 0x80 | size)) if size < 126 else bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2)
    key = (mask * (size // 4 + 1))[:size]
    body = (int.from_bytes(payload) ^ int.from_bytes(key)).to_bytes(size)
    return head + mask + body


class Frames:
    """Splits a server's WebSocket byte stream (unmasked frames, none fragmented) into (opcode, payload)."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self.buffer + data if self.buffer else data
        frames = []
        at, size = 0, len(buffer)
        while size - at >= 2:
            first, length = buffer[at], buffer[at + 1]
            if length & 0x80 or not first & 0x80:
                raise BadStream("a masked or fragmented frame from the server")
            length &= 0x7F
            start = at + 2
            if length == 126:
                start, length = at + 4, int.from_bytes(buffer[at + 2 : at + 4])
            elif length == 127:
                start, length = at + 10, int.from_bytes(buffer[at + 2 : at + 10])
            if start + length > size:
                break
            frames.append((first & 0x0F, buffer[start : start + length]))
            at = start + length
        self.buffer = buffer[at:]
        return frames


class Connection(sse_client.Lean):
    """A graphql-transport-ws subscriber: ready once its subscribe is sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open = False
        self.frames = Frames()

    def send(self, message: dict[str, object]) -> None:
        assert self.transport is not None
        self.transport.write(masked(TEXT, json.dumps(message).encode()))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()  # CLOCK_MONOTONIC: comparable with the writer's clock in another process
        try:
            if not self.open:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, data = self.head[:end].decode("latin-1"), self.head[end + 4 :]
                if head.split(" ", 2)[1] != "101" or "sec-websocket-protocol: graphql-transport-ws" not in head.lower():
                    raise BadStream(f"the handshake was answered: {head.splitlines()[0]!r}")
                self.open = True
                self.send({"type": "connection_init", "payload": {}})
            for opcode, payload in self.frames.feed(data):
                if opcode == TEXT:
                    self.message(payload, now)
                elif opcode == PING:
                    assert self.transport is not None
                    self.transport.write(masked(PONG, payload))
                elif opcode == CLOSE:
                    raise BadStream(f"the server closed the connection: {payload[:300]!r}")
        except (BadStream, ValueError, KeyError, IndexError, TypeError) as error:
            self.fail(str(error))

    def message(self, raw: bytes, now: float) -> None:
        if not self.check_documents and raw.startswith(NEXT):
            if b'"errors"' in raw:
                raise BadStream(raw[:300].decode())
            at = raw.index(CURSOR) + len(CURSOR)
            self.on_event(int(raw[at : raw.index(b'"', at)]), now)
            return
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "connection_ack":
            self.send({"id": "1", "type": "subscribe", "payload": {"query": QUERY}})
            self.on_ready()
        elif kind == "ping":
            self.send({"type": "pong"})
        elif kind == "next":
            payload = message["payload"]
            if payload.get("errors") or set(message) != {"id", "type", "payload"} or message["id"] != "1":
                raise BadStream(raw[:300].decode())
            self.on_event(int(payload["data"]["coordinationEvents"]["cursor"]), now)
        elif kind != "pong":
            raise BadStream(f"the subscription ended: {raw[:300]!r}")


async def run(target: sse_client.Target) -> None:
    request = (
        f"GET /graphql HTTP/1.1\r\nHost: {target.host}:{target.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    ).encode()
    settle_s = SETTLE_S + target.streams / 1000
    await sse_client.hold(Connection, request, target, started="subscriptions were sent", settle_s=settle_s)


def main() -> None:
    sse_client.main(run)


if __name__ == "__main__":
    main()
