"""CORS for every front end alike: the one answer to a preflight, and the allowed origin on responses.

PostgREST's policy (its Cors.hs): any origin unless configured, Authorization
and whatever headers the browser asks for, a day's max-age.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Message, Scope, Send

from api.edge.replies import send_body

# HEAD is one of CORS' simple methods: browsers never ask for it.
METHODS = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
MAX_AGE_S = 86400


def is_preflight(scope: Scope, headers: Headers) -> bool:
    return scope["method"] == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


async def send_preflight(send: Send, headers: Headers, allow_origin: str) -> None:
    """The answer to a preflight: `allow_origin` is `*` or the one allowed origin that asked."""
    requested = headers.get("access-control-request-headers", "")
    allowed = ", ".join(["Authorization", *[h.strip() for h in requested.split(",") if h.strip()]])
    answer = [
        (b"access-control-allow-origin", allow_origin.encode("latin-1")),
        (b"access-control-allow-methods", METHODS.encode()),
        (b"access-control-allow-headers", allowed.encode("latin-1")),
        (b"access-control-max-age", str(MAX_AGE_S).encode()),
    ]
    if allow_origin != "*":
        answer.append((b"vary", b"Origin"))
    await send_body(send, 200, b"", answer)


def with_origin(send: Send, origin: str) -> Send:
    """Name the one allowed origin instead of the front ends' `*`."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"access-control-allow-origin"]
            headers += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
            message = {**message, "headers": headers}
        await send(message)

    return sending
