"""Settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 2626


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in ("1", "true", "yes", "on")


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    # libpq-style postgresql:// URL; None means: start the embedded PostgreSQL.
    database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".coco"))
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    pool_size: int = 10
    statement_timeout_ms: int = 15_000
    migrate_on_start: bool = True
    # How long the CLI retries its first connection while the database is unavailable.
    database_wait_s: int = 60
    log_level: str = "info"
    # Live events: per-subscriber queue bound, and the idle interval of SSE keep-alive comments.
    live_queue_size: int = 1000
    sse_keepalive_s: int = 15
    # Keep-alive pings on GraphQL WebSocket connections (subscriptions), in seconds.
    graphql_keepalive_s: int = 15
    # GraphQL protection: limits on one document, and on one page of a connection.
    graphql_max_depth: int = 15
    graphql_max_tokens: int = 5_000
    graphql_max_aliases: int = 30
    graphql_max_page_size: int = 100
    graphql_default_page_size: int = 100
    # How many parsed and validated documents each process keeps.
    graphql_cache_size: int = 256
    graphql_ide: bool = True
    # Introspection (__schema, __type); off for production schemas that clients need not discover.
    graphql_introspection: bool = True
    # Automatic persisted queries (Apollo's protocol): clients register documents by their SHA-256.
    graphql_persisted_queries: bool = True
    # A JSON file mapping operation ids to documents (graphql-codegen's or Relay's persisted output): when
    # given, only those documents are served (trusted documents), and nothing registers more.
    graphql_trusted_documents: str | None = None
    # max-age of GET query responses that succeeded, in seconds (0: a cache must revalidate, by ETag).
    graphql_get_max_age_s: int = 0
    # How many subscriptions one GraphQL WebSocket may run at once.
    graphql_max_subscriptions_per_connection: int = 20
    # Access control (api/edge/auth.py): off unless tokens or a JWT secret are given.
    tokens: str | None = None
    tokens_file: str | None = None
    jwt_secret: str | None = None
    # Anonymous requests may read while access control is on (never write); off by default then.
    anonymous_read: bool = False
    # Origins allowed by CORS: "*" (any, as PostgREST) or a comma-separated list.
    cors_origins: str = "*"
    # Limits: request bodies (413 beyond), rows of one REST read (None: no cap, PostgREST's db-max-rows).
    max_body_bytes: int = 10 * 1024 * 1024
    max_rows: int | None = None
    # REST GETs of a shape already seen skip parsing and planning (api/rest/repeated.py); off: always plan.
    rest_shapes: bool = True
    # "text" or "json": the format of the one log line per request.
    log_format: str = "text"

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            data_dir=Path(os.environ.get("COCO_DATA_DIR") or ".coco"),
            host=os.environ.get("COCO_HOST") or "127.0.0.1",
            port=_int("COCO_PORT", DEFAULT_PORT),
            workers=_int("COCO_WORKERS", default_workers()),
            pool_size=_int("COCO_DB_POOL_SIZE", 10),
            statement_timeout_ms=_int("COCO_STATEMENT_TIMEOUT_MS", 15_000),
            migrate_on_start=_bool("COCO_MIGRATE_ON_START", True),
            database_wait_s=_int("COCO_DATABASE_WAIT_SECONDS", 60),
            log_level=(os.environ.get("COCO_LOG_LEVEL") or "info").lower(),
            live_queue_size=_int("COCO_LIVE_QUEUE_SIZE", 1000),
            sse_keepalive_s=_int("COCO_SSE_KEEPALIVE_S", 15),
            graphql_keepalive_s=_int("COCO_GRAPHQL_KEEPALIVE_S", 15),
            graphql_max_depth=_int("COCO_GRAPHQL_MAX_DEPTH", 15),
            graphql_max_tokens=_int("COCO_GRAPHQL_MAX_TOKENS", 5_000),
            graphql_max_aliases=_int("COCO_GRAPHQL_MAX_ALIASES", 30),
            graphql_max_page_size=_int("COCO_GRAPHQL_MAX_PAGE_SIZE", 100),
            graphql_default_page_size=_int("COCO_GRAPHQL_DEFAULT_PAGE_SIZE", 100),
            graphql_cache_size=_int("COCO_GRAPHQL_CACHE_SIZE", 256),
            graphql_ide=_bool("COCO_GRAPHQL_IDE", True),
            graphql_introspection=_bool("COCO_GRAPHQL_INTROSPECTION", True),
            graphql_persisted_queries=_bool("COCO_GRAPHQL_PERSISTED_QUERIES", True),
            graphql_trusted_documents=os.environ.get("COCO_GRAPHQL_TRUSTED_DOCUMENTS") or None,
            graphql_get_max_age_s=_int("COCO_GRAPHQL_GET_MAX_AGE", 0),
            graphql_max_subscriptions_per_connection=_int("COCO_GRAPHQL_MAX_SUBSCRIPTIONS_PER_CONNECTION", 20),
            tokens=os.environ.get("COCO_TOKENS") or None,
            tokens_file=os.environ.get("COCO_TOKENS_FILE") or None,
            jwt_secret=os.environ.get("COCO_JWT_SECRET") or None,
            anonymous_read=_bool("COCO_ANONYMOUS_READ", False),
            cors_origins=os.environ.get("COCO_CORS_ORIGINS") or "*",
            max_body_bytes=_int("COCO_MAX_BODY_BYTES", 10 * 1024 * 1024),
            max_rows=_int("COCO_MAX_ROWS", 0) or None,
            rest_shapes=_bool("COCO_REST_SHAPES", True),
            log_format=(os.environ.get("COCO_LOG_FORMAT") or "text").lower(),
        )

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SystemExit("DATABASE_URL is not set (coco serve starts an embedded PostgreSQL when it is unset)")
        return self.database_url

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"
