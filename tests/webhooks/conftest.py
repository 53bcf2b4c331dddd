"""Webhook tests: real HTTP receivers on loopback, servers delivering to them, a database of their own.

Each test module gets its own database, so that the session's other servers
(which deliver webhooks too, with the default settings) never claim these
tests' webhooks.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine
from api.store.migrate import upgrade
from api.store.writes import WriteService
from tests.conftest import RunningServer, emptied

TABLES = (
    "webhooks, webhook_deliveries, coordination_events, goal_story_updates, team_checkins, goal_stories, teams, actors"
)
# Short waits, so that retries and takeovers happen within a test's seconds.
FAST = {
    "webhook_allow_private": True,
    "webhook_retry_schedule_s": (0.1, 0.1, 0.1, 0.1, 0.1, 0.1),
    "webhook_timeout_s": 1.0,
    "webhook_lease_s": 1.0,
}
WAIT_S = 20.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (a receiver slower than the timeout).
    delay: float = 0.0


class Receiver:
    """A webhook receiver on a loopback port: records every request, answers what `answer` says."""

    def __init__(self, answer: Callable[[int, Received], Answer] | None = None, port: int = 0) -> None:
        self.answer = answer or (lambda index, received: Answer())
        self.received: list[Received] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                got = Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with receiver._changed:
                    index = len(receiver.received)
                    receiver.received.append(got)
                    receiver._changed.notify_all()
                answer = receiver.answer(index, got)
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (a timeout) and closed the connection

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without this, Nagle's algorithm and the
                # sender's delayed ACK hold each answer back for tens of milliseconds.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def handle(self) -> None:
                # A sender that died (a killed server process) mid-request.
                with contextlib.suppress(ConnectionError):
                    super().handle()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = WAIT_S) -> list[Received]:
        """The first `count` requests, once that many came (blocking: call through asyncio.to_thread)."""
        self.wait_until(lambda got: len(got) >= count, f"{count} requests", timeout)
        return list(self.received[:count])

    def wait_until(self, done: Callable[[list[Received]], bool], what: str, timeout: float = WAIT_S) -> list[Received]:
        """Every request so far, once `done` holds for them (blocking: call through asyncio.to_thread)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} after {timeout} s ({len(self.received)} requests came)")
                self._changed.wait(left)
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def hooks_database(postgres: EmbeddedPostgres) -> str:
    return postgres.create_database(f"coco_hooks_{uuid.uuid4().hex[:8]}")


@pytest_asyncio.fixture(loop_scope="session")
async def hooks_engine(hooks_database: str) -> AsyncIterator[AsyncEngine]:
    """The module's database, migrated and emptied, with two teams and three actors."""
    engine = create_engine(hooks_database, pool_size=4)
    await upgrade(engine)
    await emptied(engine)
    writer = WriteService(engine)
    await writer.create(
        "actor",
        [
            {"id": "a-1", "actor_type": "person", "name": "Ada"},
            {"id": "a-2", "actor_type": "agent", "name": "Bot"},
            {"id": "a-3", "actor_type": "person", "name": "Cy"},
        ],
    )
    await writer.create(
        "team",
        [
            {"id": "t-1", "name": "Backend", "member_ids": ["a-1", "a-2"]},
            {"id": "t-2", "name": "Frontend", "member_ids": ["a-3"]},
        ],
    )
    await writer.create(
        "goal_story",
        [{"id": "g-1", "title": "Launch", "team_ids": ["t-1"]}, {"id": "g-2", "title": "Site", "team_ids": ["t-2"]}],
    )
    yield engine
    await engine.dispose()


@pytest.fixture
def served(hooks_database: str, hooks_engine: AsyncEngine) -> Callable[..., RunningServer]:
    """A server on the module's database, with the fast settings unless told otherwise."""
    return lambda **overrides: RunningServer(hooks_database, **{**FAST, **overrides})


class Admin:
    """GraphQL calls of an admin (no access control in these servers unless tokens are given)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=base, timeout=30, headers=headers)

    async def __aenter__(self) -> Admin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code < 500, response.text
        return response.json()

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.raw(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def code(self, query: str, variables: dict[str, Any] | None = None) -> str:
        body = await self.raw(query, variables)
        assert body.get("errors"), body
        return body["errors"][0]["extensions"]["code"]

    async def create(self, url: str, **fields: Any) -> dict[str, Any]:
        data = await self(
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook "
            "{ id url secret enabled cursor format eventTypes teamIds actorIds description } } }",
            {"input": {"url": url, **fields}},
        )
        return data["createWebhook"]["webhook"]

    async def webhook(self, id: str, deliveries: int = 100) -> dict[str, Any]:
        data = await self(
            "query($id: ID!, $first: Int!) { webhook(id: $id) { id url enabled disabledReason cursor failedAttempts "
            "deliveredCount failedCount deliveries(first: $first) { eventId eventCursor attempt delivered status "
            "latencyMs error retryAt attemptedAt } } }",
            {"id": id, "first": deliveries},
        )
        return data["webhook"]

    async def enable(self, id: str) -> dict[str, Any]:
        data = await self("mutation($id: ID!) { enableWebhook(id: $id) { webhook { id enabled cursor } } }", {"id": id})
        return data["enableWebhook"]["webhook"]

    async def update(self, id: str, **fields: Any) -> dict[str, Any]:
        data = await self(
            "mutation($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) "
            "{ webhook { id url enabled cursor eventTypes teamIds actorIds description format } } }",
            {"id": id, "input": fields},
        )
        return data["updateWebhook"]["webhook"]


async def checkins(
    engine: AsyncEngine, count: int, *, actor: str = "a-1", team: str = "t-1", **extra: Any
) -> list[int]:
    """Write `count` check-ins one at a time; their events' cursors, in order."""
    writer = WriteService(engine)
    cursors = []
    for i in range(count):
        result = await writer.create(
            "team_checkin", [{"actor_id": actor, "team_id": team, "date": "2026-05-18", "next": [f"step {i}"], **extra}]
        )
        cursors.append(result.events[0]["seq"])
    return cursors


async def row(engine: AsyncEngine, id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        found = (await conn.execute(text("SELECT * FROM webhooks WHERE id = :id"), {"id": id})).mappings().one()
    return dict(found)


def cursors_of(received: list[Received]) -> list[int]:
    import json

    return [int(json.loads(r.body)["data"]["cursor"]) for r in received]
