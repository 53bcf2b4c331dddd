"""The MCP server over stdio, for desktop assistants that launch `coco mcp` themselves.

stdout carries the protocol, so nothing else may write to it: logs go to
stderr (the CLI configures logging so), and the SDK's `stdio_server` points
fd 1 at stderr while it serves, so even a stray print cannot corrupt the
channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator, Callable
from typing import TextIO

import anyio

from api.config import Settings
from api.mcp.server import create_server
from api.store import Reader, WriteService, create_engine, upgrade

# One assistant makes one call at a time; a few connections are plenty.
POOL_SIZE = 2
MAX_LINE_BYTES = 64 * 1024 * 1024


def main(with_database: Callable[[Callable[[Settings], int]], int]) -> int:
    """Serve until the assistant closes stdin or stops the process, inside `with_database`'s database."""
    interrupted = False

    def run(settings: Settings) -> int:
        nonlocal interrupted
        if _readable_by_the_loop(sys.stdin):
            # stdin is read by the event loop itself: SIGTERM cancels the server like any task,
            # and everything unwinds through the finally blocks (the engine, an embedded PostgreSQL).
            anyio.run(serve, settings, True)
            return 0
        # A terminal or a file on stdin: the SDK reads it in a worker thread that only end-of-file
        # ends. An assistant stops the server with SIGTERM (after closing stdin, if that did not end
        # it); leave through the finally blocks all the same.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            anyio.run(serve, settings, False)
        except KeyboardInterrupt:
            interrupted = True
        return 0

    code = with_database(run)
    if interrupted:
        # That worker thread is still blocked, and the interpreter would wait for it forever on
        # the way out; everything is cleaned up by now, so leave.
        logging.shutdown()
        os._exit(code)
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _readable_by_the_loop(stream: TextIO) -> bool:
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class LoopLines:
    """stdin's lines, read by the event loop (no worker thread), as the SDK's stdio transport takes them."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def __aiter__(self) -> LoopLines:
        return self

    async def __anext__(self) -> str:
        line = await self.reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


@contextlib.asynccontextmanager
async def loop_stdin() -> AsyncIterator[LoopLines]:
    loop = asyncio.get_running_loop()
    # A line is one message: a bulk write may be megabytes (the HTTP body limit is 10 MiB by default).
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    pipe = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        yield LoopLines(reader)
    finally:
        transport.close()
        with contextlib.suppress(OSError):
            os.set_blocking(sys.stdin.fileno(), True)  # the pipe's other descriptors share its mode


async def serve(settings: Settings, stoppable: bool = False) -> None:
    """Serve until stdin ends or, `stoppable` (stdin read by the loop), SIGTERM or SIGINT arrives."""
    from mcp.server.stdio import stdio_server

    engine = create_engine(
        settings.require_database_url(),
        pool_size=POOL_SIZE,
        statement_timeout_ms=settings.statement_timeout_ms,
        application_name="coco-mcp",
        pooler=settings.db_pooler,
        tracks_timezone=settings.db_pooler_tracks_timezone,
    )
    server = create_server(Reader(engine), WriteService(engine))
    try:
        async with contextlib.AsyncExitStack() as stack:
            stdin = await stack.enter_async_context(loop_stdin()) if stoppable else None
            group = await stack.enter_async_context(anyio.create_task_group())
            if stoppable:
                group.start_soon(_cancel_on_signal, group.cancel_scope)
            # Inside the stdio context, so that whatever migrating prints lands on stderr.
            async with stdio_server(stdin=stdin) as (read_stream, write_stream):  # type: ignore[arg-type]
                if settings.migrate_on_start:
                    await upgrade(engine)
                await server.run(read_stream, write_stream, server.create_initialization_options())
            group.cancel_scope.cancel()
    finally:
        await engine.dispose()


async def _cancel_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return
