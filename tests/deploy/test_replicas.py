"""Three replicas behind HAProxy, through PgBouncer in transaction mode, without Docker.

PostgreSQL (embedded), PgBouncer (pool_mode=transaction), three `coco serve` processes (DATABASE_URL
through PgBouncer, DIRECT_DATABASE_URL straight to PostgreSQL for LISTEN and the migrations) and HAProxy
in front (round robin, /readyz as its health check). Through the balancer: 32 clients, each a REST,
GraphQL or MCP client, writing and reading without an error; SSE and GraphQL subscribers. One replica is
killed (SIGKILL, its whole process group) under that load: its subscribers reconnect through the
balancer and resume from their last cursor with no gap and no repeat; the clients' requests that
were in flight on it fail (a connection cut, HAProxy's 502) and are sent again. Afterwards every
write that was acknowledged is in the tables, with exactly one event each.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from mcp import Client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine
from api.store.migrate import upgrade
from tests.deploy.tools import CocoServe, HAProxy, PgBouncer

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1200)]

CLIENTS = 32
REPLICAS = 3
SUBSCRIBERS = 6  # of each kind, SSE and GraphQL
FRONTS = ("rest", "graphql", "mcp")
# Operations (a write or a read, however many sends it takes) per client in each phase.
STEADY_OPS, KILL_OPS, AFTER_OPS, ROLLING_OPS = 6, 10, 4, 30
SUBSCRIPTION = "subscription($after: String) { coordinationEvents(after: $after) { cursor referenceId } }"


@dataclass
class Deployment:
    base: str
    balancer: HAProxy
    replicas: list[CocoServe]
    engine: AsyncEngine


@pytest.fixture(scope="module")
def deployment(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    logs = tmp_path_factory.mktemp("replicas")
    name = f"coco_replicas_{uuid.uuid4().hex[:8]}"
    direct = postgres.create_database(name)

    async def prepare() -> None:
        engine = create_engine(direct, pool_size=1)
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO actors (id, actor_type, name) VALUES ('p-1', 'person', 'Quinn')"))
            await conn.execute(text("INSERT INTO teams (id, name, member_ids) VALUES ('t-1', 'Team', ARRAY['p-1'])"))
        await engine.dispose()

    asyncio.run(prepare())
    with ExitStack() as stack:
        bouncer = stack.enter_context(PgBouncer(postgres.url(), pool_mode="transaction", pool_size=20))
        env = {
            "DATABASE_URL": bouncer.url(name),
            "DIRECT_DATABASE_URL": direct,
            "COCO_DB_POOLER": "transaction",
            "COCO_WORKERS": "1",
            "COCO_DB_POOL_SIZE": "5",
        }
        replicas = [CocoServe(env, logs / f"replica{n}.log") for n in range(1, REPLICAS + 1)]
        for replica in replicas:
            stack.callback(replica.stop)
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        balancer = stack.enter_context(HAProxy([r.port for r in replicas]))
        for n in range(1, REPLICAS + 1):
            balancer.wait_for(f"replica{n}", "UP")
        yield Deployment(balancer.url, balancer, replicas, create_engine(direct, pool_size=2))


# ---------------------------------------------------------------- subscribers


@dataclass
class Subscriber:
    kind: str
    after: int
    cursors: list[int] = field(default_factory=list)
    served_by: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last(self) -> int:
        return self.cursors[-1] if self.cursors else self.after


async def follow_sse(base: str, sub: Subscriber, stop: asyncio.Event) -> None:
    """An EventSource: on any end of the stream, connect again through the balancer with Last-Event-ID."""
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=60)) as client:
        while not stop.is_set():
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(sub.last)}
            try:
                async with client.stream("GET", "/coordination_events", headers=headers) as response:
                    if response.status_code != 200:
                        await asyncio.sleep(0.2)
                        continue
                    sub.served_by.append(response.headers["X-Served-By"])
                    sub.connected.set()
                    async for line in response.aiter_lines():
                        if line.startswith("id:"):
                            sub.cursors.append(int(line[3:].strip()))
            except (httpx.TransportError, httpx.StreamError):
                pass
            await asyncio.sleep(0.1)


async def follow_graphql(base: str, sub: Subscriber, stop: asyncio.Event) -> None:
    """graphql-transport-ws: on a closed socket, subscribe again through the balancer with `after`."""
    url = base.replace("http://", "ws://") + "/graphql"
    while not stop.is_set():
        try:
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"], ping_interval=None) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                variables = {"after": str(sub.last)}
                payload = {"query": SUBSCRIPTION, "variables": variables}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                sub.served_by.append(ws.response.headers["X-Served-By"])
                sub.connected.set()
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] == "next":
                        assert "errors" not in message["payload"], message
                        sub.cursors.append(int(message["payload"]["data"]["coordinationEvents"]["cursor"]))
                    elif message["type"] == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    elif message["type"] in ("error", "complete"):
                        break
        except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake):
            pass
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- clients


@dataclass
class Ledger:
    phase: str = "steady"
    acknowledged: set[str] = field(default_factory=set)
    failures: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    sends: collections.Counter[str] = field(default_factory=collections.Counter)
    # (phase, monotonic time, replica) of every HTTP answer a replica gave.
    answered: list[tuple[str, float, str]] = field(default_factory=list)


class Cut(Exception):
    """The request got no answer from a replica: the connection was cut, or HAProxy said 502/503."""


class Front:
    """One client of one front end, through the balancer."""

    def __init__(self, kind: str, base: str, http: httpx.AsyncClient, ledger: Ledger) -> None:
        self.kind, self.base, self.http, self.ledger = kind, base, http, ledger

    async def write(self, checkin_id: str) -> str:
        """ "ok", "conflict" (the id is taken), or raises Cut / AssertionError (any other answer)."""
        document = {"id": checkin_id, "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22", "next": ["x"]}
        if self.kind == "rest":
            answer = await self._http("POST", "/team_checkins", json=document)
            if answer.status_code == 409:
                return "conflict"
            assert answer.status_code == 201, (answer.status_code, answer.text)
            return "ok"
        if self.kind == "graphql":
            query = (
                f'mutation {{ createTeamCheckin(input: {{id: "{checkin_id}", actorId: "p-1", teamId: "t-1", '
                'date: "2026-05-22", next: ["x"]}) { teamCheckin { id } } }'
            )
            body = await self._graphql(query)
            if body.get("errors"):
                codes = {e["extensions"]["code"] for e in body["errors"]}
                assert codes == {"CONFLICT"}, body
                return "conflict"
            assert body["data"]["createTeamCheckin"]["teamCheckin"]["id"] == checkin_id, body
            return "ok"
        result = await self._tool("post_team_checkin", document)
        if result.is_error:
            assert result.structured_content["error"]["kind"] == "conflict", result.content
            return "conflict"
        return "ok"

    async def read(self) -> None:
        if self.kind == "rest":
            answer = await self._http("GET", "/team_checkins?team_id=eq.t-1&order=created_at.desc&limit=5")
            assert answer.status_code == 200, (answer.status_code, answer.text)
        elif self.kind == "graphql":
            body = await self._graphql("{ teamCheckins(first: 5) { nodes { id } } actors { nodes { id } } }")
            assert not body.get("errors"), body
        else:
            result = await self._tool("list_actors", {})
            assert not result.is_error, result.content

    async def _http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            answer = await self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Cut(f"{type(error).__name__}: {error}") from error
        if answer.status_code in (502, 503) and "X-Served-By" not in answer.headers:
            raise Cut(f"the balancer answered {answer.status_code}")
        self.ledger.answered.append((self.ledger.phase, time.monotonic(), answer.headers["X-Served-By"]))
        return answer

    async def _graphql(self, query: str) -> dict[str, Any]:
        answer = await self._http("POST", "/graphql", json={"query": query})
        assert answer.status_code == 200, (answer.status_code, answer.text)
        return answer.json()

    async def _tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """One call in a session of its own, in a task of its own: a cut request makes the SDK cancel its
        session's task group, which must not take this client's task with it."""

        async def call() -> Any:
            async with Client(f"{self.base}/mcp") as client:
                return await client.call_tool(name, arguments)

        task = asyncio.create_task(call())
        try:
            return await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            raise Cut("MCP: the session was cancelled") from None
        except Exception as error:  # the SDK's own errors for a cut connection or a 502 body
            raise Cut(f"MCP: {type(error).__name__}: {error}") from error


async def run_client(n: int, front: Front, ledger: Ledger, ops: int) -> None:
    """`ops` operations, writes and reads in turn; each sent again after a Cut until it is answered."""
    for step in range(ops):
        checkin_id = f"w{n}-{ledger.phase}-{step}"
        uncertain = False
        for _ in range(20):
            ledger.sends[ledger.phase] += 1
            try:
                if step % 2 == 0:
                    outcome = await front.write(checkin_id)
                    if outcome == "ok" or uncertain:
                        # "conflict" after a cut: the first send had committed; either way it is there once.
                        ledger.acknowledged.add(checkin_id)
                    else:
                        raise AssertionError(f"{checkin_id} conflicted on its first send")
                else:
                    await front.read()
                break
            except Cut as cut:
                ledger.failures[ledger.phase].append(f"{front.kind} {'write' if step % 2 == 0 else 'read'}: {cut}")
                uncertain = True
                await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"client {n} could not get an answer for step {step}")


async def phase(fronts: list[Front], ledger: Ledger, name: str, ops: int) -> None:
    ledger.phase = name
    await asyncio.gather(*(run_client(n, front, ledger, ops) for n, front in enumerate(fronts)))


# ---------------------------------------------------------------- the test


async def test_replicas_behind_a_balancer_survive_a_killed_replica(deployment: Deployment) -> None:
    engine = deployment.engine
    async with engine.connect() as conn:
        start = (await conn.execute(text("SELECT coalesce(max(seq), 0) FROM coordination_events"))).scalar_one()

    stop = asyncio.Event()
    subscribers = [Subscriber("sse", start) for _ in range(SUBSCRIBERS)] + [
        Subscriber("graphql", start) for _ in range(SUBSCRIBERS)
    ]
    following = []
    for sub in subscribers:  # one at a time, so that round robin spreads them over the replicas
        follow = follow_sse if sub.kind == "sse" else follow_graphql
        following.append(asyncio.create_task(follow(deployment.base, sub, stop)))
        await asyncio.wait_for(sub.connected.wait(), 60)

    ledger = Ledger()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=deployment.base, timeout=60, limits=limits) as http:
        fronts = [Front(FRONTS[n % len(FRONTS)], deployment.base, http, ledger) for n in range(CLIENTS)]
        # Steady: every replica up; not one failure.
        await phase(fronts, ledger, "steady", STEADY_OPS)
        assert ledger.failures["steady"] == [], ledger.failures["steady"][:5]

        # A replica that has subscribers of both kinds dies under load.
        on = collections.defaultdict(set)
        for sub in subscribers:
            on[sub.served_by[-1]].add(sub.kind)
        victim = next(name for name, kinds in sorted(on.items()) if kinds == {"sse", "graphql"})
        victim_subscribers = [sub for sub in subscribers if sub.served_by[-1] == victim]
        index = int(victim.removeprefix("replica")) - 1
        load = asyncio.create_task(phase(fronts, ledger, "kill", KILL_OPS))
        # Mid-load: once half of this phase's operations have been sent.
        while ledger.sends["kill"] < CLIENTS * KILL_OPS // 2 and not load.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        deployment.replicas[index].kill()
        killed_at = time.monotonic()
        await load
        await asyncio.to_thread(deployment.balancer.wait_for, victim, "DOWN")

        # After: the balancer has taken it out; not one failure again.
        await phase(fronts, ledger, "after", AFTER_OPS)
        assert ledger.failures["after"] == [], ledger.failures["after"][:5]

        # A rolling restart under load: the killed replica comes back (no repair), then another one is
        # restarted as an orchestrator does it: out of the rotation first (Kubernetes: the endpoint is
        # removed while preStop sleeps; here HAProxy's "maint"), then SIGTERM (requests in flight finish,
        # streams drain), started again, back in. Not one failure.
        await asyncio.to_thread(deployment.replicas[index].start().wait_ready)
        await asyncio.to_thread(deployment.balancer.wait_for, victim, "UP")
        load = asyncio.create_task(phase(fronts, ledger, "rolling", ROLLING_OPS))
        restarted = f"replica{(index + 1) % REPLICAS + 1}"
        while ledger.sends["rolling"] < CLIENTS and not load.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        deployment.balancer.set_state(restarted, "maint")
        drained = [(sub, len(sub.served_by)) for sub in subscribers if sub.served_by[-1] == restarted]
        replica = deployment.replicas[(index + 1) % REPLICAS]
        await asyncio.to_thread(replica.stop)
        await asyncio.to_thread(replica.start().wait_ready)
        deployment.balancer.set_state(restarted, "ready")
        await asyncio.to_thread(deployment.balancer.wait_for, restarted, "UP")
        await load
        assert ledger.failures["rolling"] == [], ledger.failures["rolling"][:5]

    # The replica died mid-load: it answered requests of this phase before, the others after.
    assert any(p == "kill" and t < killed_at and by == victim for p, t, by in ledger.answered)
    assert any(p == "kill" and t > killed_at for p, t, _ in ledger.answered)
    assert not any(p == "after" and by == victim for p, _, by in ledger.answered)
    # What failed while it died were requests cut on it, each sent again and answered.
    cut = ledger.failures["kill"]
    assert len(cut) <= CLIENTS * 2, cut

    # Every subscriber has every event after its start, once, in order: no gap, no repeat.
    async with engine.connect() as conn:
        cursors = [r[0] for r in await conn.execute(text("SELECT seq FROM coordination_events ORDER BY seq"))]
    expected = [c for c in cursors if c > start]

    async def caught_up() -> None:
        while any(sub.last < expected[-1] for sub in subscribers):  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    await asyncio.wait_for(caught_up(), 120)
    stop.set()
    for task in following:
        task.cancel()
    await asyncio.gather(*following, return_exceptions=True)
    for sub in subscribers:
        assert sub.cursors == expected, (sub.kind, sub.served_by, _difference(sub.cursors, expected))
    for sub in victim_subscribers:
        assert len(sub.served_by) >= 2 and sub.served_by[1] != victim, (sub.kind, sub.served_by)
    # Those on the replica restarted gracefully were drained, and resumed elsewhere just as well.
    for sub, connections in drained:
        assert len(sub.served_by) > connections, (sub.kind, sub.served_by)
    assert {sub.kind for sub in victim_subscribers} == {"sse", "graphql"}

    # Every acknowledged write is there, and every check-in has exactly one event.
    async with engine.connect() as conn:
        stored = {r[0] for r in await conn.execute(text("SELECT id FROM team_checkins"))}
        events = await conn.execute(
            text(
                "SELECT c.id, count(e.id) FROM team_checkins AS c "
                "LEFT JOIN coordination_events AS e ON e.reference_id = c.id GROUP BY c.id HAVING count(e.id) <> 1"
            )
        )
        assert events.all() == []
        orphans = await conn.execute(
            text(
                "SELECT count(*) FROM coordination_events AS e "
                "WHERE NOT EXISTS (SELECT 1 FROM team_checkins AS c WHERE c.id = e.reference_id)"
            )
        )
        assert orphans.scalar_one() == 0
    assert ledger.acknowledged <= stored, sorted(ledger.acknowledged - stored)[:10]
    writes = CLIENTS * sum((ops + 1) // 2 for ops in (STEADY_OPS, KILL_OPS, AFTER_OPS, ROLLING_OPS))
    assert len(ledger.acknowledged) == writes
    print(
        f"\nsends per phase {dict(ledger.sends)}; cut while {victim} died: {len(cut)} "
        f"({collections.Counter(c.split(':')[0] for c in cut)}); "
        f"events {len(expected)}; subscribers on it reconnected: "
        f"{[(s.kind, s.served_by) for s in victim_subscribers]}; drained from {restarted}: {len(drained)}"
    )
    await engine.dispose()


def _difference(got: list[int], expected: list[int]) -> dict[str, Any]:
    seen = collections.Counter(got)
    return {
        "missing": sorted(set(expected) - set(got))[:10],
        "repeated": sorted(c for c, n in seen.items() if n > 1)[:10],
        "got": len(got),
        "expected": len(expected),
    }
