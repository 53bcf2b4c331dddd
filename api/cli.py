"""The `coco` command: serve, mcp, migrate, version."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .config import Settings

log = logging.getLogger("coco")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coco", description="The Continuous Coordination server.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the API server (with an embedded PostgreSQL unless DATABASE_URL is set)")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1, or COCO_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 2626, or COCO_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default: CPU count up to 4, or COCO_WORKERS)")
    commands.add_parser(
        "mcp", help="serve the MCP tools over stdio for an assistant that launches this command (uses "
                    "DATABASE_URL, or the embedded PostgreSQL)")
    commands.add_parser("migrate", help="apply the database migrations and exit")
    commands.add_parser("version", help="print the version")

    args = parser.parse_args(argv)
    settings = Settings.from_environment()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.command == "version":
        print(f"coco {__version__}")
        return 0
    if args.command == "migrate":
        return _with_database(settings, _migrate)
    if args.command == "mcp":
        from .mcp import stdio

        # stdout is the protocol channel: logging goes to stderr (basicConfig's default stream).
        return stdio.main(lambda run: _with_database(settings, run))
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers)) if v}
    return _with_database(dataclasses.replace(settings, **overrides), _serve)


def _with_database(settings: Settings, run: Callable[[Settings], int]) -> int:
    """Run with DATABASE_URL, or with the embedded PostgreSQL started for as long as `run` lasts."""
    if settings.database_url:
        return run(settings)
    from .embedded import EmbeddedPostgres

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(settings.pgdata)
    # Another process (a `coco serve`, an assistant's `coco mcp`) may already run it; leave that one running.
    started_here = not server.running
    log.info("starting the embedded PostgreSQL in %s", settings.pgdata)
    url = server.start()
    # Worker processes read the URL from the environment they inherit.
    os.environ["DATABASE_URL"] = url
    try:
        return run(dataclasses.replace(settings, database_url=url))
    finally:
        if started_here:
            log.info("stopping the embedded PostgreSQL")
            server.stop()


def _migrate(settings: Settings) -> int:
    from .database import create_engine
    from .migrate import upgrade

    async def go() -> None:
        engine = create_engine(settings.require_database_url(), pool_size=1)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    print("database is at the newest migration")
    return 0


def _serve(settings: Settings) -> int:
    import uvicorn

    # Migrate once here so that workers start against a ready schema (they would wait on the lock anyway).
    if settings.migrate_on_start:
        _migrate(settings)
    log.info("serving on http://%s:%d with %d worker(s)", settings.host, settings.port, settings.workers)
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
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
