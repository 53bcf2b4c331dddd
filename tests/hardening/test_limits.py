"""Limits answer clear errors and write nothing: body size, rows per read, statement timeout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService
from tests.conftest import RunningServer, table_counts

LIMIT = 4096


@pytest.fixture(scope="module")
def limited_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, max_body_bytes=LIMIT, max_rows=2, statement_timeout_ms=300) as url:
        yield url


def _actors(n: int, name_size: int = 10) -> list[dict[str, str]]:
    return [{"actor_type": "agent", "name": "n" * name_size} for _ in range(n)]


async def test_a_declared_body_over_the_limit_is_refused(limited_url: str, clean: AsyncEngine) -> None:
    body = json.dumps(_actors(100, 100)).encode()
    assert len(body) > LIMIT
    async with httpx.AsyncClient(base_url=limited_url, timeout=30) as client:
        answer = await client.post("/actors", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 413
        assert answer.json()["code"] == "COCO413"
        graphql = await client.post(
            "/graphql",
            content=json.dumps({"query": "{ actors { nodes { id } } }", "pad": "x" * LIMIT}),
            headers={"Content-Type": "application/json"},
        )
        assert graphql.status_code == 413
        assert graphql.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert (await table_counts(clean))["actors"] == 0


async def test_a_streamed_body_is_cut_off_at_the_limit(limited_url: str, clean: AsyncEngine) -> None:
    """Without Content-Length (chunked), the body is counted while it arrives."""
    body = json.dumps(_actors(100, 100)).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    async with httpx.AsyncClient(base_url=limited_url, timeout=30) as client:
        answer = await client.post("/actors", content=chunks(), headers={"Content-Type": "application/json"})
        assert answer.status_code == 413, answer.text
        assert answer.json()["code"] == "COCO413"
        small = await client.post("/actors", json=_actors(2))
        assert small.status_code == 201
    assert (await table_counts(clean))["actors"] == 2


async def test_reads_are_capped_at_max_rows(limited_url: str, writer: WriteService) -> None:
    await writer.create("actor", _actors(5))
    async with httpx.AsyncClient(base_url=limited_url, timeout=30) as client:
        answer = await client.get("/actors")
        assert answer.status_code in (200, 206)
        assert len(answer.json()) == 2
        assert answer.headers["content-range"].startswith("0-1/")
        assert len((await client.get("/actors?limit=1")).json()) == 1


async def test_a_statement_past_the_timeout_is_a_clear_error(limited_url: str, clean: AsyncEngine) -> None:
    """A table locked by another session makes the read wait past statement_timeout (300 ms here)."""
    async with clean.connect() as blocker:
        transaction = await blocker.begin()
        await blocker.execute(text("LOCK TABLE actors IN ACCESS EXCLUSIVE MODE"))
        try:
            async with httpx.AsyncClient(base_url=limited_url, timeout=30) as client:
                rest = await client.get("/actors")
                assert rest.status_code == 504, rest.text
                assert rest.json()["code"] == "57014"
                graphql = await client.post("/graphql", json={"query": "{ actors { nodes { id } } }"})
                assert graphql.status_code == 200
                assert graphql.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
                write = await client.post("/actors", json=_actors(1))
                assert write.status_code == 504, write.text
        finally:
            await transaction.rollback()
    await asyncio.sleep(0)
    assert (await table_counts(clean))["actors"] == 0
