"""Settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 2626
# Seconds a worker has, past the graceful period, to close its connections and exit (see shutdown_grace_s).
SHUTDOWN_FINISH_S = 5


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise SystemExit(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in ("1", "true", "yes", "on")


POOLER_MODES = ("none", "session", "transaction")


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (os.environ.get(name) or default).strip().lower()
    if raw not in choices:
        raise SystemExit(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _seconds_list(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        values = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(v < 0 for v in values):
        raise SystemExit(f"{name} must be a comma-separated list of seconds (e.g. 5,30,120), not {raw!r}")
    return values


def _hourly_until_a_day() -> tuple[float, ...]:
    """5 s, 30 s, 2 min, 10 min, 1 h, then hourly while the waits stay within 24 h."""
    steps = [5.0, 30.0, 120.0, 600.0, 3600.0]
    while sum(steps) + 3600 <= 24 * 3600:
        steps.append(3600.0)
    return tuple(steps)


WEBHOOK_RETRY_SCHEDULE_S = _hourly_until_a_day()


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    # libpq-style postgresql:// URL; None means: start the embedded PostgreSQL.
    database_url: str | None = None
    # A session connection straight to PostgreSQL (or through a session-mode pooler) for what needs
    # one: LISTEN, the migrations, long streaming reads, the CLI's commands. None: DATABASE_URL.
    direct_database_url: str | None = None
    # What sits between DATABASE_URL and PostgreSQL: "none", or a pooler in "session" or "transaction"
    # mode (api/store/database.py, Pooling).
    db_pooler: str = "none"
    # Whether that pooler keeps the TimeZone sent at connection on every server connection it lends
    # (PgBouncer does): a read alone then runs in autocommit; false: SET LOCAL in every transaction.
    db_pooler_tracks_timezone: bool = True
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
    # The cost of a document once its fragments are spread (api/graphql/cost.py), and the values in one filter.
    graphql_max_cost: int = 5_000_000
    graphql_max_filter_nodes: int = 2_000
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
    # JWTs as identity providers issue them: keys from a JWKS (URL or file), aud/iss checked when set,
    # exp/nbf with leeway; where the scope, actor and teams are in the claims (api/edge/claims.py).
    jwt_jwks_url: str | None = None
    jwt_jwks_file: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_s: int = 30
    jwt_scope_claim: str | None = None
    jwt_actor_claim: str = "actor_id"
    jwt_teams_claim: str = "teams"
    # Anonymous requests may read while access control is on (never write); off by default then.
    anonymous_read: bool = False
    # Origins allowed by CORS: "*" (any, as PostgREST) or a comma-separated list.
    cors_origins: str = "*"
    # Limits: request bodies (413 beyond), rows of one REST read (None: no cap, PostgREST's db-max-rows).
    max_body_bytes: int = 10 * 1024 * 1024
    max_rows: int | None = None
    # REST GETs of a shape already seen skip parsing and planning (api/rest/repeated.py); off: always plan.
    rest_shapes: bool = True
    # REST aggregate functions in select (`amount.sum()`, `count()`); off: refused with PGRST123, as PostgREST's
    # default (db-aggregates-enabled = false).
    rest_aggregates: bool = True
    # "text" or "json": the format of the one log line per request.
    log_format: str = "text"
    # After SIGTERM: how long requests in flight may take to finish (then they are cancelled); a worker
    # still running SHUTDOWN_FINISH_S after that (a request that never yields, a cleanup that hangs) is ended.
    shutdown_grace_s: int = 10
    # Webhooks (api/webhooks): the waits between attempts at one event (jittered), the attempt's
    # timeout, whether URLs may reach loopback, private and link-local addresses, how long attempts
    # stay in the delivery log, and the lease that makes one process the deliverer of a webhook
    # (another takes over within about this long once it dies).
    webhook_retry_schedule_s: tuple[float, ...] = WEBHOOK_RETRY_SCHEDULE_S
    webhook_timeout_s: float = 10.0
    webhook_allow_private: bool = False
    webhook_log_days: int = 7
    webhook_lease_s: float = 5.0

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            direct_database_url=os.environ.get("DIRECT_DATABASE_URL") or None,
            db_pooler=_choice("COCO_DB_POOLER", "none", POOLER_MODES),
            db_pooler_tracks_timezone=_bool("COCO_DB_POOLER_TRACKS_TIMEZONE", True),
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
            graphql_max_cost=_int("COCO_GRAPHQL_MAX_COST", 5_000_000),
            graphql_max_filter_nodes=_int("COCO_GRAPHQL_MAX_FILTER_NODES", 2_000),
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
            jwt_jwks_url=os.environ.get("COCO_JWT_JWKS_URL") or None,
            jwt_jwks_file=os.environ.get("COCO_JWT_JWKS_FILE") or None,
            jwt_audience=os.environ.get("COCO_JWT_AUDIENCE") or None,
            jwt_issuer=os.environ.get("COCO_JWT_ISSUER") or None,
            jwt_leeway_s=_int("COCO_JWT_LEEWAY_S", 30),
            jwt_scope_claim=os.environ.get("COCO_JWT_SCOPE_CLAIM") or None,
            jwt_actor_claim=os.environ.get("COCO_JWT_ACTOR_CLAIM") or "actor_id",
            jwt_teams_claim=os.environ.get("COCO_JWT_TEAMS_CLAIM") or "teams",
            anonymous_read=_bool("COCO_ANONYMOUS_READ", False),
            cors_origins=os.environ.get("COCO_CORS_ORIGINS") or "*",
            max_body_bytes=_int("COCO_MAX_BODY_BYTES", 10 * 1024 * 1024),
            max_rows=_int("COCO_MAX_ROWS", 0) or None,
            rest_shapes=_bool("COCO_REST_SHAPES", True),
            rest_aggregates=_bool("COCO_REST_AGGREGATES", True),
            log_format=(os.environ.get("COCO_LOG_FORMAT") or "text").lower(),
            shutdown_grace_s=_int("COCO_SHUTDOWN_GRACE_S", 10),
            webhook_retry_schedule_s=_seconds_list("COCO_WEBHOOK_RETRY_SCHEDULE_S", WEBHOOK_RETRY_SCHEDULE_S),
            webhook_timeout_s=_seconds("COCO_WEBHOOK_TIMEOUT_S", 10.0),
            webhook_allow_private=_bool("COCO_WEBHOOK_ALLOW_PRIVATE", False),
            webhook_log_days=_int("COCO_WEBHOOK_LOG_DAYS", 7),
            webhook_lease_s=_seconds("COCO_WEBHOOK_LEASE_S", 5.0),
        )

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SystemExit("DATABASE_URL is not set (coco serve starts an embedded PostgreSQL when it is unset)")
        return self.database_url

    @property
    def session_database_url(self) -> str:
        """Where session state (LISTEN, a lock held across transactions, a long cursor) is kept."""
        return self.direct_database_url or self.require_database_url()

    @property
    def session_pooler(self) -> str:
        """The pooler mode of `session_database_url`: DIRECT_DATABASE_URL may be PostgreSQL itself or a
        session-mode pooler (Supabase's port 5432), and either takes settings SET after connecting."""
        if self.direct_database_url is None:
            return self.db_pooler
        return "none" if self.db_pooler == "none" else "session"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"
