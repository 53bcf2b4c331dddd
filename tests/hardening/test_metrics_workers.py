"""`coco serve --workers 2`: /metrics of whichever worker answers reports the sum of both."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ..processes import free_port, running, wait_healthy
from .test_observability import samples

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 40


def served_reads(body: str) -> float:
    return sum(
        value
        for name, labels, value in samples(body)
        if name == "coco_http_requests_total"
        and labels.get("route") == "/{resource}"
        and labels.get("method") == "GET"
        and labels.get("status") == "200"
    )


async def test_every_worker_reports_the_requests_of_all_workers(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCO_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(DATABASE_URL=database_url, COCO_PORT=str(port), COCO_WORKERS="2", COCO_MIGRATE_ON_START="0")
    with running([sys.executable, "-m", "api", "serve"], env, ROOT) as server:
        await asyncio.to_thread(wait_healthy, server, port)
        url = f"http://127.0.0.1:{port}"
        # A connection each, so that both workers take some of them.
        for _ in range(REQUESTS):
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                assert (await client.get("/actors?limit=1")).status_code == 200
        scraped = []
        for _ in range(8):
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                response = await client.get("/metrics")
                assert response.status_code == 200
                scraped.append(served_reads(response.text))
                assert "coco_db_direct_pool_size" in response.text
    assert scraped == [REQUESTS] * len(scraped)
