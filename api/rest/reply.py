"""Answers of a known shape as raw ASGI messages: the header list built directly, no framework in between.

Most REST answers are one of a few shapes (a JSON read, an error document), whose
header names and most values are known before the request: building the list of
byte pairs directly spares Starlette's Response its header normalisation, and the
endpoint's later additions (Vary, CORS) their search of the list.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]

# PostgREST's hint to caches: the answer depends on these request headers too (never on an error).
VARY = (b"vary", b"Accept, Prefer, Range")
ERROR_TYPE = (b"content-type", b"application/json; charset=utf-8")


class Reply:
    __slots__ = ("body", "error", "headers", "status")

    def __init__(self, status: int, headers: Headers, body: bytes, *, error: bool = False) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def encoded(headers: dict[str, str]) -> Headers:
    """Headers given by name, as ASGI carries them (as Starlette's Response encodes them)."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def reply(status: int, headers: dict[str, str], body: bytes, content_type: str | None = None) -> Reply:
    """An answer with headers given by name, as Starlette's Response would write them: Content-Length
    unless the status has no body, then Content-Type when there is one."""
    raw = encoded(headers)
    if status >= 200 and status not in (204, 304):
        raw.append((b"content-length", str(len(body)).encode()))
    if content_type is not None:
        raw.append((b"content-type", content_type.encode("latin-1")))
    return Reply(status, raw, body)


def read_reply(status: int, content_location: str, content_range: str, body: bytes, content_type: bytes) -> Reply:
    """A read's answer, its headers in the order `reply` writes them."""
    return Reply(
        status,
        [
            (b"content-location", content_location.encode("latin-1")),
            (b"content-range", content_range.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", content_type),
        ],
        body,
    )


def error_reply(status: int, code: str, headers: dict[str, str], body: bytes) -> Reply:
    """An error document, with PostgREST's Proxy-Status and the error's own headers."""
    raw = [(b"proxy-status", f"PostgREST; error={code}".encode("latin-1")), *encoded(headers)]
    raw += [(b"content-length", str(len(body)).encode()), ERROR_TYPE]
    return Reply(status, raw, body, error=True)
