"""What the edge needs of a request's headers, read in one pass over them.

Every part of the edge (request id, CORS, the token, the body limit, draining,
the event stream's routing) asks about a few headers; reading them once here
spares each part its own pass and its own decoding. As HTTP servers hand them
over, names are lowercase bytes; where a header is given more than once, the
first counts (as Starlette's `Headers.get` reads it), except where noted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
EVENT_STREAM = "text/event-stream"


@dataclass(slots=True)
class Incoming:
    # The first sane X-Request-Id (a proxy's), if any.
    request_id: str | None = None
    origin: str | None = None
    authorization: str | None = None
    # The first Accept header, as GraphiQL's page check reads it.
    accept: str = ""
    # Some Accept header mentions an event stream: draining watches the answer.
    mentions_events: bool = False
    # Some Accept header names text/event-stream as one of its ranges: the live feed is asked for.
    wants_events: bool = False
    content_length: str | None = None
    chunked: bool = False
    # A CORS preflight's Access-Control-Request-Method and -Headers.
    request_method: str | None = None
    request_headers: str | None = None

    @property
    def has_body(self) -> bool:
        """HTTP/1.1 says a request has no body when it has neither Content-Length nor Transfer-Encoding."""
        return self.content_length is not None or self.chunked


def read(headers: list[tuple[bytes, bytes]]) -> Incoming:
    found = Incoming()
    accept_seen = False
    for name, value in headers:
        if name == b"accept":
            text = value.decode("latin-1")
            if not accept_seen:
                found.accept, accept_seen = text, True
            if EVENT_STREAM in text:
                found.mentions_events = True
            if (
                not found.wants_events
                and "event-stream" in text.lower()
                and any(r.split(";")[0].strip().lower() == EVENT_STREAM for r in text.split(","))
            ):
                found.wants_events = True
        elif name == b"authorization":
            if found.authorization is None:
                found.authorization = value.decode("latin-1")
        elif name == b"x-request-id":
            if found.request_id is None:
                given = value.decode("latin-1").strip()
                if SANE_ID.fullmatch(given):
                    found.request_id = given
        elif name == b"origin":
            if found.origin is None:
                found.origin = value.decode("latin-1")
        elif name == b"content-length":
            if found.content_length is None:
                found.content_length = value.decode("latin-1")
        elif name == b"transfer-encoding":
            found.chunked = True
        elif name == b"access-control-request-method":
            if found.request_method is None:
                found.request_method = value.decode("latin-1")
        elif name == b"access-control-request-headers" and found.request_headers is None:
            found.request_headers = value.decode("latin-1")
    return found
