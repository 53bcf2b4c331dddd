"""One log line and the metrics of every request, under a request id the client also sees.

The outermost middleware: it sees every answer, including the guard's
refusals. A sane incoming `X-Request-Id` (a proxy's) is kept, otherwise one is
made; it is returned in `X-Request-Id` and is in the log line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics

log = logging.getLogger("coco.access")
HEADER = b"x-request-id"
SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# Probes every few seconds would drown the log; they are still counted.
QUIET_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})


def configure_logging(level: str, log_format: str) -> None:
    """Worker processes that uvicorn starts have no logging set up for our loggers: give them some
    (a process whose root logger already has handlers, like the CLI's or the tests', keeps its own)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(logging.Formatter("%(message)s"))
        # Only the request lines are JSON; the rest of the log keeps its words.
        logging.getLogger("coco.access").propagate = False
        logging.getLogger("coco.access").addHandler(handler)
        other = logging.StreamHandler()
        other.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(other)
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    logging.getLogger("coco").setLevel(level.upper())


def request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            given: str = value.decode("latin-1").strip()
            if SANE_ID.fullmatch(given):
                return given
    return os.urandom(16).hex()


class Observe:
    def __init__(self, app: ASGIApp, *, log_format: str = "text") -> None:
        self.app = app
        self.json = log_format == "json"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 0
        sent = 0

        async def observed_send(message: Message) -> None:
            nonlocal status, sent
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (HEADER, rid.encode())]}
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            elif kind == "websocket.accept":
                status = 101
                message = {**message, "headers": [*message.get("headers", []), (HEADER, rid.encode())]}
            elif kind == "websocket.close" and not status:
                status = 403  # closed before it was accepted: the handshake was refused
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            status = status or 500
            raise
        finally:
            self.record(scope, rid, status or 500, sent, time.perf_counter() - started)

    def record(self, scope: Scope, rid: str, status: int, sent: int, seconds: float) -> None:
        method = scope.get("method", "WEBSOCKET")
        route = metrics.route_of(scope["path"])
        metrics.request_answered(method, route, status, seconds)
        if (scope["path"] in QUIET_PATHS and status < 400) or not log.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "request_id": rid,
            "method": method,
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "bytes": sent,
            "client": scope["client"][0] if scope.get("client") else None,
        }
        if self.json:
            log.info(json.dumps({"event": "request", **fields}, separators=(",", ":")))
        else:
            log.info(
                "%s %s %s %d %.1fms %dB id=%s",
                fields["client"],
                method,
                scope["path"],
                status,
                fields["duration_ms"],
                sent,
                rid,
            )
