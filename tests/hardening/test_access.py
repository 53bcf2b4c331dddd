"""Bearer tokens and JWTs over every front end: REST, GraphQL (HTTP and WebSocket), SSE, MCP."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute

from api.app import Services
from api.config import Settings
from api.edge.auth import Access, AuthError
from api.edge.edge import Edge
from api.graphql import graphql_app
from api.store.reads import Reader
from api.store.writes import WriteService
from tests.conftest import table_counts
from tests.mcp_support import seed

from .conftest import READ_TOKEN, SECRET, WRITE_TOKEN, Served, bearer, signed

ACTOR = {"actor_type": "person", "name": "Guarded"}
CREATE = 'mutation { createActor(input: {actorType: PERSON, name: "Guarded"}) { actor { id } } }'


def test_access_is_off_without_credentials() -> None:
    access = Access.configure()
    assert not access.enabled
    assert access.authenticate(None).allows("write")


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError):
        Access.configure(tokens="root:xyz")
    with pytest.raises(ValueError):
        Access.configure(jwt_secret="short")
    access = Access.configure(tokens="write:w", jwt_secret=SECRET)
    assert access.authenticate("Bearer w").allows("read")
    assert access.authenticate(f"Bearer {signed({'scope': 'read'})}").scopes == frozenset({"read"})
    with pytest.raises(AuthError) as refused:
        access.authenticate("Basic dXNlcjpwYXNz")
    assert refused.value.code == "PGRST301"


async def test_rest_reads_and_writes_by_scope(secured_url: str, clean: AsyncEngine) -> None:
    before = await table_counts(clean)
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        anonymous = await client.get("/actors")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.json()["code"] == "PGRST302"
        assert set(anonymous.json()) == {"code", "message", "details", "hint"}

        wrong = await client.get("/actors", headers=bearer("not-a-token"))
        assert (wrong.status_code, wrong.json()["code"]) == (401, "PGRST301")

        assert (await client.get("/actors", headers=bearer(READ_TOKEN))).status_code == 200
        refused = await client.post("/actors", json=ACTOR, headers=bearer(READ_TOKEN))
        assert (refused.status_code, refused.json()["code"]) == (403, "42501")
        assert "insufficient_scope" in refused.headers["www-authenticate"]
        for method in ("PATCH", "DELETE"):
            answer = await client.request(
                method, "/actors?id=eq.x", json={"name": "y"} if method == "PATCH" else None, headers=bearer(READ_TOKEN)
            )
            assert answer.status_code == 403, answer.text
        assert await table_counts(clean) == before

        created = await client.post("/actors", json=ACTOR, headers=bearer(WRITE_TOKEN))
        assert created.status_code == 201, created.text
    after = await table_counts(clean)
    assert after["actors"] == before["actors"] + 1


async def test_jwts_as_postgrest_accepts_them(secured_url: str, clean: AsyncEngine) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        reader = signed({"role": "read"})
        assert (await client.get("/actors", headers=bearer(reader))).status_code == 200
        assert (await client.post("/actors", json=ACTOR, headers=bearer(reader))).status_code == 403
        assert await table_counts(clean) == {t: 0 for t in await table_counts(clean)}

        expired = signed({"role": "write", "exp": int(time.time()) - 3600})
        answer = await client.post("/actors", json=ACTOR, headers=bearer(expired))
        assert (answer.status_code, answer.json()["code"]) == (401, "PGRST303")
        forged = signed({"role": "write"}, secret="another-secret-that-is-32-characters-long")
        answer = await client.post("/actors", json=ACTOR, headers=bearer(forged))
        assert (answer.status_code, answer.json()["code"]) == (401, "PGRST301")
        no_scope = signed({"role": "web_anon"})
        assert (await client.get("/actors", headers=bearer(no_scope))).status_code == 403
        assert (await table_counts(clean))["actors"] == 0

        writer = signed({"scope": "openid write"})
        assert (await client.post("/actors", json=ACTOR, headers=bearer(writer))).status_code == 201
    assert (await table_counts(clean))["actors"] == 1


async def test_graphql_queries_need_read_and_mutations_write(secured_url: str, clean: AsyncEngine) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        anonymous = await client.post("/graphql", json={"query": "{ actors { nodes { id } } }"})
        assert anonymous.status_code == 401
        assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        read = await client.post("/graphql", json={"query": "{ actors { nodes { id } } }"}, headers=bearer(READ_TOKEN))
        assert read.status_code == 200 and "errors" not in read.json()

        refused = await client.post("/graphql", json={"query": CREATE}, headers=bearer(READ_TOKEN))
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await table_counts(clean))["actors"] == 0

        done = await client.post("/graphql", json={"query": CREATE}, headers=bearer(WRITE_TOKEN))
        assert "errors" not in done.json(), done.text
    assert (await table_counts(clean))["actors"] == 1


async def test_anonymous_read_when_allowed(anonymous_read_url: str, clean: AsyncEngine) -> None:
    async with httpx.AsyncClient(base_url=anonymous_read_url, timeout=30) as client:
        assert (await client.get("/actors")).status_code == 200
        refused = await client.post("/actors", json=ACTOR)
        assert (refused.status_code, refused.json()["code"]) == (401, "42501")
        assert refused.headers["www-authenticate"] == "Bearer"
        mutation = await client.post("/graphql", json={"query": CREATE})
        assert mutation.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await table_counts(clean))["actors"] == 0


async def test_probes_stay_open(secured_url: str) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        for path in ("/healthz", "/livez", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200, path


async def test_event_stream_takes_the_header_or_a_token_parameter(secured_url: str) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        refused = await client.get("/coordination_events", headers={"Accept": "text/event-stream"})
        assert refused.status_code == 401
        for params, headers in (({"token": READ_TOKEN}, {}), ({}, bearer(READ_TOKEN))):
            async with client.stream(
                "GET", "/coordination_events", params=params, headers={"Accept": "text/event-stream", **headers}
            ) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
        # The token parameter is not a filter of the REST read either.
        assert (await client.get("/actors", params={"token": READ_TOKEN})).status_code == 200


async def _ws_init(
    url: str,
    payload: dict[str, str] | None,
    headers: dict[str, str] | None = None,
    first: dict[str, object] | None = None,
) -> object:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        ws_url, subprotocols=["graphql-transport-ws"], additional_headers=headers or {}
    ) as ws:
        await ws.send(json.dumps(first or {"type": "connection_init", "payload": payload or {}}))
        try:
            return json.loads(await ws.recv())
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


async def test_graphql_websocket_takes_the_token_in_connection_init(engine: AsyncEngine) -> None:
    # The GraphQL app itself as the WebSocket endpoint, behind the guard as in create_app (whose
    # WebSocket route the subscription work adds); connection_init needs no database.
    settings = Settings(tokens=f"read:{READ_TOKEN}", jwt_secret=SECRET)
    app = Starlette(
        routes=[WebSocketRoute("/graphql", graphql_app(settings))], middleware=[Middleware(Edge, settings=settings)]
    )
    app.state.services = Services(settings, Reader(engine), WriteService(engine))
    with Served(app, lifespan="off") as url:
        assert await _ws_init(url, {"authorization": f"Bearer {READ_TOKEN}"}) == {"type": "connection_ack"}
        assert await _ws_init(url, None, bearer(READ_TOKEN)) == {"type": "connection_ack"}
        assert await _ws_init(url, {"authorization": f"Bearer {signed({'role': 'read'})}"}) == {
            "type": "connection_ack"
        }
        assert await _ws_init(url, {"authorization": "Bearer wrong"}) == 4403
        assert await _ws_init(url, None) == 4403
        operation = {"type": "subscribe", "id": "1", "payload": {"query": "{ actors { nodes { id } } }"}}
        assert await _ws_init(url, None, first=operation) == 4403
        with pytest.raises(websockets.InvalidStatus):
            await _ws_init(url, None, bearer("wrong"))


async def test_mcp_needs_a_token(secured_url: str, clean: AsyncEngine) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        refused = await client.post("/mcp", json=request, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        allowed = await client.post("/mcp", json=request, headers={**headers, **bearer(READ_TOKEN)})
        assert allowed.status_code != 401

        await seed(WriteService(clean))
        before = await table_counts(clean)
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "post_team_checkin",
                "arguments": {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22"},
            },
        }
        versioned = {**headers, "MCP-Protocol-Version": "2025-06-18"}
        refused_write = await client.post("/mcp", json=call, headers={**versioned, **bearer(READ_TOKEN)})
        result = refused_write.json()["result"]
        assert result["isError"] is True
        assert result["structuredContent"]["error"]["kind"] == "forbidden"
        assert await table_counts(clean) == before
        done = await client.post("/mcp", json=call, headers={**versioned, **bearer(WRITE_TOKEN)})
        assert done.json()["result"].get("isError") is not True, done.text
    after = await table_counts(clean)
    assert (after["team_checkins"], after["coordination_events"]) == (
        before["team_checkins"] + 1,
        before["coordination_events"] + 1,
    )


async def test_cors_origins_are_configurable(database_url: str, engine: AsyncEngine) -> None:
    from tests.conftest import RunningServer

    with RunningServer(database_url, cors_origins="https://app.example") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            good = await client.get("/actors", headers={"Origin": "https://app.example"})
            assert good.headers["access-control-allow-origin"] == "https://app.example"
            bad = await client.get("/actors", headers={"Origin": "https://evil.example"})
            assert bad.status_code == 403
            preflight = await client.options(
                "/graphql", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://app.example"


async def test_every_front_end_gets_the_same_preflight_answer_without_a_token(secured_url: str) -> None:
    """The edge answers every preflight, for REST, GraphQL, MCP and the event stream alike: a browser
    sends no Authorization with it, and asks for the header in Access-Control-Request-Headers."""
    asking = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, prefer",
    }
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        answers = [await client.options(path, headers=asking) for path in ("/actors", "/graphql", "/mcp", "/nowhere")]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == "*"
        assert answer.headers["access-control-allow-methods"] == "GET, POST, PATCH, PUT, DELETE, OPTIONS"
        assert answer.headers["access-control-allow-headers"] == "Authorization, content-type, prefer"
        assert answer.headers["access-control-max-age"] == "86400"
        assert answer.content == b""


async def test_static_pages_are_open_but_their_data_is_not(secured_url: str) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/")).status_code == 401


REST_KEYS = ["code", "details", "hint", "message"]  # PostgREST's order, for every error


async def test_a_missing_scope_reads_the_same_in_every_front_end(
    secured_url: str, anonymous_read_url: str, clean: AsyncEngine
) -> None:
    await seed(WriteService(clean))
    before = await table_counts(clean)
    checkin = {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22"}
    mcp_call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "post_team_checkin", "arguments": checkin},
    }
    mcp_headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2025-06-18",
    }
    cases = [  # server, headers, the scope they lack, the refusal
        (secured_url, bearer(READ_TOKEN), "write", "permission denied: the token does not grant the write scope"),
        (anonymous_read_url, {}, "write", "permission denied: anonymous requests may not write"),
        (
            secured_url,
            bearer(signed({"role": "web_anon"})),
            "read",
            "permission denied: the token does not grant the read scope",
        ),
    ]
    for url, headers, scope, message in cases:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            if scope == "write":
                rest = await client.post("/team_checkins", json=checkin, headers=headers)
                graphql = await client.post("/graphql", json={"query": CREATE}, headers=headers)
                mcp = await client.post("/mcp", json=mcp_call, headers={**mcp_headers, **headers})
                assert mcp.json()["result"]["content"][0]["text"].startswith(f"{message}. Nothing was written.")
            else:
                rest = await client.get("/actors", headers=headers)
                graphql = await client.post("/graphql", json={"query": "{ actors { nodes { id } } }"}, headers=headers)
        authenticated = bool(headers)
        assert rest.status_code == (403 if authenticated else 401)
        assert list(rest.json()) == REST_KEYS
        assert rest.json() | {"details": None} == {
            "code": "42501",
            "details": None,
            "hint": f"Send a token with the {scope} scope (Authorization: Bearer <token>)",
            "message": message,
        }
        [error] = graphql.json()["errors"]
        assert error["message"] == message
        assert error["extensions"] == {"code": "FORBIDDEN" if authenticated else "UNAUTHENTICATED", "scope": scope}
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        assert list((await client.get("/actors")).json()) == REST_KEYS  # PGRST302, from the edge
    assert await table_counts(clean) == before
