"""CORS for every front end alike: the one answer to a preflight (allowed origins on answers: api/edge/exchange.py).

PostgREST's policy (its Cors.hs): any origin unless configured, Authorization
and whatever headers the browser asks for, a day's max-age.
"""

from __future__ import annotations

from starlette.types import Send

from api.edge.replies import send_body

# HEAD is one of CORS' simple methods: browsers never ask for it.
METHODS = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
MAX_AGE_S = 86400


async def send_preflight(send: Send, requested: str | None, allow_origin: str) -> None:
    """The answer to a preflight: `allow_origin` is `*` or the one allowed origin that asked; `requested`,
    its Access-Control-Request-Headers."""
    allowed = ", ".join(["Authorization", *[h.strip() for h in (requested or "").split(",") if h.strip()]])
    answer = [
        (b"access-control-allow-origin", allow_origin.encode("latin-1")),
        (b"access-control-allow-methods", METHODS.encode()),
        (b"access-control-allow-headers", allowed.encode("latin-1")),
        (b"access-control-max-age", str(MAX_AGE_S).encode()),
    ]
    if allow_origin != "*":
        answer.append((b"vary", b"Origin"))
    await send_body(send, 200, b"", answer)
