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
