"""`python -m bench`: seed (once), start the servers, measure every row side by side, report.

Every HTTP row uses wrk with the same threads, connections, duration and warm-up;
the SQL-only rows use pgbench with the same clients and threads. All processes
(PostgreSQL, the servers, the load generators) share this machine's cores over
loopback, as in ../shared/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import asyncpg

from api.store.database import libpq_url
from bench import pooler, postgraphile, postgraphile5, subscriptions, webhooks
from bench.cluster import BENCH_DIR, BenchDatabase, Cluster, reset_writes
from bench.loadgen import Load, pgbench_available, wrk_available
from bench.report import machine, memory_summary, table, timestamp_name, write_json
from bench.rows import BULK_SIZE, Context, Endpoint, median_row, probe_graphql, probe_rest
from bench.scenarios import SCALED, SCENARIOS
from bench.seed import FULL, QUICK, scaled
from bench.servers import MemorySampler, ServerProcess, free_port

log = logging.getLogger("bench")
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
LOGS = BENCH_DIR / ".data" / "logs"
OURS = "coco serve"
MINIMAL = "minimal handler"
POSTGRAPHILE = "PostGraphile 4"
POSTGRAPHILE5 = "PostGraphile 5"
OURS_POOLED = "coco serve via PgBouncer"
MINIMAL_POOLED = "minimal handler via PgBouncer"
OURS_JWT = "coco serve, access control on"
OURS_SCALED = "coco serve, scaled data"
# Every variable that turns access control on: our plain server runs with it off whatever the shell holds.
ACCESS_CONTROL_ENV = ("COCO_TOKENS", "COCO_TOKENS_FILE", "COCO_JWT_SECRET", "COCO_JWT_JWKS_URL", "COCO_JWT_JWKS_FILE")
# PgBouncer's server connections for the pooled rows (its default_pool_size), the same for both sides.
POOLED_SERVER_CONNECTIONS = 20
# Small enough that 32 connections each finish several in a quick 2 s run.
QUICK_BULK_SIZE = 100
ROW_KEYS = [*SCENARIOS, subscriptions.KEY, subscriptions.GRAPHQL_KEY, webhooks.KEY]
# What a run measures unless --only says otherwise: without --scale, every row but the scale rows; with it,
# the scale rows only.
DEFAULT_ROWS = [key for key in ROW_KEYS if key not in SCALED]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small dataset, 2 s runs: checks the harness, not the speed"
    )
    parser.add_argument("--duration", type=int, help="seconds per measurement (default 8, quick 2)")
    parser.add_argument("--warmup", type=int, help="seconds of unmeasured load first (default 2, quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections and pgbench clients")
    parser.add_argument("--threads", type=int, default=2, help="wrk and pgbench threads")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each Python server")
    parser.add_argument(
        "--postgraphile-workers",
        type=int,
        help="worker processes of PostGraphile 4 and 5 (default: --workers, the same as ours)",
    )
    parser.add_argument("--only", help=f"comma-separated rows to run, of: {', '.join(ROW_KEYS)}")
    parser.add_argument("--no-sql", action="store_true", help="leave out the pgbench rows")
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="also seed a database with N times the check-ins, updates and events (its own, kept like the 1x "
        "one) and measure the scale rows: each request on N times the data beside the same on the 1x data",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each row this many times and keep each side's median run (noisy machines)",
    )
    parser.add_argument(
        "--ours-root",
        type=Path,
        default=ROOT,
        help="serve our side from another checkout of this repository (its .venv if it has one), "
        "e.g. a branch before merging; it must have the same migrations",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("alembic", "coco"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not wrk_available():
        print("wrk is not installed: run `make bench` (it installs it) or your package manager", file=sys.stderr)
        return 2
    only = chosen_rows(args.only, args.scale)
    if isinstance(only, str):
        print(only, file=sys.stderr)
        return 2
    ours_root = args.ours_root.resolve()
    if _migrations(ours_root) != _migrations(ROOT):
        print(f"{ours_root} has other migrations than {ROOT}; the cached database would not fit it", file=sys.stderr)
        return 2
    scale = QUICK if args.quick else FULL
    # Its own database per scale, so the 1x one stays cached beside it.
    big = scaled(args.scale, scale) if args.scale > 1 and set(only) & set(SCALED) else None
    load = Load(
        connections=args.connections,
        threads=args.threads,
        duration_s=args.duration or (2 if args.quick else 8),
        warmup_s=args.warmup if args.warmup is not None else (1 if args.quick else 2),
    )
    database = "coco_bench_quick" if args.quick else "coco_bench"
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document: dict = {
        "started_at": started,
        "quick": args.quick,
        "machine": machine(),
        "load": asdict(load),
        "workers": args.workers,
        "postgraphile_workers": args.postgraphile_workers or args.workers,
        "repeat": args.repeat,
        "scale": args.scale,
        "ours": {"root": str(ours_root), "commit": _commit(ours_root)},
    }

    cluster = Cluster()
    cluster.start()
    servers: list[ServerProcess] = []
    live: subscriptions.Report | None = None
    live_graphql: subscriptions.Report | None = None
    bouncer: pooler.PgBouncer | None = None
    hooks: webhooks.Report | None = None
    try:
        db = asyncio.run(cluster.prepare(database, scale))
        document["dataset"] = {
            "database": db.name,
            **asdict(scale),
            "seeded_in_s": db.seeded_in_s,
            "postgresql": asyncio.run(_server_version(db.url)),
        }
        db_scaled = None
        if big is not None:
            db_scaled = asyncio.run(cluster.prepare(f"{database}_x{args.scale}", big))
            document["dataset_scaled"] = {
                "database": db_scaled.name,
                "factor": args.scale,
                **asdict(big),
                "seeded_in_s": db_scaled.seeded_in_s,
            }
        with tempfile.TemporaryDirectory(prefix="bench-") as work:
            needed = _servers_for(only)
            pooled_url = None
            if needed & {OURS_POOLED, MINIMAL_POOLED}:
                if pooler.PGBOUNCER.exists():
                    bouncer = pooler.PgBouncer(
                        cluster.server.url(), pool_mode="transaction", pool_size=POOLED_SERVER_CONNECTIONS
                    ).__enter__()
                    pooled_url = bouncer.url(db.name)
                    document["pgbouncer"] = {
                        "version": _pgbouncer_version(),
                        "pool_mode": "transaction",
                        "default_pool_size": POOLED_SERVER_CONNECTIONS,
                    }
                else:
                    log.error(
                        "%s is missing (apt-get install pgbouncer): the pooled rows are skipped", pooler.PGBOUNCER
                    )
            jwt_secret = secrets.token_urlsafe(48)
            endpoints = _start_servers(
                db, args, servers, needed=needed, pooled_url=pooled_url, jwt_secret=jwt_secret, db_scaled=db_scaled
            )
            ours_graphql = Endpoint(OURS, endpoints[OURS].base_url, endpoints[OURS].unavailable)
            for name in (OURS, MINIMAL, OURS_POOLED, MINIMAL_POOLED):
                probe_rest(endpoints[name])
            probe_graphql(ours_graphql)
            probe_graphql(endpoints[POSTGRAPHILE])
            probe_graphql(endpoints[POSTGRAPHILE5])
            context = Context(
                db=db,
                load=load,
                ours=endpoints[OURS],
                ours_graphql=ours_graphql,
                minimal=endpoints[MINIMAL],
                postgraphile=endpoints[POSTGRAPHILE],
                postgraphile5=endpoints[POSTGRAPHILE5],
                ours_pooled=endpoints[OURS_POOLED],
                minimal_pooled=endpoints[MINIMAL_POOLED],
                ours_jwt=endpoints[OURS_JWT],
                jwt_secret=jwt_secret,
                ours_scaled=endpoints[OURS_SCALED],
                db_scaled=db_scaled,
                work_dir=Path(work),
                with_sql=not args.no_sql and pgbench_available(),
                bulk_size=QUICK_BULK_SIZE if args.quick else BULK_SIZE,
            )
            rows = []
            with MemorySampler(servers) as sampler:
                for name in (name for name in only if name in SCENARIOS):
                    runs = []
                    for attempt in range(max(1, args.repeat)):
                        log.info("measuring %s%s", name, f" ({attempt + 1}/{args.repeat})" if args.repeat > 1 else "")
                        runs.append(SCENARIOS[name](context))
                    rows.append(runs[0] if len(runs) == 1 else median_row(runs))
                if subscriptions.KEY in only:
                    ours = next((s for s in servers if s.name == OURS), None)
                    live = _subscriptions(context, args.quick, ours.pids if ours else list)
                if subscriptions.GRAPHQL_KEY in only:
                    ours = next((s for s in servers if s.name == OURS), None)
                    live_graphql = _subscriptions(context, args.quick, ours.pids if ours else list, "graphql")
                if webhooks.KEY in only:
                    ours = next((s for s in servers if s.name == OURS), None)
                    hooks = _webhooks(context, args.quick, ours.pids if ours else list)
            memory = sampler.report()
    finally:
        for server in servers:
            server.stop()
        if bouncer is not None:
            bouncer.stop()
        cluster.stop()

    document["rows"] = [row.as_dict() for row in rows]
    document[subscriptions.KEY] = live.as_dict() if live is not None else None
    document[subscriptions.GRAPHQL_KEY] = live_graphql.as_dict() if live_graphql is not None else None
    document[webhooks.KEY] = hooks.as_dict() if hooks is not None else None
    served = (
        any(row.ours.measurement for row in rows)
        or any(bool(report and report.results) for report in (live, live_graphql))
        or bool(hooks and hooks.delivered)
    )
    document["memory"] = {"processes": memory, **memory_summary(memory, OURS, served)}
    document["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print()
    scaled_data = f" (and {big.checkins:,} / {big.updates:,} for the scale rows)" if big is not None else ""
    print(
        f"CoCo benchmark, {started}: {scale.checkins:,} check-ins, {scale.updates:,} updates{scaled_data}; "
        f"wrk -t{load.threads} "
        f"-c{load.connections} -d{load.duration_s}s after {load.warmup_s}s warm-up; {args.workers} workers per Python "
        f"server, {args.postgraphile_workers or args.workers} per PostGraphile (4 and 5)"
    )
    print(table(rows, memory, OURS, live, served, hooks, live_graphql))
    path = RESULTS / timestamp_name(started)
    write_json(path, document)
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0


def chosen_rows(only: str | None, scale: int) -> list[str] | str:
    """The rows to measure (from --only, else the default for the scale), or why the choice is wrong."""
    if scale < 1:
        return "--scale must be 1 or more"
    rows = [name.strip() for name in only.split(",")] if only else (list(SCALED) if scale > 1 else DEFAULT_ROWS)
    unknown = set(rows) - set(ROW_KEYS)
    if unknown:
        return f"unknown rows {sorted(unknown)}; choose from {ROW_KEYS}"
    if scale == 1 and set(rows) & set(SCALED):
        return f"the rows {sorted(set(rows) & set(SCALED))} need --scale N with N > 1"
    return rows


def _subscriptions(
    ctx: Context, quick: bool, server_pids: Callable[[], list[int]], transport: str = "sse"
) -> subscriptions.Report:
    """Latency of live events over SSE (or GraphQL subscriptions over WebSocket, `transport="graphql"`) from
    the same `coco serve` the other rows measured."""
    if ctx.ours.base_url is None:
        return subscriptions.Report(transport, [], skipped=ctx.ours.unavailable or "our server did not start")
    plans = subscriptions.default_plans(events=40 if quick else 200)
    try:
        return asyncio.run(
            subscriptions.measure(
                ctx.ours.base_url,
                ctx.db.url,
                plans,
                actor_id="p-1",
                team_id="t-1",
                server_pids=server_pids,
                transport=transport,
            )
        )
    except (RuntimeError, OSError, TimeoutError) as error:
        log.error("subscriptions (%s): %s", transport, error)
        return subscriptions.Report(transport, [], skipped=f"failed: {error}")
    finally:
        asyncio.run(reset_writes(ctx.db.url, ctx.db.seed_max_seq))


def _webhooks(ctx: Context, quick: bool, server_pids: Callable[[], list[int]]) -> webhooks.Report:
    """Webhook delivery lag at 100 events/s from the same `coco serve` the other rows measured."""
    if ctx.ours.base_url is None:
        return webhooks.Report(skipped=ctx.ours.unavailable or "our server did not start")
    try:
        return asyncio.run(
            webhooks.measure(ctx.db.url, 200 if quick else 1000, actor_id="p-1", team_id="t-1", server_pids=server_pids)
        )
    except (RuntimeError, OSError, TimeoutError) as error:
        log.error("webhooks: %s", error)
        return webhooks.Report(skipped=f"failed: {error}")
    finally:
        asyncio.run(reset_writes(ctx.db.url, ctx.db.seed_max_seq))


def _servers_for(rows: list[str]) -> set[str]:
    needed = {OURS}
    if any(name.startswith("rest_") for name in rows):
        needed.add(MINIMAL)
    if any(name.startswith("pooled_") for name in rows):
        needed |= {OURS_POOLED, MINIMAL_POOLED}
    if any("_jwt_" in name for name in rows):
        needed.add(OURS_JWT)
    if any(name in SCALED for name in rows):
        needed.add(OURS_SCALED)
    graphql = [name for name in rows if name.startswith("graphql_")]
    if any(not name.endswith("_pg5") for name in graphql):
        needed.add(POSTGRAPHILE)
    if any(name.endswith("_pg5") for name in graphql):
        needed.add(POSTGRAPHILE5)
    return needed


def _start_servers(
    db: BenchDatabase,
    args: argparse.Namespace,
    servers: list[ServerProcess],
    needed: set[str],
    pooled_url: str | None = None,
    jwt_secret: str | None = None,
    db_scaled: BenchDatabase | None = None,
) -> dict[str, Endpoint]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k not in ACCESS_CONTROL_ENV}
    python_env = {**env, "DATABASE_URL": db.url, "PYTHONPATH": str(ROOT)}
    ours_root = args.ours_root.resolve()
    ours_python = ours_root / ".venv" / "bin" / "python"
    ours_port, minimal_port, postgraphile_port, postgraphile5_port = free_port(), free_port(), free_port(), free_port()
    candidates = [
        ServerProcess(
            OURS,
            [
                str(ours_python) if ours_python.exists() else sys.executable,
                "-m",
                "api",
                "serve",
                "--workers",
                str(args.workers),
                "--port",
                str(ours_port),
            ],
            port=ours_port,
            cwd=ours_root,
            log_file=LOGS / "coco.log",
            ready_path="/healthz",
            env={
                **python_env,
                "PYTHONPATH": str(ours_root),
                "PYTHONDONTWRITEBYTECODE": "1",
                "COCO_LOG_LEVEL": "warning",
                # The webhooks row's receiver listens on loopback (api/webhooks/ssrf.py refuses it otherwise).
                "COCO_WEBHOOK_ALLOW_PRIVATE": "true",
            },
        ),
        ServerProcess(
            MINIMAL,
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.minimal_app:app",
                "--workers",
                str(args.workers),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--host",
                "127.0.0.1",
                "--port",
                str(minimal_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            port=minimal_port,
            cwd=ROOT,
            log_file=LOGS / "minimal.log",
            env=python_env,
        ),
    ]
    endpoints = {
        OURS: Endpoint(OURS, None),
        MINIMAL: Endpoint(MINIMAL, None),
        POSTGRAPHILE: Endpoint(POSTGRAPHILE, None),
        POSTGRAPHILE5: Endpoint(POSTGRAPHILE5, None),
        OURS_POOLED: Endpoint(OURS_POOLED, None, "skipped: PgBouncer is not installed (apt-get install pgbouncer)"),
        MINIMAL_POOLED: Endpoint(
            MINIMAL_POOLED, None, "skipped: PgBouncer is not installed (apt-get install pgbouncer)"
        ),
        OURS_JWT: Endpoint(OURS_JWT, None),
        OURS_SCALED: Endpoint(OURS_SCALED, None, "skipped: no scaled database (--scale N, N > 1)"),
    }
    if jwt_secret is not None:
        ours = candidates[0]
        ours_jwt_port = free_port()
        candidates.append(
            ServerProcess(
                OURS_JWT,
                [*ours.argv[:-1], str(ours_jwt_port)],
                port=ours_jwt_port,
                cwd=ours.cwd,
                log_file=LOGS / "coco-jwt.log",
                ready_path="/healthz",
                # Everything else as the plain server: only the HS256 secret differs.
                env={**ours.env, "COCO_JWT_SECRET": jwt_secret},
            )
        )
    else:
        endpoints[OURS_JWT].unavailable = "skipped: no JWT secret"
    if db_scaled is not None:
        ours = candidates[0]
        ours_scaled_port = free_port()
        endpoints[OURS_SCALED] = Endpoint(f"coco serve, {args.scale}x data", None)
        candidates.append(
            ServerProcess(
                OURS_SCALED,
                [*ours.argv[:-1], str(ours_scaled_port)],
                port=ours_scaled_port,
                cwd=ours.cwd,
                log_file=LOGS / "coco-scaled.log",
                ready_path="/healthz",
                # Everything as the plain server's but the database.
                env={**ours.env, "DATABASE_URL": db_scaled.url},
            )
        )
    if pooled_url is not None:
        endpoints[OURS_POOLED].unavailable = endpoints[MINIMAL_POOLED].unavailable = None
        ours, minimal = candidates[:2]
        ours_pooled_port, minimal_pooled_port = free_port(), free_port()
        candidates += [
            ServerProcess(
                OURS_POOLED,
                [*ours.argv[:-1], str(ours_pooled_port)],
                port=ours_pooled_port,
                cwd=ours.cwd,
                log_file=LOGS / "coco-pooled.log",
                ready_path="/healthz",
                env={
                    **ours.env,
                    "DATABASE_URL": pooled_url,
                    "DIRECT_DATABASE_URL": db.url,
                    "COCO_DB_POOLER": "transaction",
                },
            ),
            ServerProcess(
                MINIMAL_POOLED,
                [*minimal.argv[:-4], str(minimal_pooled_port), *minimal.argv[-3:]],
                port=minimal_pooled_port,
                cwd=minimal.cwd,
                log_file=LOGS / "minimal-pooled.log",
                env={**minimal.env, "DATABASE_URL": pooled_url, "BENCH_POOLER": "transaction"},
            ),
        ]
    workers = args.postgraphile_workers or args.workers
    if postgraphile.available():
        candidates.append(
            ServerProcess(
                POSTGRAPHILE,
                postgraphile.command(db.name, db.socket_dir, db.port, postgraphile_port, workers),
                port=postgraphile_port,
                cwd=ROOT,
                log_file=LOGS / "postgraphile.log",
                env=postgraphile.environment(),
                ready_path="/graphql",
            )
        )
    else:
        endpoints[POSTGRAPHILE].unavailable = "skipped: PostGraphile is not installed (make bench-tools)"
    if postgraphile5.available():
        candidates.append(
            ServerProcess(
                POSTGRAPHILE5,
                postgraphile5.command(),
                port=postgraphile5_port,
                cwd=ROOT,
                log_file=LOGS / "postgraphile5.log",
                env=postgraphile5.environment(db.name, db.socket_dir, db.port, postgraphile5_port, workers),
                ready_path="/graphql",
            )
        )
    else:
        endpoints[POSTGRAPHILE5].unavailable = "skipped: PostGraphile 5 or Node 22 is not installed (make bench-tools)"
    for server in candidates:
        if server.name not in needed:
            continue
        try:
            server.start()
        except RuntimeError as error:
            log.error("%s did not start: %s", server.name, error)
            endpoints[server.name].unavailable = f"skipped: did not start ({str(error)[:200]})"
            continue
        servers.append(server)
        endpoints[server.name].base_url = server.base_url
    return endpoints


def _pgbouncer_version() -> str:
    done = subprocess.run([str(pooler.PGBOUNCER), "--version"], capture_output=True, text=True)
    return done.stdout.splitlines()[0] if done.returncode == 0 and done.stdout else "unknown"


def _migrations(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "migrations" / "versions").glob("*.py"))


def _commit(root: Path) -> str | None:
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True).stdout
    return done.stdout.strip() + ("+changes" if dirty.strip() else "")


async def _server_version(url: str) -> str:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
