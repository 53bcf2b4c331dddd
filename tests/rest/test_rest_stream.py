"""Reading every row of a large table streams: the server's memory stays flat, whatever the table's size."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.rest.reading import STREAM_AFTER

ROWS = 50_000
NAME = "n" * 200  # about 13 MB of JSON for the whole table
PEAK_LIMIT = 6 * 1024 * 1024


async def test_reading_50k_rows_keeps_memory_flat(clean: AsyncEngine, http: httpx.AsyncClient, tmp_path: Path) -> None:
    async with clean.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO actors (id, actor_type, name) "
                "SELECT 'p-' || lpad(g::text, 6, '0'), 'person', :name || g "
                "FROM generate_series(1, :rows) AS g"
            ),
            {"name": NAME, "rows": ROWS},
        )
    body = tmp_path / "actors.json"
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        async with http.stream("GET", "/actors?order=id", headers={"Prefer": "count=exact"}) as response:
            assert response.status_code == 200
            assert response.headers["content-range"] == f"0-{ROWS - 1}/{ROWS}"
            with body.open("wb") as out:
                async for chunk in response.aiter_raw():
                    out.write(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = body.stat().st_size
    assert size > 2 * PEAK_LIMIT  # the body is far larger than what was held at once
    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB body"
    rows = json.loads(body.read_text())
    assert len(rows) == ROWS
    assert rows[0] == {"id": "p-000001", "actor_type": "person", "name": NAME + "1"}
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)


async def test_streamed_pages_and_csv_match_the_small_path(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    count = STREAM_AFTER + 50
    async with clean.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO actors (id, actor_type, name, role) "
                "SELECT 'p-' || lpad(g::text, 6, '0'), 'person', 'P' || g, "
                "CASE WHEN g % 2 = 0 THEN 'even' END FROM generate_series(1, :rows) AS g"
            ),
            {"rows": count},
        )
    r = await http.get("/actors?order=id&offset=10", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (206, f"10-{count - 1}/{count}")
    streamed = r.json()
    assert len(streamed) == count - 10
    small = (await http.get(f"/actors?order=id&offset=10&limit={STREAM_AFTER}")).json()
    assert streamed[:STREAM_AFTER] == small
    assert "role" not in streamed[0] and streamed[1]["role"] == "even"
    r = await http.get("/actors?order=id&select=id,role", headers={"Accept": "text/csv"})
    lines = r.text.splitlines()
    assert lines[:3] == ["id,role", "p-000001,", "p-000002,even"]
    assert len(lines) == count + 1
    r = await http.get(f"/actors?offset={count + 5}", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.json()["code"]) == (416, "PGRST103")
