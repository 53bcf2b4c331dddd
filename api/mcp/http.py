"""The MCP server over Streamable HTTP, at `/mcp` of the one Starlette app.

The SDK's session manager runs a task group for as long as it serves, so the
app's lifespan enters `serving(...)` and puts a `Sessions` on `app.state.mcp`;
the route's endpoint hands each request to it. The endpoint is an ordinary
route of the app, so every middleware the app gets (the bearer tokens of the
hardening issue, CORS, logging) applies to `/mcp` as well.

The SDK (its protocol types are some hundreds of pydantic models) is imported
and its manager started by the first request to `/mcp`, not at startup: about
25 MB of every worker's memory that a worker serving only GraphQL, REST and
SSE never needs (bench/README.md, "Connections held: memory per worker").

Stateless mode, with JSON responses: the server keeps no session between
requests (the tools need none), so any of the uvicorn worker processes can
answer any request of a client, and each answer is one JSON document.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from api.store import Reader, WriteService

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings

PATH = "/mcp"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Sessions:
    """The app's MCP session manager, started by the first request that needs it and run until `close`."""

    def __init__(self, reader: Reader, writer: WriteService, *, host: str) -> None:
        self._reader = reader
        self._writer = writer
        self._host = host
        self._manager: asyncio.Future[StreamableHTTPSessionManager] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def manager(self) -> StreamableHTTPSessionManager:
        if self._manager is None:
            self._manager = asyncio.get_running_loop().create_future()
            # The manager's task group must be entered and left in one task, which outlives the request.
            self._runner = asyncio.create_task(self._run(self._manager), name="mcp-sessions")
        # A request cancelled while the SDK loads must not cancel the loading for the others.
        return await asyncio.shield(self._manager)

    async def _run(self, ready: asyncio.Future[StreamableHTTPSessionManager]) -> None:
        try:
            # In a thread: importing the SDK takes a second or more of CPU, in which this worker's
            # other connections keep being served.
            manager = await asyncio.to_thread(_manager, self._reader, self._writer, self._host)
            async with manager.run():
                ready.set_result(manager)
                await self._stop.wait()
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            raise

    async def close(self) -> None:
        self._stop.set()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner


@contextlib.asynccontextmanager
async def serving(reader: Reader, writer: WriteService, *, host: str) -> AsyncIterator[Sessions]:
    """MCP sessions for as long as the app runs (the SDK starts on the first request to `/mcp`)."""
    sessions = Sessions(reader, writer, host=host)
    try:
        yield sessions
    finally:
        await sessions.close()


def _manager(reader: Reader, writer: WriteService, host: str) -> StreamableHTTPSessionManager:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from api.mcp.server import create_server

    return StreamableHTTPSessionManager(
        app=create_server(reader, writer),
        stateless=True,
        json_response=True,
        security_settings=_security(host),
    )


def _security(host: str) -> TransportSecuritySettings | None:
    """Refuse foreign Host and Origin headers while listening on loopback only (DNS rebinding).

    A server bound to other interfaces is reached under names we cannot know
    here; the access control of the hardening issue guards it instead.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    if host not in LOOPBACK:
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
        allowed_origins=[f"http://{name}{port}" for name in ("127.0.0.1", "localhost", "[::1]") for port in ("", ":*")],
    )


class Endpoint:
    """The ASGI endpoint at /mcp: passes each request to the app's session manager, starting it if need be."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sessions: Sessions = scope["app"].state.mcp
        manager = await sessions.manager()
        await manager.handle_request(scope, receive, send)
