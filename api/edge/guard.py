"""The edge of the app: bearer tokens, request body size, and CORS, for every front end alike.

The one edge layer (api/edge/edge.py) wraps the whole app (REST, GraphQL and its
WebSocket, the SSE stream, MCP, the viewer) and applies these rules to every
request, so no front end can forget them. It authenticates
the request (api/edge/auth.py), refuses it when even reading is not allowed, and
leaves the principal in `auth.current_caller`, where the write service checks
the write scope. Probes and metrics stay open.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import jsonbody
from api.config import Settings
from api.edge.auth import READ, Access, AuthError, Caller, Principal, current_caller, permission_denied, permission_hint
from api.edge.cors import send_preflight
from api.edge.exchange import Exchange
from api.edge.incoming import Incoming
from api.edge.replies import send_json

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})
# Static pages that hold no data (the viewer, Swagger UI, GraphiQL's assets): a browser fetches them
# without a header; the data they then ask for goes through the API with the token.
OPEN_PREFIXES = ("/viewer", "/docs", "/graphql/assets/")
GRAPHQL_PATHS = ("/graphql",)
# The parameters of a GraphQL GET (api/graphql/http.py): with any of them, a GET is a query.
GRAPHQL_PARAMETERS = frozenset({"query", "operationName", "variables", "extensions", "documentId"})
TOKEN_PARAMETER = "token"
# graphql-transport-ws: "Forbidden" (the init was refused).
WS_FORBIDDEN = 4403


class BodyTooLarge(BaseException):
    """Raised into the app when it reads past the body limit. Like a cancellation, it is not the app's
    to handle: its broad `except Exception` (log, answer 500) must let it through to the 413 here."""


class Guard:
    """The rules every request passes (api/edge/edge.py applies them to HTTP requests and WebSockets)."""

    def __init__(self, settings: Settings, access: Access | None = None) -> None:
        self.access = access or Access.from_settings(settings)
        self.max_body = settings.max_body_bytes
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        self.any_origin = not origins or "*" in origins
        self.origins = frozenset(origins)

    # ------------------------------------------------------------ HTTP

    async def http(self, scope: Scope, receive: Receive, incoming: Incoming, exchange: Exchange, app: ASGIApp) -> None:
        origin = incoming.origin
        if origin is not None:
            if not self.any_origin and origin not in self.origins:
                await send_json(
                    exchange.deliver,
                    403,
                    {
                        "code": "CORS",
                        "message": f"origin {origin} is not allowed",
                        "details": None,
                        "hint": "COCO_CORS_ORIGINS lists the allowed ones",
                    },
                )
                return
            # Every preflight is answered here, for every front end, before any token is asked for.
            if scope["method"] == "OPTIONS" and incoming.request_method is not None:
                await send_preflight(exchange.deliver, incoming.request_headers, "*" if self.any_origin else origin)
                return
            if not self.any_origin:
                exchange.origin = origin.encode("latin-1")
        if (
            not self.access.enabled
            or scope["path"] in OPEN_PATHS
            or scope["path"].startswith(OPEN_PREFIXES)
            or _is_graphiql_page(scope, incoming)
        ):
            await self._limited(scope, receive, incoming, exchange, app)
            return
        try:
            scope, principal = await self.authenticate(scope, incoming.authorization)
            if not principal.allows(READ):
                raise _forbidden(principal)
        except AuthError as error:
            await _refuse(exchange.refuse, scope["path"], error)
            return
        token = current_caller.set(Caller(principal))
        try:
            await self._limited(scope, receive, incoming, exchange, app)
        finally:
            current_caller.reset(token)

    async def _limited(
        self, scope: Scope, receive: Receive, incoming: Incoming, exchange: Exchange, app: ASGIApp
    ) -> None:
        """Count the body while the app reads it, and answer 413 once it passes the limit."""
        if not incoming.has_body:
            await app(scope, receive, exchange.send)
            return
        length = incoming.content_length
        if length is not None and length.isascii() and length.isdigit() and int(length) > self.max_body:
            await _refuse(exchange.refuse, scope["path"], self._too_large())
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    exchange.exceeded = True
                    raise BodyTooLarge()
            return message

        with contextlib.suppress(BodyTooLarge):
            await app(scope, counting_receive, exchange.send)
        if exchange.exceeded and not exchange.started:
            await _refuse(exchange.refuse, scope["path"], self._too_large())

    def _too_large(self) -> AuthError:
        return AuthError(
            413,
            "COCO413",
            "Payload too large",
            f"the request body exceeds {self.max_body} bytes",
            hint="Send fewer rows per request, or raise COCO_MAX_BODY_BYTES",
            graphql_code="PAYLOAD_TOO_LARGE",
        )

    async def authenticate(self, scope: Scope, authorization: str | None) -> tuple[Scope, Principal]:
        """The principal, from the Authorization header or a `?token=` parameter (which is removed:
        browsers' EventSource and the viewer's first link cannot send headers)."""
        query = scope.get("query_string", b"").decode("latin-1")
        if TOKEN_PARAMETER + "=" in query:
            pairs = parse_qsl(query, keep_blank_values=True)
            tokens = [v for k, v in pairs if k == TOKEN_PARAMETER]
            if tokens:
                rest = [(k, v) for k, v in pairs if k != TOKEN_PARAMETER]
                scope = {**scope, "query_string": urlencode(rest).encode("latin-1")}
                authorization = authorization or f"Bearer {tokens[-1]}"
        return scope, await self.access.authenticate_async(authorization)

    # ------------------------------------------------------------ WebSocket

    async def websocket(self, scope: Scope, receive: Receive, send: Send, incoming: Incoming, app: ASGIApp) -> None:
        origin = incoming.origin
        if origin is not None and not self.any_origin and origin not in self.origins:
            await send({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})
            return
        if not self.access.enabled:
            await app(scope, receive, send)
            return
        given = incoming.authorization is not None or f"{TOKEN_PARAMETER}=".encode() in scope.get("query_string", b"")
        try:
            scope, principal = (
                await self.authenticate(scope, incoming.authorization) if given else (scope, self.access.anonymous())
            )
        except AuthError as error:
            await send({"type": "websocket.close", "code": WS_FORBIDDEN, "reason": error.message})
            return
        caller = Caller(principal)
        access = self.access
        initialized = False

        async def checking_receive() -> Message:
            """Reads `connection_init`: its payload may carry the token; without one, the header's
            principal (or the anonymous one) must be allowed to read."""
            nonlocal initialized
            message = await receive()
            if message["type"] != "websocket.receive" or initialized:
                return message
            init = _connection_init(message)
            if init is None:
                if caller.principal.allows(READ):
                    return message
                # Anything before connection_init (a protocol that lets operations start without
                # one) runs as the principal known so far, who may not read.
                init = {}
            initialized = True
            try:
                authorization = init.get("authorization") or init.get("Authorization")
                if isinstance(authorization, str) and not given:
                    caller.principal = await access.authenticate_async(authorization)
                elif not given and not access.anonymous_read:
                    raise AuthError(401, "PGRST302", "Anonymous access is disabled")
                if not caller.principal.allows(READ):
                    raise _forbidden(caller.principal)
            except AuthError as error:
                await send({"type": "websocket.close", "code": WS_FORBIDDEN, "reason": error.message})
                return {"type": "websocket.disconnect", "code": WS_FORBIDDEN}
            return message

        token = current_caller.set(caller)
        try:
            await app(scope, checking_receive, send)
        finally:
            current_caller.reset(token)


def _is_graphiql_page(scope: Scope, incoming: Incoming) -> bool:
    """A browser asking for GraphiQL: the page holds no data, and its user enters the token in its
    headers editor (a GET with a GraphQL parameter is a query, and needs the token)."""
    if scope["method"] != "GET" or scope["path"] not in GRAPHQL_PATHS or "text/html" not in incoming.accept:
        return False
    query = scope.get("query_string", b"").decode("latin-1")
    return all(name not in GRAPHQL_PARAMETERS for name, _ in parse_qsl(query, keep_blank_values=True))


def _connection_init(message: Message) -> dict[str, Any] | None:
    raw = message.get("text") or message.get("bytes")
    if not raw:
        return None
    try:
        document = jsonbody.loads(raw)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("type") != "connection_init":
        return None
    payload = document.get("payload")
    return payload if isinstance(payload, dict) else {}


def _forbidden(principal: Principal) -> AuthError:
    # As the write service's Forbidden reads in every front end (api/rest/errors.py, api/graphql/errors.py).
    return AuthError(
        403 if principal.authenticated else 401,
        "42501",
        permission_denied(READ, principal.authenticated),
        hint=permission_hint(READ),
        graphql_code="FORBIDDEN" if principal.authenticated else "UNAUTHENTICATED",
        scope=READ,
    )


async def _refuse(send: Send, path: str, error: AuthError) -> None:
    extra: list[tuple[bytes, bytes]] = []
    if error.status == 401:
        challenge = "Bearer" if error.code == "PGRST302" else 'Bearer error="invalid_token"'
        extra.append((b"www-authenticate", challenge.encode()))
    elif error.status == 403:
        extra.append((b"www-authenticate", b'Bearer error="insufficient_scope"'))
    if path.rstrip("/") in GRAPHQL_PATHS:
        code = error.graphql_code if error.status != 403 else "FORBIDDEN"
        # A missing scope reads as when the write service refuses (api/graphql/errors.py).
        extensions = {"code": code, "scope": error.scope} if error.scope else {"code": code, "pgrst": error.code}
        body: dict[str, Any] = {"data": None, "errors": [{"message": error.message, "extensions": extensions}]}
    else:
        # PostgREST's key order, as api/rest/errors.py writes every other error.
        body = {"code": error.code, "details": error.details, "hint": error.hint, "message": error.message}
    await send_json(send, error.status, body, extra)
