"""The container: the Dockerfile's start command run outside Docker, the compose file's
structure, and the installed (non-editable) package finding its migrations.

Docker is not available on the test machines, so the image itself is never built here;
what it runs is: the exact CMD and HEALTHCHECK of the Dockerfile, with its ENV.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
import yaml

from api.ops.embedded import EmbeddedPostgres
from tests.processes import free_port, read_until, running, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def dockerfile() -> dict[str, object]:
    """The final stage of the Dockerfile: its base image, ENV, USER, HEALTHCHECK and CMD."""
    joined = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    stage: dict[str, object] = {"FROM": instructions[last_from].split()[1], "ENV": {}}
    for line in instructions[last_from + 1 :]:
        keyword, _, rest = line.partition(" ")
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                stage["ENV"][name] = value  # type: ignore[index]
        elif keyword in ("CMD", "ENTRYPOINT"):
            stage[keyword] = json.loads(rest)  # exec form only: signals reach the server
        elif keyword == "HEALTHCHECK":
            stage[keyword] = rest[rest.index("CMD ") + 4 :]
        else:
            stage[keyword] = rest
    return stage


def migrated_revision(url: str) -> str | None:
    async def read() -> str | None:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()

    return asyncio.run(read())


def container_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    image = dockerfile()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COCO_", "DATABASE_URL"))}
    env.update(image["ENV"])  # type: ignore[arg-type]
    # The image's `coco` and `python` are this venv's; the port is a free one instead of 2626.
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=database_url,
        COCO_PORT=str(port),
        COCO_WORKERS="1",
        **extra,
    )
    return env


@contextmanager
def container(env: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen[str]]:
    """The image's ENTRYPOINT + CMD, run as a process."""
    image = dockerfile()
    with running([*image.get("ENTRYPOINT", []), *image["CMD"]], env, workdir) as process:  # type: ignore[misc]
        yield process


def test_the_image_is_small_slim_python_and_not_root() -> None:
    image = dockerfile()
    assert str(image["FROM"]).startswith("python:3.1") and str(image["FROM"]).endswith("-slim")
    assert image["USER"] not in ("root", "0")
    assert image["CMD"][:2] == ["coco", "serve"]  # type: ignore[index]
    assert "0.0.0.0" in image["CMD"]  # type: ignore[operator]
    assert image["ENV"]["COCO_PORT"] == "2626"  # type: ignore[index]
    assert "/healthz" in str(image["HEALTHCHECK"])
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".coco"} <= set(ignored)


def test_the_start_command_migrates_and_serves(postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    url = postgres.create_database(f"coco_container_{uuid.uuid4().hex[:8]}")
    port = free_port()
    env = container_env(url, port)
    with container(env, tmp_path) as process:
        health = wait_healthy(process, port)
        assert health.json()["database"] == "up"
        # The image's own health check passes against the running server.
        check = subprocess.run(["sh", "-c", str(dockerfile()["HEALTHCHECK"])], env=env, cwd=tmp_path, timeout=30)
        assert check.returncode == 0
    # Stopped by SIGTERM within the grace period (uvicorn re-raises the signal once shut down).
    assert process.returncode in (0, -signal.SIGTERM)
    assert migrated_revision(url) is not None


def test_the_start_command_waits_for_a_database_that_starts_late(tmp_path: Path) -> None:
    late = EmbeddedPostgres(tmp_path / "late-pg", settings={"fsync": "off"})
    port = free_port()
    env = container_env(late.url(), port)
    try:
        with container(env, tmp_path) as process:
            read_until(process, "waiting for the database")
            assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
            late.start()
            wait_healthy(process, port)
        assert migrated_revision(late.url()) is not None
    finally:
        late.stop()


def test_the_start_command_gives_up_on_a_database_that_never_comes(tmp_path: Path) -> None:
    port = free_port()
    env = container_env(
        f"postgresql://coco:changeme@127.0.0.1:{free_port()}/coco", port, COCO_DATABASE_WAIT_SECONDS="2"
    )
    with container(env, tmp_path) as process:
        process.wait(timeout=60)
        output = process.stdout.read()  # type: ignore[union-attr]
    assert process.returncode == 1
    assert "the database is unavailable" in output and "Traceback" not in output


def test_the_compose_file_runs_postgres_18_and_the_server() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    db, server = services["db"], services["server"]

    assert db["image"] == "postgres:18"
    assert db["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-changeme}"
    test = db["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test)
    assert {"interval", "timeout", "retries"} <= set(db["healthcheck"])
    # PostgreSQL 18 images keep PGDATA under /var/lib/postgresql/18/docker: the volume is the parent.
    assert "postgres-data:/var/lib/postgresql" in db["volumes"]
    assert "postgres-data" in compose["volumes"]

    assert server["build"] == "."
    assert server["depends_on"]["db"]["condition"] == "service_healthy"
    assert "2626:2626" in server["ports"]
    database_url = server["environment"]["DATABASE_URL"]
    user, database = db["environment"]["POSTGRES_USER"], db["environment"]["POSTGRES_DB"]
    assert database_url == f"postgresql://{user}:${{POSTGRES_PASSWORD:-changeme}}@db:5432/{database}"
    assert "5432" not in " ".join(str(p) for p in db.get("ports", []))  # the database stays private
    # Docker's default 10 s before SIGKILL would cut the server's own 10 s for requests in flight.
    assert int(server["stop_grace_period"].rstrip("s")) > 10


def test_an_installed_package_finds_its_migrations_and_schemas(postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    """`pip install .` (as in the image) has no checkout beside it: migrations and schemas travel inside."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("api", "migrations", "schema"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = (tmp_path / "wheels").glob("*.whl")
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    shutil.rmtree(source)  # nothing may be read from a checkout

    url = postgres.create_database(f"coco_installed_{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": url}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import api.store.migrate, api.ops.schemas; "
            "api.ops.schemas.validator('actor').validate({'id': 'a', 'actor_type': 'person', 'name': 'A'}); "
            "print(api.store.migrate.MIGRATIONS); print(api.ops.schemas.SCHEMA_DIR)",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(site)) for line in where.stdout.split())
    migrate = subprocess.run(
        [sys.executable, "-m", "api", "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    assert migrated_revision(url) is not None


@pytest.mark.parametrize("target", ["serve", "seed"])
def test_make_targets_exist(target: str) -> None:
    dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0
    assert f"coco {target}" in dry.stdout
