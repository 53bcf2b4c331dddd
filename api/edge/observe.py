"""One log line and the metrics of every request, under a request id the client also sees.

The edge (api/edge/edge.py) records every answer here, the guard's refusals
included. A sane incoming `X-Request-Id` (a proxy's) is kept, otherwise one is
made; it is returned in `X-Request-Id` and is in the log line.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from typing import Any

from starlette.types import Scope

from api import metrics

log = logging.getLogger("coco.access")
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


class _Ids:
    """Request ids: a random prefix per process and a counter, 32 hex digits in all. Unique without a
    system call per request (os.urandom is one); a forked child draws a prefix of its own."""

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFFFFFFFFFF:016x}"


new_request_id = _Ids()


class Observer:
    """Counts each answered request and writes its log line."""

    def __init__(self, log_format: str = "text") -> None:
        self.json = log_format == "json"

    def record(self, scope: Scope, rid: str, status: int, sent: int, seconds: float) -> None:
        method = scope.get("method", "WEBSOCKET")
        path = scope["path"]
        route = metrics.route_of(path)
        metrics.request_answered(method, route, status, seconds)
        if (path in QUIET_PATHS and status < 400) or not log.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "request_id": rid,
            "method": method,
            "path": path,
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
                path,
                status,
                fields["duration_ms"],
                sent,
                rid,
            )
