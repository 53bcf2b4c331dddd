"""`coco serve` on the embedded PostgreSQL while `coco seed` runs in another shell."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from api.ops.embedded import EmbeddedPostgres
from tests.processes import free_port, running, wait_healthy

COCO = Path(sys.executable).parent / "coco"


def test_seed_reuses_the_embedded_server_that_serve_started(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COCO_", "DATABASE_URL"))}
    env.update(
        COCO_DATA_DIR=str(tmp_path / "data"),
        COCO_PORT=str(port),
        COCO_WORKERS="1",
        PATH=f"{COCO.parent}{os.pathsep}{env.get('PATH', '')}",
    )
    pg = EmbeddedPostgres(tmp_path / "data" / "pgdata")
    with running(["coco", "serve"], env, tmp_path) as serve:
        wait_healthy(serve, port)
        seeded = subprocess.run(
            [str(COCO), "seed", "--today", "2026-05-22"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr
        assert "using the embedded PostgreSQL" in seeded.stderr
        assert "stopping the embedded PostgreSQL" not in seeded.stderr
        # The server that `coco serve` started is still there, and serving.
        assert pg.running
        wait_healthy(serve, port, timeout=10)

        async def count() -> int:
            conn = await asyncpg.connect(pg.url())
            try:
                return await conn.fetchval("SELECT count(*) FROM actors WHERE id LIKE 'demo-%'")
            finally:
                await conn.close()

        assert asyncio.run(count()) == 14
    # `coco serve` started the database, so it stops it when it stops.
    assert not pg.running
