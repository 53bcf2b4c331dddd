"""Prometheus metrics, with the official client, served at `/metrics`.

With several workers each process counts for itself, so `coco serve
--workers N` puts the client's multiprocess mode on (PROMETHEUS_MULTIPROC_DIR:
a directory of its own, or the one given, emptied at start): `/metrics` of
any worker then reports the sum of all of them. A server started otherwise
with several workers and no PROMETHEUS_MULTIPROC_DIR reports per worker.
The request counter and latency histogram, which every request updates, are
kept apart in process memory (api/tally.py, in that directory too when it is
set) and written out in the same text format at each scrape.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from api.entities import BY_RESOURCE
from api.tally import Tally
from api.tally import exposition as tally_exposition
from api.tally import prepare as prepare_tally

log = logging.getLogger("coco.metrics")
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# The request counter and latency histogram are counted apart, in process memory (api/tally.py).
_tally: Tally | None = None
GRAPHQL_OPERATIONS = Counter(
    "coco_graphql_operations_total",
    "GraphQL operations executed, by type (query, mutation, subscription) and name",
    ["type", "name"],
)
# Why a query was answered by the resolvers rather than by one compiled statement (api/graphql/compiled.py).
GRAPHQL_FALLBACK_REASONS = (
    # The selection uses something the compiled path does not cover.
    "unsupported",
    # Bad arguments or variables: the resolvers refuse them, with their paths.
    "invalid_input",
    # The database failed the compiled statement (unavailable, timed out).
    "unavailable",
    # The write service refused a compiled mutation (not found, a conflict, not allowed): nothing was written,
    # and the resolvers refuse it again, with their paths.
    "refused",
    # A fault of the compiled path itself (logged with its traceback).
    "unexpected",
)
GRAPHQL_FALLBACKS = Counter(
    "coco_graphql_fallbacks_total",
    "GraphQL operations answered by the resolvers instead of the compiled path, by reason",
    ["reason"],
)
for _reason in GRAPHQL_FALLBACK_REASONS:
    GRAPHQL_FALLBACKS.labels(_reason)
POOL_CHECKED_OUT = Gauge(
    "coco_db_pool_checked_out", "Database connections in use by requests", multiprocess_mode="livesum"
)
POOL_SIZE = Gauge(
    "coco_db_pool_size", "Database connections the pool keeps open (its size)", multiprocess_mode="livesum"
)
POOL_OVERFLOW = Gauge(
    "coco_db_pool_overflow",
    "Connections opened beyond the pool size (negative: unused slots)",
    multiprocess_mode="livesum",
)
DIRECT_POOL_SIZE = Gauge(
    "coco_db_direct_pool_size",
    "Connections the direct pool holds open (reads and lone creates run on asyncpg directly)",
    multiprocess_mode="livesum",
)
DIRECT_POOL_IN_USE = Gauge(
    "coco_db_direct_pool_in_use", "Direct pool connections in use by requests", multiprocess_mode="livesum"
)
LIVE_SUBSCRIBERS = Gauge(
    "coco_live_subscribers",
    "Live event subscribers (SSE streams and GraphQL subscriptions)",
    multiprocess_mode="livesum",
)
LIVE_EVENTS_DELIVERED = Counter(
    "coco_live_events_delivered_total", "Coordination events handed to live subscribers (one per subscriber per event)"
)
LIVE_OVERFLOWS = Counter(
    "coco_live_queue_overflows_total", "Live subscribers dropped because they fell a whole queue behind"
)
CACHE_ENTRIES = Gauge(
    "coco_cache_entries",
    "Entries held by the app's caches of built things (api/cache.py), by cache",
    ["cache"],
    multiprocess_mode="livesum",
)
CACHE_LOOKUPS = Counter(
    "coco_cache_lookups_total",
    "Lookups in the app's caches, by cache and result (hit or miss); counted when /metrics is read",
    ["cache", "result"],
)

# Operation names are chosen by clients: past this many distinct ones, the rest count as "other".
MAX_OPERATION_NAMES = 200
_names: set[str] = set()
_OPEN_ROUTES = ("/healthz", "/livez", "/readyz", "/metrics", "/graphql", "/mcp", "/docs", "/")


_routes: dict[str, str] = {}
ROUTES_KEPT = 1024


def route_of(path: str) -> str:
    """The route template of a path, so that labels stay few (ids in paths never become labels)."""
    route = _routes.get(path)
    if route is None:
        if len(_routes) >= ROUTES_KEPT:
            _routes.clear()  # paths are the client's to choose: keep only recent ones
        route = _routes[path] = _route_of(path)
    return route


def _route_of(path: str) -> str:
    trimmed = path.rstrip("/") or "/"
    if trimmed in _OPEN_ROUTES:
        return trimmed
    first = trimmed.split("/")[1]
    if first in BY_RESOURCE:
        return "/{resource}" if trimmed.count("/") == 1 else "/{resource}/..."
    if first in ("docs", "rpc", "viewer"):
        return f"/{first}/..."
    return "other"


# Methods are the client's to choose (REST answers any): others are counted as OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "WEBSOCKET"})


def tally() -> Tally:
    """This process's request counts, made on first use (in the shared directory, under the worker's pid)."""
    global _tally
    if _tally is None:
        _tally = Tally(os.environ.get("PROMETHEUS_MULTIPROC_DIR") if MULTIPROCESS else None)
    return _tally


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    """Count one request."""
    (_tally or tally()).count(method if method in METHODS else "OTHER", route, status, seconds)


def graphql_operation(kind: str, name: str | None) -> None:
    label = name or "anonymous"
    if label not in _names:
        if len(_names) >= MAX_OPERATION_NAMES:
            label = "other"
        else:
            _names.add(label)
    GRAPHQL_OPERATIONS.labels(kind, label).inc()


def graphql_fallback(reason: str) -> None:
    if reason not in GRAPHQL_FALLBACK_REASONS:
        raise ValueError(f"not a fallback reason: {reason!r}")
    GRAPHQL_FALLBACKS.labels(reason).inc()


def process_ended() -> None:
    """A worker's live gauges stop counting in the multiprocess sum once it ends."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())


def prepare_multiprocess(directory: str | None) -> str:
    """The directory the workers of one server share their metrics in, emptied (the files of an
    earlier run would count again); a fresh one when none is given."""
    if not directory:
        return tempfile.mkdtemp(prefix="coco-metrics-")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    prepare_tally(str(path))
    return str(path)


async def endpoint(request: Request) -> Response:
    state = request.app.state
    engine = getattr(state, "engine", None)
    if engine is not None:
        pool = engine.pool
        POOL_CHECKED_OUT.set(pool.checkedout())
        POOL_SIZE.set(pool.size())
        POOL_OVERFLOW.set(pool.overflow())
    services = getattr(state, "services", None)
    direct_pool = services.reader.pool if services is not None else None
    if direct_pool is not None:
        open_connections, idle = direct_pool.usage()
        DIRECT_POOL_SIZE.set(open_connections)
        DIRECT_POOL_IN_USE.set(open_connections - idle)
    live = getattr(state, "live", None)
    if live is not None:
        LIVE_SUBSCRIBERS.set(live.subscriber_count)
    caches = getattr(state, "caches", None)
    if caches is not None:
        for name, (entries, hits, misses) in caches.take_counts().items():
            CACHE_ENTRIES.labels(name).set(entries)
            CACHE_LOOKUPS.labels(name, "hit").inc(hits)
            CACHE_LOOKUPS.labels(name, "miss").inc(misses)
    body = tally_exposition(tally(), os.environ.get("PROMETHEUS_MULTIPROC_DIR") if MULTIPROCESS else None)
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body += generate_latest(registry)
    else:
        body += generate_latest()
    # Figures other parts of the app read at scrape time (webhooks: api/webhooks/observe.py), registered by
    # api/app.py, so that this module imports nothing above it.
    for figures in getattr(state, "scrape", ()):
        try:
            body += await figures()
        except Exception as error:  # the other metrics are still worth serving
            log.warning("metrics: figures could not be read (%s)", error)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
