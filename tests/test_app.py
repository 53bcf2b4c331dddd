"""The app over real HTTP: health, and what a fresh database looks like after start."""

from __future__ import annotations

import httpx


async def test_healthz_answers_200_with_the_database_up(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "up"
