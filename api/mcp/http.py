"""The MCP server over Streamable HTTP, at `/mcp` of the one Starlette app.

The SDK's session manager runs a task group for as long as the app lives, so
the app's lifespan enters `serving(...)` and puts the manager on
`app.state.mcp`; the route's endpoint hands each request to it. The endpoint
is an ordinary route of the app, so every middleware the app gets (the bearer
tokens of the hardening issue, CORS, logging) applies to `/mcp` as well.

Stateless mode, with JSON responses: the server keeps no session between
requests (the tools need none), so any of the uvicorn worker processes can
answer any request of a client, and each answer is one JSON document.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from api.mcp.server import create_server
from api.store import Reader, WriteService

PATH = "/mcp"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@contextlib.asynccontextmanager
async def serving(reader: Reader, writer: WriteService, *, host: str) -> AsyncIterator[StreamableHTTPSessionManager]:
    """Run the MCP session manager for as long as the app runs."""
    manager = StreamableHTTPSessionManager(
        app=create_server(reader, writer),
        stateless=True,
        json_response=True,
        security_settings=_security(host),
    )
    async with manager.run():
        yield manager


def _security(host: str) -> TransportSecuritySettings | None:
    """Refuse foreign Host and Origin headers while listening on loopback only (DNS rebinding).

    A server bound to other interfaces is reached under names we cannot know
    here; the access control of the hardening issue guards it instead.
    """
    if host not in LOOPBACK:
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
        allowed_origins=[f"http://{name}{port}" for name in ("127.0.0.1", "localhost", "[::1]") for port in ("", ":*")],
    )


class Endpoint:
    """The ASGI endpoint at /mcp: passes each request to the app's running session manager."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager: StreamableHTTPSessionManager = scope["app"].state.mcp
        await manager.handle_request(scope, receive, send)
