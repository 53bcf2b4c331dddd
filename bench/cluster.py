"""The benchmark's own PostgreSQL: an embedded cluster under bench/.data, seeded once and reused.

A database is reseeded only when its stamp (seed generator version, scale, newest
migration, bench fixtures version) differs from what this run wants; otherwise only
the rows that earlier write scenarios added are removed, so each run starts from
the same data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine, libpq_url
from api.store.migrate import MIGRATIONS, upgrade
from bench import postgraphile
from bench.seed import CHECKIN_ID_PREFIX, SEED_VERSION, Scale, seed

log = logging.getLogger("bench.cluster")

BENCH_DIR = Path(__file__).resolve().parent
PGDATA = BENCH_DIR / ".data" / "pgdata"
# Durable data files but commits that do not wait for the WAL flush: the write
# scenarios then measure the servers rather than this machine's disk.
SERVER_SETTINGS = {
    "shared_buffers": "256MB",
    "synchronous_commit": "off",
    "max_connections": "300",
}
QUIESCE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class BenchDatabase:
    name: str
    url: str
    socket_dir: Path
    port: int
    scale: Scale
    # The highest event cursor the seed wrote; later events came from write scenarios.
    seed_max_seq: int
    seeded_in_s: float | None  # None when the cached database was reused


class Cluster:
    def __init__(self, data_dir: Path = PGDATA) -> None:
        self.server = EmbeddedPostgres(data_dir, settings=SERVER_SETTINGS)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    async def prepare(self, name: str, scale: Scale) -> BenchDatabase:
        """The named database, migrated and seeded at `scale`, with earlier bench writes removed."""
        stamp = _stamp(scale)
        admin = await asyncpg.connect(libpq_url(self.server.url("postgres")))
        try:
            current = await admin.fetchval(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name
            )
            seeded_in_s = None
            if current is None or _parse(current).get("stamp") != stamp:
                log.info("seeding database %s at %s (this happens once per generator version)", name, scale)
                started = time.monotonic()
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{name}"')
                max_seq = await _build(self.server.url(name), scale)
                await admin.execute(
                    f'COMMENT ON DATABASE "{name}" IS {_quote(json.dumps({"stamp": stamp, "max_seq": max_seq}))}'
                )
                seeded_in_s = time.monotonic() - started
            else:
                max_seq = int(_parse(current)["max_seq"])
        finally:
            await admin.close()
        url = self.server.url(name)
        await reset_writes(url, max_seq)
        # pgbench and PostGraphile take the socket directory and port apart.
        query = parse_qs(urlsplit(url).query)
        return BenchDatabase(
            name=name,
            url=url,
            socket_dir=Path(query["host"][0]),
            port=int(query["port"][0]),
            scale=scale,
            seed_max_seq=max_seq,
            seeded_in_s=seeded_in_s,
        )


async def _build(url: str, scale: Scale) -> int:
    engine = create_engine(url, pool_size=1, application_name="bench_seed")
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await seed(conn, scale)
            for statement in postgraphile.FIXTURES:
                await conn.exec_driver_sql(statement)
            max_seq = (await conn.exec_driver_sql("SELECT coalesce(max(seq), 0) FROM coordination_events")).scalar_one()
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()
    return int(max_seq)


async def quiesce(conn: asyncpg.Connection, timeout_s: float = QUIESCE_TIMEOUT_S) -> None:
    """Wait until no other session of this database is running a statement. When a load
    generator stops, the servers still finish the requests in flight; counting or deleting
    rows before those commit would see half of them."""
    deadline = time.monotonic() + timeout_s
    while await conn.fetchval(
        """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
                 AND backend_type = 'client backend'"""
    ):
        if time.monotonic() > deadline:
            log.warning("other sessions are still busy after %.0f s; going on", timeout_s)
            return
        await asyncio.sleep(0.05)


async def reset_writes(url: str, seed_max_seq: int) -> dict[str, int]:
    """Remove what write scenarios added (check-ins the seed did not write, events past its
    cursors), so every scenario and every run sees the same data. Returns what was removed."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await quiesce(conn)
        async with conn.transaction():
            events = await conn.execute("DELETE FROM coordination_events WHERE seq > $1", seed_max_seq)
            checkins = await conn.execute("DELETE FROM team_checkins WHERE id NOT LIKE $1", CHECKIN_ID_PREFIX + "%")
        removed = {"coordination_events": _affected(events), "team_checkins": _affected(checkins)}
        if any(removed.values()):
            await conn.execute("VACUUM (ANALYZE) team_checkins, coordination_events")
        return removed
    finally:
        await conn.close()


async def written_since(url: str, seed_max_seq: int) -> dict[str, int]:
    """Rows that write scenarios added since the last reset."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await quiesce(conn)
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM team_checkins WHERE id NOT LIKE $2) AS team_checkins,
                      (SELECT count(*) FROM coordination_events WHERE seq > $1) AS coordination_events""",
            seed_max_seq,
            CHECKIN_ID_PREFIX + "%",
        )
        return dict(row)
    finally:
        await conn.close()


def _stamp(scale: Scale) -> dict[str, Any]:
    return {
        "seed_version": SEED_VERSION,
        "fixtures_version": postgraphile.FIXTURES_VERSION,
        "migrations": sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py")),
        "scale": asdict(scale),
    }


def _parse(comment: str) -> dict[str, Any]:
    try:
        value = json.loads(comment)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _affected(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])
