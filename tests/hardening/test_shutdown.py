"""Graceful shutdown of the real `coco serve`: SIGTERM lets requests in flight finish, closes
WebSockets with 1001 and ends event streams, so that nothing is left for uvicorn to cancel
when its graceful timeout (10 s) runs out."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config import SHUTDOWN_FINISH_S
from api.store.writes import WriteService

from ..live.helpers import until_subscribers
from ..processes import free_port, read_until, running, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
COCO = [sys.executable, "-m", "api", "serve"]


async def test_sigterm_drains_requests_and_closes_streams(
    clean: None, database_url: str, engine: AsyncEngine, writer: WriteService
) -> None:
    await writer.create("actor", [{"id": "a-1", "actor_type": "agent", "name": "Bot"}])
    await writer.create("team", [{"id": "t-1", "name": "T"}])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCO_")}
    env.update(DATABASE_URL=database_url, COCO_PORT=str(port), COCO_WORKERS="1", COCO_MIGRATE_ON_START="0")
    with running(COCO, env, ROOT) as server:
        await asyncio.to_thread(wait_healthy, server, port)
        base = f"127.0.0.1:{port}"

        # A GraphQL subscription over WebSocket, acknowledged and subscribed.
        socket = await websockets.connect(f"ws://{base}/graphql", subprotocols=["graphql-transport-ws"])
        await socket.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": "subscription { coordinationEvents { cursor } }"}}
            )
        )

        # An event stream, open and past its first comment.
        client = httpx.AsyncClient(base_url=f"http://{base}", timeout=30)
        stream = await client.send(
            client.build_request("GET", "/coordination_events", headers={"Accept": "text/event-stream"}), stream=True
        )
        assert stream.status_code == 200
        lines = stream.aiter_lines()
        assert (await anext(lines)).startswith(":")

        # Both live subscriptions are registered with the feed.
        await until_subscribers(f"http://{base}", 2)

        # A request in flight: the app has started reading its body (uvicorn answers the client's
        # `Expect: 100-continue` when it does), which is sent only once the server is shutting down.
        body = json.dumps({"id": "c-late", "actor_id": "a-1", "team_id": "t-1", "date": "2026-05-22"}).encode()
        reader, writer_ = await asyncio.open_connection("127.0.0.1", port)
        writer_.write(
            b"POST /team_checkins HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        await writer_.drain()
        assert await asyncio.wait_for(reader.readline(), 30) == b"HTTP/1.1 100 Continue\r\n"
        assert await reader.readline() == b"\r\n"

        server.send_signal(signal.SIGTERM)
        logged = await asyncio.to_thread(read_until, server, "Shutting down")
        writer_.write(body)
        await writer_.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.startswith(b"HTTP/1.1 201"), status_line

        # The WebSocket is closed with "going away", and the event stream ends.
        try:
            while True:
                await asyncio.wait_for(socket.recv(), 10)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1001
        rest = [line async for line in lines]
        assert all(not line.startswith("event: error") for line in rest)
        await stream.aclose()
        await client.aclose()
        writer_.close()

        exit_code = await asyncio.to_thread(server.wait, 30)
        output = logged + (server.stdout.read() if server.stdout else "")
    # uvicorn ends by re-raising the signal it stopped on (the shell's convention: 128 + 15).
    assert exit_code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), output
    assert "timeout graceful shutdown exceeded" not in output, output
    assert "Exception in ASGI application" not in output, output
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM team_checkins WHERE id = 'c-late'")) == 1
        assert await conn.scalar(text("SELECT count(*) FROM coordination_events WHERE reference_id = 'c-late'")) == 1


# A read that keeps its worker's event loop busy for many seconds without yielding: a filter of tens of
# thousands of branches (allowed here) is coerced, converted and compiled to SQL before the read's first await.
RUNAWAY_BRANCHES = 60_000
GRACE_S = 1


async def test_sigterm_ends_a_server_whose_worker_never_yields(clean: None, database_url: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCO_")}
    env.update(
        DATABASE_URL=database_url,
        COCO_PORT=str(port),
        COCO_WORKERS="1",
        COCO_MIGRATE_ON_START="0",
        COCO_SHUTDOWN_GRACE_S=str(GRACE_S),
        # The filter limit opened up so that the read is allowed, with no deadline to meet.
        COCO_GRAPHQL_MAX_FILTER_NODES=str(10**9),
        COCO_STATEMENT_TIMEOUT_MS="600000",
    )
    where = {"or": [{"id": {"eq": f"a-{n}"}} for n in range(RUNAWAY_BRANCHES)]}
    body = {"query": "query($w: ActorWhere) { actors(where: $w) { nodes { id } } }", "variables": {"w": where}}
    with running(COCO, env, ROOT) as server:
        await asyncio.to_thread(wait_healthy, server, port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            runaway = asyncio.ensure_future(client.post("/graphql", json=body))
            # The worker is busy once it stops answering its liveness probe.
            while True:
                try:
                    await client.get("/livez", timeout=0.5)
                except httpx.TimeoutException:
                    break
                assert not runaway.done(), runaway.result().text
            signalled = time.monotonic()
            server.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(server.wait, 60)
            took = time.monotonic() - signalled
            runaway.cancel()
        output = server.stdout.read() if server.stdout else ""
    # The documented bound: the graceful period, then SHUTDOWN_FINISH_S (5 s); a little for the machine.
    assert took < GRACE_S + SHUTDOWN_FINISH_S + 3, (took, output)
    # Ended by the watchdog: the read was still running when the bound came.
    assert exit_code == 128 + signal.SIGTERM, output
    assert "ending the process" in output, output
