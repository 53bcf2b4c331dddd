"""Answers the edge and the plain-ASGI front ends send themselves, before any framework is involved."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import Send

JSON_TYPE = b"application/json; charset=utf-8"


async def send_json(send: Send, status: int, document: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A complete JSON response (an error document, in practice), in two ASGI messages."""
    await send_body(send, status, json.dumps(document).encode(), [(b"content-type", JSON_TYPE), *headers])


async def send_body(send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
