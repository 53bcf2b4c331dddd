"""limit, offset, Range, Content-Range, counts, 206 and 416 as PostgREST sends them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.rest.conftest import post


@pytest_asyncio.fixture(loop_scope="session")
async def ten(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    await post(http, "actors", [{"id": f"p-{i:02d}", "actor_type": "person", "name": f"Person {i}"} for i in range(10)])


async def page(http: httpx.AsyncClient, url: str, **headers: str) -> tuple[int, str, list[str]]:
    r = await http.get(url, headers=headers)
    body = r.json()
    return r.status_code, r.headers.get("content-range", ""), [a["id"] for a in body] if r.status_code < 300 else body


async def test_limit_offset_and_content_range(ten: Any, http: httpx.AsyncClient) -> None:
    assert await page(http, "/actors?order=id") == (200, "0-9/*", [f"p-{i:02d}" for i in range(10)])
    assert await page(http, "/actors?order=id&limit=3") == (200, "0-2/*", ["p-00", "p-01", "p-02"])
    assert await page(http, "/actors?order=id&limit=3&offset=8") == (200, "8-9/*", ["p-08", "p-09"])
    assert await page(http, "/actors?order=id&offset=20") == (200, "*/*", [])
    assert await page(http, "/actors?order=id&limit=0") == (200, "*/*", [])
    assert await page(http, "/actors?id=eq.nobody") == (200, "*/*", [])
    # an unparseable limit is ignored, as PostgREST does
    assert (await page(http, "/actors?limit=abc"))[1] == "0-9/*"


async def test_counts_206_and_416(ten: Any, http: httpx.AsyncClient) -> None:
    exact = {"Prefer": "count=exact"}
    assert await page(http, "/actors?order=id", **exact) == (200, "0-9/10", [f"p-{i:02d}" for i in range(10)])
    assert (await page(http, "/actors?order=id&limit=2&offset=4", **exact))[:2] == (206, "4-5/10")
    assert (await page(http, "/actors?id=eq.nobody", **exact))[:2] == (200, "*/0")
    assert (await page(http, "/actors?offset=10", **exact))[:2] == (206, "*/10")
    status, content_range, body = await page(http, "/actors?offset=11", **exact)
    assert (status, content_range) == (416, "*/10")
    assert body == {
        "code": "PGRST103",
        "message": "Requested range not satisfiable",
        "details": "An offset of 11 was requested, but there are only 10 rows.",
        "hint": None,
    }
    r = await http.get("/actors?limit=1", headers={"Prefer": "count=estimated"})
    assert (r.status_code, r.headers["content-range"]) == (206, "0-0/10")
    assert r.headers["preference-applied"] == "count=estimated"
    r = await http.get("/actors?limit=1", headers={"Prefer": "count=planned"})
    assert r.headers["preference-applied"] == "count=planned"
    planned = int(r.headers["content-range"].split("/")[1])
    assert planned >= 0
    r = await http.get("/actors?select=id&actor_type=eq.person&limit=2", headers={"Prefer": "count=exact"})
    assert r.headers["content-range"] == "0-1/10"


async def test_range_header(ten: Any, http: httpx.AsyncClient) -> None:
    assert await page(http, "/actors?order=id", Range="2-4") == (200, "2-4/*", ["p-02", "p-03", "p-04"])
    assert (await page(http, "/actors?order=id", Range="8-", **{"Range-Unit": "items"}))[1:] == (
        "8-9/*",
        ["p-08", "p-09"],
    )
    assert await page(http, "/actors?order=id", Range="0-1", Prefer="count=exact") == (206, "0-1/10", ["p-00", "p-01"])
    # the header and limit/offset intersect
    assert (await page(http, "/actors?order=id&limit=2", Range="1-5"))[1:] == ("1-1/*", ["p-01"])
    status, _, body = await page(http, "/actors", Range="5-2")
    assert status == 416
    assert body["code"] == "PGRST103"
    assert body["details"] == (
        "The lower boundary must be lower than or equal to the upper boundary in the Range header."
    )
    status, _, body = await page(http, "/actors?limit=-1")
    assert (status, body["code"], body["details"]) == (
        416,
        "PGRST103",
        "Limit should be greater than or equal to zero.",
    )
    # a Range header that is not first-last is ignored
    assert (await page(http, "/actors", Range="items=0-1"))[1] == "0-9/*"
    # HEAD answers as GET would, without the body
    r = await http.head("/actors", headers={"Range": "0-1"})
    assert (r.status_code, r.headers["content-range"], r.content) == (200, "0-1/*", b"")
    r = await http.head("/actors", headers={"Range": "5-2"})
    assert (r.status_code, r.content) == (416, b"")


async def test_query_keys_without_a_value_are_ignored(ten: Any, http: httpx.AsyncClient) -> None:
    assert (await page(http, "/actors?order=id&limit=1&id"))[2] == ["p-00"]
    assert (await http.get("/actors?id=")).status_code == 400
    assert (await page(http, "/actors?name=eq.Person+3"))[2] == ["p-03"]
    assert (await page(http, "/actors?name=eq.Person%203"))[2] == ["p-03"]
