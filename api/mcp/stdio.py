"""The MCP server over stdio, for desktop assistants that launch `coco mcp` themselves.

stdout carries the protocol, so nothing else may write to it: logs go to
stderr (the CLI configures logging so), and the SDK's `stdio_server` points
fd 1 at stderr while it serves, so even a stray print cannot corrupt the
channel.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable

import anyio

from ..config import Settings
from ..database import create_engine
from ..migrate import upgrade
from ..reads import Reader
from ..writes import WriteService
from .server import create_server

# One assistant makes one call at a time; a few connections are plenty.
POOL_SIZE = 2


def main(with_database: Callable[[Callable[[Settings], int]], int]) -> int:
    """Serve until the assistant closes stdin or stops the process, inside `with_database`'s database."""
    interrupted = False

    def run(settings: Settings) -> int:
        nonlocal interrupted
        # An assistant stops the server it launched with SIGTERM (after closing stdin, if that did
        # not end it); leave through the finally blocks: the engine, an embedded PostgreSQL we started.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            anyio.run(serve, settings)
        except KeyboardInterrupt:
            interrupted = True
        return 0

    code = with_database(run)
    if interrupted:
        # The SDK reads stdin in a worker thread that only end-of-file ends, and the interpreter
        # would wait for it forever on the way out; everything is cleaned up by now, so leave.
        logging.shutdown()
        os._exit(code)
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def serve(settings: Settings) -> None:
    from mcp.server.stdio import stdio_server

    engine = create_engine(settings.require_database_url(), pool_size=POOL_SIZE,
                           statement_timeout_ms=settings.statement_timeout_ms, application_name="coco-mcp")
    server = create_server(Reader(engine), WriteService(engine))
    try:
        # Inside the stdio context, so that whatever migrating prints lands on stderr.
        async with stdio_server() as (read_stream, write_stream):
            if settings.migrate_on_start:
                await upgrade(engine)
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await engine.dispose()
