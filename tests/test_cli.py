"""The `coco` command as a user runs it: serve with the embedded database, migrate, version."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from api.ops.embedded import EmbeddedPostgres
from api.plan import ReadPlan
from api.store.database import create_engine
from api.store.reads import Reader
from api.store.writes import WriteService
from tests.processes import read_until

COCO = [sys.executable, "-m", "api"]
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("COCO_")}
    env.update(extra)
    return env


@contextmanager
def serving(data_dir: Path, port: int) -> Iterator[str]:
    process = subprocess.Popen(
        [*COCO, "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=environment(COCO_DATA_DIR=str(data_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Said only once the server answers: a client that starts on the line is served at once.
        read_until(process, f"serving on http://127.0.0.1:{port} with 2 worker(s)")
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


async def test_serve_starts_an_embedded_database_that_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "coco"
    port = free_port()
    with serving(data_dir, port):
        pg = EmbeddedPostgres(data_dir / "pgdata")
        assert pg.running
        engine = create_engine(pg.url())
        try:
            await WriteService(engine).create("actor", [{"id": "p-1", "actor_type": "person", "name": "Quinn"}])
        finally:
            await engine.dispose()
    # The server stopped its database on the way out.
    assert not EmbeddedPostgres(data_dir / "pgdata").running

    with serving(data_dir, port):
        engine = create_engine(EmbeddedPostgres(data_dir / "pgdata").url())
        try:
            assert '"Quinn"' in await Reader(engine).json_array(ReadPlan("actor"))
        finally:
            await engine.dispose()
    assert not EmbeddedPostgres(data_dir / "pgdata").running


def test_migrate_brings_an_empty_database_to_the_newest_schema(postgres: EmbeddedPostgres) -> None:
    url = postgres.create_database("cli_migrate")
    for _ in range(2):  # running it again is harmless
        done = subprocess.run(
            [*COCO, "migrate"], cwd=ROOT, env=environment(DATABASE_URL=url), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    tables = subprocess.run(
        [
            str(Path(postgres_bin()) / "psql"),
            url,
            "-Atc",
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert tables == (
        "actors,alembic_version,coordination_events,goal_stories,goal_story_updates,graphql_documents,"
        "team_checkins,teams,webhook_deliveries,webhooks"
    )


def test_version() -> None:
    done = subprocess.run([*COCO, "version"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.startswith("coco ")


def test_a_bad_setting_is_a_clear_error() -> None:
    done = subprocess.run(
        [*COCO, "version"], cwd=ROOT, env=environment(COCO_PORT="many"), capture_output=True, text=True
    )
    assert done.returncode != 0 and "COCO_PORT must be a whole number" in done.stderr


def postgres_bin() -> str:
    from api.ops.embedded import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH)


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
