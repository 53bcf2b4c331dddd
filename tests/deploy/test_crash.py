"""Crash safety on one machine: `coco serve` on its embedded PostgreSQL, killed with SIGKILL (its whole
process group, the server and its workers, and every PostgreSQL process, which pg_ctl puts in a session
of its own) in the middle of a burst of concurrent writes,
then started again as it is, with no repair. Five rounds. Every write that was acknowledged is there
with exactly one event; nothing is half-written (a bulk write is all there or not at all, no row
without its event, no event without its row)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine
from tests.deploy.tools import CocoServe

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1500)]

ROUNDS = 5
CLIENTS = 16
BULK = 5  # check-ins in one bulk write
# Acknowledged writes in a round before the kill: it comes mid-burst, with writes in flight.
BEFORE_KILL = 40


@dataclass
class Acknowledged:
    single: set[str] = field(default_factory=set)
    bulk: dict[str, list[str]] = field(default_factory=dict)
    # Sent, answered with neither an acknowledgement nor a refusal: cut by the kill.
    unknown: int = 0

    def count(self) -> int:
        return len(self.single) + len(self.bulk)


async def burst(base: str, round_: int, acknowledged: Acknowledged, stop: asyncio.Event) -> None:
    """CLIENTS clients writing as fast as they are answered (REST one and bulk, GraphQL) until `stop`."""

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            step = 0
            while not stop.is_set():
                key = f"r{round_}-c{n}-{step}"
                step += 1
                try:
                    match step % 3:
                        case 0:
                            ids = [f"{key}-{i}" for i in range(BULK)]
                            answer = await http.post("/team_checkins", json=[checkin(i) for i in ids])
                            if answer.status_code == 201:
                                acknowledged.bulk[key] = ids
                        case 1:
                            answer = await http.post("/team_checkins", json=checkin(key))
                            if answer.status_code == 201:
                                acknowledged.single.add(key)
                        case _:
                            query = (
                                f'mutation {{ createTeamCheckin(input: {{id: "{key}", actorId: "p-1", '
                                'teamId: "t-1", date: "2026-05-22", next: ["x"]}) { teamCheckin { id } } }'
                            )
                            answer = await http.post("/graphql", json={"query": query})
                            if answer.status_code == 200 and not answer.json().get("errors"):
                                acknowledged.single.add(key)
                    assert answer.status_code < 400 or answer.status_code >= 500, answer.text
                except httpx.TransportError:
                    acknowledged.unknown += 1
                    return

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))


def kill_postgres(pgdata: Path) -> int:
    """SIGKILL every process of the cluster (each works in its data dir): postmaster and backends alike."""
    target = pgdata.resolve()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == target:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except OSError:
            continue  # gone already, or not ours to read
    return killed


async def gone(cluster: EmbeddedPostgres, within_s: float = 15.0) -> bool:
    deadline = time.monotonic() + within_s
    while cluster.running:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def checkin(checkin_id: str) -> dict[str, object]:
    return {"id": checkin_id, "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22", "next": ["x"]}


async def test_killed_mid_burst_five_times_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "coco"
    env = {"COCO_DATA_DIR": str(data_dir), "COCO_WORKERS": "2", "COCO_DB_POOL_SIZE": "4"}
    acknowledged = Acknowledged()
    server = CocoServe(env, tmp_path / "serve.log")
    try:
        for round_ in range(1, ROUNDS + 1):
            await asyncio.to_thread(server.start().wait_ready)
            if round_ == 1:
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                    person = {"id": "p-1", "actor_type": "person", "name": "Quinn"}
                    assert (await http.post("/actors", json=person)).status_code == 201
                    team = {"id": "t-1", "name": "Team", "member_ids": ["p-1"]}
                    assert (await http.post("/teams", json=team)).status_code == 201
            stop = asyncio.Event()
            before = acknowledged.count()
            writing = asyncio.create_task(burst(server.url, round_, acknowledged, stop))
            while acknowledged.count() < before + BEFORE_KILL and not writing.done():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            assert not writing.done(), writing.exception()
            server.kill()
            # pg_ctl starts PostgreSQL in a session of its own, so the group's kill leaves it running;
            # a container or machine going down takes it too: every one of its processes, at once.
            killed = kill_postgres(data_dir / "pgdata")
            assert killed, "no PostgreSQL process to kill"
            stop.set()
            await writing
            # SIGKILL is delivered, not awaited: the processes are gone once the kernel has reaped them, and a
            # backend forked while the list was read goes when it sees its postmaster gone.
            assert await gone(EmbeddedPostgres(data_dir / "pgdata")), "PostgreSQL still running after SIGKILL"

        # Started once more, as it is: every acknowledged write there once, with one event; nothing half-done.
        await asyncio.to_thread(server.start().wait_ready)
        engine = create_engine(EmbeddedPostgres(data_dir / "pgdata").url(), pool_size=1)
        try:
            async with engine.connect() as conn:
                stored = {r[0] for r in await conn.execute(text("SELECT id FROM team_checkins"))}
                unmatched = await conn.execute(
                    text(
                        "SELECT c.id, count(e.id) FROM team_checkins AS c LEFT JOIN coordination_events AS e "
                        "ON e.reference_id = c.id GROUP BY c.id HAVING count(e.id) <> 1"
                    )
                )
                assert unmatched.all() == []
                orphans = await conn.execute(
                    text(
                        "SELECT count(*) FROM coordination_events AS e "
                        "WHERE NOT EXISTS (SELECT 1 FROM team_checkins AS c WHERE c.id = e.reference_id)"
                    )
                )
                assert orphans.scalar_one() == 0
                cursors = [r[0] for r in await conn.execute(text("SELECT seq FROM coordination_events ORDER BY seq"))]
        finally:
            await engine.dispose()
        assert acknowledged.single <= stored, sorted(acknowledged.single - stored)[:10]
        for ids in acknowledged.bulk.values():
            assert set(ids) <= stored, ids
        # A bulk write that was cut is all there or not at all.
        bulks: dict[str, set[str]] = {}
        for checkin_id in stored:
            if checkin_id.count("-") == 3:
                bulks.setdefault(checkin_id.rsplit("-", 1)[0], set()).add(checkin_id)
        assert all(len(ids) == BULK for ids in bulks.values()), {k: v for k, v in bulks.items() if len(v) != BULK}
        assert len(set(cursors)) == len(cursors) == len(stored)
        print(
            f"\n{ROUNDS} rounds: {acknowledged.count()} writes acknowledged ({len(acknowledged.bulk)} bulk of {BULK}), "
            f"{len(stored)} check-ins stored, {acknowledged.unknown} cut by the kills"
        )
    finally:
        server.stop()
        # The embedded PostgreSQL is the server's child: stopped with it, unless a kill left it behind.
        pg = EmbeddedPostgres(data_dir / "pgdata")
        if pg.running:
            pg.stop()
