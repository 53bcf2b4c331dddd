"""The app over real HTTP: health, and what a fresh database looks like after start."""

from __future__ import annotations

import httpx


async def test_healthz_answers_200_with_the_database_up(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "up"


async def test_healthz_answers_503_while_the_database_is_unreachable(tmp_path) -> None:
    from .conftest import RunningServer

    nowhere = f"postgresql://postgres@/postgres?host={tmp_path}&port=5432"
    with RunningServer(nowhere, migrate_on_start=False) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


# Run in a fresh interpreter: the app started and stopped, and what it imported and did to the collector.
STARTED_AND_STOPPED = """
import asyncio, gc, json, sys
from api.app import create_app
from api.config import Settings

UNUSED = ("mcp", "mcp_types", "jwt", "cryptography", "httpx", "alembic")


async def main():
    app = create_app(Settings(database_url=sys.argv[1], migrate_on_start=False, pool_size=1))
    default = gc.get_threshold()
    async with app.router.lifespan_context(app):
        serving = {"threshold": gc.get_threshold()[0], "frozen": gc.get_freeze_count()}
        imported = sorted(m for m in UNUSED if m in sys.modules)
    stopped = {"threshold": gc.get_threshold()[0], "default": default[0], "frozen": gc.get_freeze_count()}
    print(json.dumps({"imported": imported, "serving": serving, "stopped": stopped}))


asyncio.run(main())
"""


def test_a_started_worker_has_not_imported_what_only_some_requests_use(engine, database_url: str) -> None:
    """The MCP SDK, PyJWT (with cryptography), httpx and Alembic cost a worker about 45 MB: imported by the
    first request to /mcp, the first JWT, the first webhook delivery, a migration (bench/README.md)."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", STARTED_AND_STOPPED, database_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["imported"] == []
    # While it serves, startup's objects are frozen and young collections are rarer; both undone at the end.
    assert figures["serving"]["threshold"] == 5000
    assert figures["serving"]["frozen"] > 10_000
    assert figures["stopped"] == {"threshold": figures["stopped"]["default"], "default": 700, "frozen": 0}
