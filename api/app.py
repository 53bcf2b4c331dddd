"""The ASGI application: one Starlette app that the front ends mount onto."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from api import __version__, graphql, metrics, rest
from api.cache import Caches
from api.config import SHUTDOWN_FINISH_S, Settings
from api.edge.draining import Draining
from api.edge.edge import Edge
from api.edge.observe import configure_logging
from api.live import LiveFeed
from api.mcp import http as mcp_http
from api.resources import bundled
from api.sse.stream import EventStream
from api.store import DirectPool, Documents, Reader, WebhookStore, WriteService, create_engine, upgrade
from api.webhooks.delivery import Deliverer
from api.webhooks.manage import WebhookAdmin
from api.webhooks.observe import exposition

log = logging.getLogger("coco.app")
HEALTH_TIMEOUT_S = 2.0
# Connections to DIRECT_DATABASE_URL per worker, besides LISTEN's: the migrations, then streaming reads.
SESSION_POOL_SIZE = 2
# Net allocations of container objects between two collections of the youngest generation (CPython: 700).
YOUNG_COLLECTION_THRESHOLD = 5000


@dataclass
class Services:
    """What the front ends use; created once per process at startup."""

    settings: Settings
    reader: Reader
    writer: WriteService
    webhooks: WebhookAdmin | None = None
    # GraphQL documents registered by automatic persisted queries (api/graphql/persisted.py).
    documents: Documents | None = None


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_environment()
    configure_logging(settings.log_level, settings.log_format)

    draining = Draining(force_after_s=settings.shutdown_grace_s + SHUTDOWN_FINISH_S)
    # Every cache of this app, from the services that own them: nothing is shared with another app.
    caches = Caches()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        draining.bind(asyncio.get_running_loop())
        # Reads and lone creates have a pool of their own (api/store/pool.py, below): each pool keeps to
        # its size, so that a worker holds at most twice COCO_DB_POOL_SIZE connections (and LISTEN's).
        engine = create_engine(
            settings.require_database_url(),
            pool_size=settings.pool_size,
            max_overflow=0,
            statement_timeout_ms=settings.statement_timeout_ms,
            pooler=settings.db_pooler,
            tracks_timezone=settings.db_pooler_tracks_timezone,
        )
        # What needs a session (the migrations' lock, long streaming reads, LISTEN below) goes to
        # DIRECT_DATABASE_URL when it is given: a transaction-mode pooler keeps no session.
        session_engine = engine
        if settings.direct_database_url:
            session_engine = create_engine(
                settings.direct_database_url,
                pool_size=SESSION_POOL_SIZE,
                max_overflow=SESSION_POOL_SIZE,
                statement_timeout_ms=settings.statement_timeout_ms,
                pooler=settings.session_pooler,
            )
        elif settings.db_pooler == "transaction":
            log.warning(
                "COCO_DB_POOLER=transaction without DIRECT_DATABASE_URL: live events LISTEN through the "
                "pooler, which keeps no session; set DIRECT_DATABASE_URL to PostgreSQL itself"
            )
        if settings.migrate_on_start:
            await upgrade(session_engine)
        app.state.engine = engine
        direct_pool = DirectPool(
            settings.require_database_url(),
            size=settings.pool_size,
            statement_timeout_ms=settings.statement_timeout_ms,
            pooler=settings.db_pooler,
            tracks_timezone=settings.db_pooler_tracks_timezone,
        )
        await direct_pool.start()
        reader = Reader(engine, pool=direct_pool, streams=session_engine)
        # Live coordination events: this process's one LISTEN connection (api/live).
        app.state.live = LiveFeed(settings.session_database_url, Reader(engine), queue_size=settings.live_queue_size)
        # Webhooks: this process delivers those whose lease it holds (api/webhooks), reading through the live feed.
        webhook_store = WebhookStore(engine, pool=direct_pool)
        deliverer = app.state.deliverer = Deliverer(settings, webhook_store, reader, app.state.live)
        documents = Documents(engine, cache_size=settings.graphql_cache_size)
        services = Services(
            settings=settings,
            reader=reader,
            writer=WriteService(engine, pool=direct_pool),
            webhooks=WebhookAdmin(webhook_store, allow_private=settings.webhook_allow_private, changed=deliverer.wake),
            documents=documents,
        )
        app.state.services = services
        for statements in (services.reader.statements, services.writer.statements, app.state.live.reader.statements):
            caches.add(*statements.caches)
        caches.add(services.writer.shown_inserts)
        caches.add(*direct_pool.caches)
        caches.add(documents.known)
        await app.state.live.start()
        await deliverer.start()
        # Per-webhook figures for /metrics, read from the database at each scrape.
        app.state.scrape = [lambda: exposition(webhook_store, reader)]
        try:
            # The MCP endpoint's session manager runs (a task group) for as long as the app does.
            async with mcp_http.serving(services.reader, services.writer, host=settings.host) as mcp_sessions:
                app.state.mcp = mcp_sessions
                with draining.on_signals(), steady_collection():
                    yield
        finally:
            draining.begin()
            await deliverer.stop()
            await app.state.live.stop()
            await direct_pool.close()
            if session_engine is not engine:
                await session_engine.dispose()
            await engine.dispose()
            metrics.process_ended()
            draining.finished()

    # Front ends add their routes here; REST comes last, since it answers every other path (its
    # resource paths come first, as no other route has them).
    graphql_endpoint = graphql.graphql_app(settings)
    rest_app = rest.RestApp()
    caches.add(graphql_endpoint.recent.cache, rest_app.shapes.known, rest_app.shapes.write_plans)
    if graphql_endpoint.measures is not None:
        caches.add(graphql_endpoint.measures.cache)
    routes = [
        rest.resource_route(rest_app),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        # Every method: POST and GET queries, GraphiQL for browsers; subscriptions over WebSocket.
        Route(graphql.PATH, graphql_endpoint),
        WebSocketRoute(graphql.PATH, graphql_endpoint),
        Route(mcp_http.PATH, mcp_http.Endpoint()),
        # Probes for orchestrators (/healthz is readiness too) and Prometheus metrics (api/metrics.py).
        Route("/readyz", healthz, methods=["GET", "HEAD"]),
        Route("/livez", livez, methods=["GET", "HEAD"]),
        Route("/metrics", metrics.endpoint, methods=["GET"]),
        # The read-only viewer (viewer/): static files that talk only to the GraphQL API.
        # Its pages use relative URLs, so /viewer must become /viewer/ (REST would answer it otherwise).
        Route("/viewer", viewer_redirect, methods=["GET", "HEAD"]),
        Mount("/viewer", StaticFiles(directory=bundled("viewer"), html=True), name="viewer"),
    ]
    # GraphiQL's assets, vendored (api/graphql/ide.py).
    routes += graphql.ide_routes()
    routes += rest.routes(rest_app)
    # One layer before every route (api/edge/edge.py): the request's log line and metrics, draining, access
    # control and limits; GET /coordination_events asking for text/event-stream is the live feed, and the
    # resources' own paths go straight to the REST app, as HTTP requests to /graphql go to GraphQL's (which
    # answers every method itself, as its route above says): no route needs trying for them.
    events = EventStream(keepalive=settings.sse_keepalive_s, caches=caches)
    direct: dict[str, ASGIApp] = dict.fromkeys(rest.resource_paths(), rest_app)
    direct[graphql.PATH] = graphql_endpoint
    middleware = [Middleware(Edge, settings=settings, draining=draining, events=events, direct=direct)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.caches = caches
    return app


class _Collector:
    """How many apps of this process are serving, and the collector's thresholds from before the first."""

    serving = 0
    thresholds: tuple[int, ...] = ()


@contextlib.contextmanager
def steady_collection() -> Iterator[None]:
    """Python's cycle collector tuned for a server holding thousands of connections, while the app serves.

    A worker holding 5,000 streams tracks some 600,000 objects, and a full collection walks them all in one
    stop of the event loop: 300-500 ms, that every stream waits (bench/README.md, "Connections held: memory
    and collector pauses"). What exists once the app has started (modules, the schema, the statements) is
    frozen, so that no collection walks it again; the youngest generation is collected after 5,000 net
    allocations instead of 700, so that the objects of a burst of connections, or of an event's sends, are
    not promoted into the oldest generation half-finished, whose growth is what starts a full collection.
    Process-wide settings: undone when the last app serving in this process stops.
    """
    if _Collector.serving == 0:
        gc.collect()
        gc.freeze()
        _Collector.thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *_Collector.thresholds[1:])
    _Collector.serving += 1
    try:
        yield
    finally:
        _Collector.serving -= 1
        if _Collector.serving == 0:
            gc.set_threshold(*_Collector.thresholds)
            gc.unfreeze()


async def viewer_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url.replace(path=request.url.path + "/"), status_code=308)


async def livez(request: Request) -> JSONResponse:
    """Liveness: the process answers (whether or not the database does); restart it when this fails."""
    return JSONResponse({"status": "ok", "version": __version__})


async def healthz(request: Request) -> JSONResponse:
    """Readiness (also /readyz): 200 while the database answers, 503 while it does not."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure to reach the database means "not healthy"
        log.warning("health check failed: %s", error)
        return JSONResponse({"status": "unavailable", "database": "down", "version": __version__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "up", "version": __version__})
