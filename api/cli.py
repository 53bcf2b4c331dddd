"""The `coco` command: serve, mcp, migrate, seed, export, import, token, webhook, version."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import http.client
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from api import __version__
from api.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("coco")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coco", description="The Continuous Coordination server.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the API server (with an embedded PostgreSQL unless DATABASE_URL is set)"
    )
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1, or COCO_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 2626, or COCO_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default: CPU count up to 4, or COCO_WORKERS)")
    commands.add_parser(
        "mcp",
        help="serve the MCP tools over stdio for an assistant that launches this command (uses "
        "DATABASE_URL, or the embedded PostgreSQL)",
    )
    commands.add_parser("migrate", help="apply the database migrations and exit")
    seed = commands.add_parser(
        "seed",
        help="write (or replace) the demo data: three teams, their people and agents, "
        "a week of check-ins and the Launch PSC 2.0 goal stories",
    )
    seed.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="the last day of the demo week (default: today, UTC)",
    )
    export = commands.add_parser("export", help="write all data as JSON Lines, one CoCo document per line")
    export.add_argument("file", nargs="?", help="file to write (default: standard output)")
    import_ = commands.add_parser("import", help="add the data of a JSON Lines export, all of it or nothing")
    import_.add_argument("file", help="file to read, or - for standard input")
    token = commands.add_parser("token", help="mint or inspect a bearer token (JWT signed with COCO_JWT_SECRET)")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    mint = token_commands.add_parser("create", help="print a new token")
    mint.add_argument("--scope", required=True, choices=["read", "write", "admin"], help="what the token may do")
    mint.add_argument("--actor", help="the actor it writes check-ins and goal story updates as (and only as)")
    mint.add_argument("--teams", help="comma-separated team ids it is limited to")
    mint.add_argument("--expires", default="30d", help="lifetime: 30d, 12h, 45m, 2w (default 30d, at most 366d)")
    mint.add_argument("--subject", help="the sub claim: who holds it, for the logs")
    look = token_commands.add_parser("inspect", help="say what a token grants, and when it expires")
    look.add_argument("token", help="the token (or Bearer <token>)")
    from api.webhooks import command as webhook_command

    webhook_command.add_parser(commands)
    commands.add_parser("version", help="print the version")

    args = parser.parse_args(argv)
    settings = Settings.from_environment()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic announces each of its plugins at INFO on every run; the migrations themselves stay visible.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    if args.command == "version":
        print(f"coco {__version__}")
        return 0
    if args.command == "token":
        return _token(settings, args)
    if args.command == "migrate":
        return _with_database(settings, _migrate)
    if args.command == "seed":
        return _with_database(settings, lambda s: _run(s, _seed, args.today))
    if args.command == "export":
        return _with_database(settings, lambda s: _run(s, _export, args.file))
    if args.command == "import":
        return _import_file(settings, args.file)
    if args.command == "webhook":
        return _with_database(settings, lambda s: _run(s, _webhook, s, args))
    if args.command == "mcp":
        from api.mcp import stdio

        # stdout is the protocol channel: logging goes to stderr (basicConfig's default stream).
        return stdio.main(lambda run: _with_database(settings, run))
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers)) if v}
    return _with_database(dataclasses.replace(settings, **overrides), _serve)


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from api.edge import tokens
    from api.edge.auth import Access

    try:
        access = Access.from_settings(settings)
        if args.token_command == "create":
            teams = [t.strip() for t in args.teams.split(",") if t.strip()] if args.teams is not None else None
            print(
                tokens.create(
                    access,
                    scope=args.scope,
                    expires_s=tokens.duration_s(args.expires),
                    actor=args.actor,
                    teams=teams,
                    subject=args.subject,
                )
            )
            return 0
        accepted, lines = tokens.inspect(access, args.token)
    except ValueError as error:
        print(f"coco token: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0 if accepted else 1


def _with_database(settings: Settings, run: Callable[[Settings], int]) -> int:
    """Run with DATABASE_URL, or with the embedded PostgreSQL started for as long as `run` lasts."""
    if settings.database_url:
        return run(settings)
    from api.edge.draining import on_forced_exit
    from api.ops.embedded import EmbeddedPostgres

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(settings.pgdata)
    # A server already running on the data dir (`coco serve` in another shell) is reused
    # and left running; only a server started here is stopped here.
    started_here = not server.running
    log.info("%s the embedded PostgreSQL in %s", "starting" if started_here else "using", settings.pgdata)
    url = server.start()
    # Worker processes read the URL from the environment they inherit.
    os.environ["DATABASE_URL"] = url
    # uvicorn re-raises the SIGTERM it shut down on; without a handler that would end the
    # process at once and leave the database running, so let it unwind through `finally`.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    # A server run in this process (one worker) that has to be ended stops the database on its way out.
    forced = on_forced_exit(server.stop) if started_here else contextlib.nullcontext()
    try:
        with forced:
            return run(dataclasses.replace(settings, database_url=url))
    finally:
        if started_here:
            log.info("stopping the embedded PostgreSQL")
            server.stop()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _migrate(settings: Settings) -> int:
    from api.store.migrate import upgrade

    async def go(engine: AsyncEngine) -> int:
        await upgrade(engine)
        return 0

    if _run(settings, go) != 0:
        return 1
    print("database is at the newest migration")
    return 0


def _run(settings: Settings, command: Callable[..., Awaitable[int]], *args: Any) -> int:
    """Run an async command on an engine, once the database answers (it may still be starting)."""
    from api.errors import DatabaseFault, DomainError
    from api.store.database import create_engine, wait_until_reachable

    async def go() -> int:
        # The commands' long transactions and the migrations' lock want a session: DIRECT_DATABASE_URL.
        engine = create_engine(
            settings.session_database_url,
            pool_size=2,
            statement_timeout_ms=None,
            pooler=settings.session_pooler,
        )
        try:
            await wait_until_reachable(engine, settings.database_wait_s)
            return await command(engine, *args)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DomainError as error:
        print(f"coco: {error.message}", file=sys.stderr)
        return 1
    except DatabaseFault as error:  # e.g. a wrong password or database name: no use retrying
        print(f"coco: the database refused: {error.message}", file=sys.stderr)
        return 1


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _seed(engine: AsyncEngine, today: dt.date | None) -> int:
    from api.ops.demo import seed
    from api.store.migrate import upgrade
    from api.store.writes import WriteService

    await upgrade(engine)
    await seed(WriteService(engine), today=today, progress=_progress)
    return 0


async def _export(engine: AsyncEngine, file: str | None) -> int:
    from api.ops.transfer import export_lines
    from api.store.reads import Reader

    def counted(entity_name: str, n: int) -> None:
        _progress(f"exported {n} {entity_name.replace('_', ' ')} document(s)")

    async def write(out: TextIO) -> None:
        async for line in export_lines(Reader(engine), progress=counted):
            out.write(line + "\n")

    if file is None or file == "-":
        await write(sys.stdout)
        sys.stdout.flush()
        return 0
    # Written aside and renamed, so a failed export never leaves a truncated file behind.
    target = Path(file)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            await write(out)
        partial.replace(target)
    except OSError as error:
        print(f"coco export: cannot write {target}: {error.strerror}", file=sys.stderr)
        return 1
    finally:
        partial.unlink(missing_ok=True)
    _progress(f"wrote {target}")
    return 0


def _import_file(settings: Settings, file: str) -> int:
    """The file is opened before the database starts, so a wrong path fails at once."""
    with contextlib.ExitStack() as closing:
        try:
            source: TextIO = sys.stdin if file == "-" else closing.enter_context(open(file, encoding="utf-8"))
        except OSError as error:
            print(f"coco import: cannot read {file}: {error.strerror}", file=sys.stderr)
            return 1
        return _with_database(settings, lambda s: _run(s, _import, source))


async def _import(engine: AsyncEngine, source: TextIO) -> int:
    from api.errors import DomainError
    from api.ops.transfer import ImportFileError, import_lines
    from api.store.migrate import upgrade
    from api.store.writes import WriteService

    def counted(entity_name: str, n: int) -> None:
        _progress(f"imported {n} {entity_name.replace('_', ' ')} document(s) so far")

    try:
        await upgrade(engine)
        result = await import_lines(WriteService(engine), source, progress=counted)
    except (ImportFileError, DomainError) as error:
        print(f"coco import: {error}; nothing was imported", file=sys.stderr)
        return 1
    total = sum(result.counts.values())
    _progress(
        f"imported {total} document(s) in one transaction"
        + (f"; recorded {result.events_recorded} missing coordination event(s)" if result.events_recorded else "")
    )
    return 0


async def _webhook(engine: AsyncEngine, settings: Settings, args: argparse.Namespace) -> int:
    from api.store.migrate import upgrade
    from api.webhooks import command

    await upgrade(engine)
    return await command.run(command.admin_for(settings, engine), args, sys.stdout)


def _serve(settings: Settings) -> int:
    from api.metrics import prepare_multiprocess

    # Migrate once here so that workers start against a ready schema (they would wait on the lock anyway).
    if settings.migrate_on_start and _migrate(settings) != 0:
        return 1
    given_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if settings.workers > 1:
        # Before any worker imports the Prometheus client: /metrics then sums every worker's counts.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir = prepare_multiprocess(given_metrics_dir)
        # The schema is at the newest migration now: the workers (which read their settings from the
        # environment) need not take the lock again, nor import Alembic for it (5 MB each).
        os.environ["COCO_MIGRATE_ON_START"] = "0"
    stopped = threading.Event()
    announcing = threading.Thread(target=_announce_when_serving, args=(settings, stopped), daemon=True)
    announcing.start()
    try:
        _run_uvicorn(settings)
    finally:
        stopped.set()
        if settings.workers > 1 and not given_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _announce_when_serving(settings: Settings, stopped: threading.Event) -> None:
    """Log "serving on" once the server answers, not when uvicorn is asked to start: a worker
    accepts requests only after importing the app and starting it, seconds later."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    while not stopped.is_set():
        probe = http.client.HTTPConnection(host, settings.port, timeout=2)
        try:
            probe.request("GET", "/livez")
            probe.getresponse().read()
        except (OSError, http.client.HTTPException):  # not listening yet
            stopped.wait(0.05)
            continue
        finally:
            probe.close()
        log.info("serving on http://%s:%d with %d worker(s)", settings.host, settings.port, settings.workers)
        return


def _run_uvicorn(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        proxy_headers=True,
        # Frames are small JSON sent to many subscribers at once (api/graphql/fanout.py): compressing each
        # subscriber's copy with its own deflate context cost more CPU than every other part of a send.
        ws_per_message_deflate=False,
        # api/edge/observe.py logs each request once, with its request id.
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


if __name__ == "__main__":
    sys.exit(main())
