"""Request ids, one log line per request, Prometheus metrics, liveness and readiness."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RunningServer


@pytest.fixture(scope="module")
def json_logged_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, log_format="json") as url:
        yield url


def samples(body: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(body) for s in family.samples]


async def test_request_id_is_returned_and_kept_when_sane(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        made = (await client.get("/actors")).headers["x-request-id"]
        assert len(made) == 32
        assert (await client.get("/actors", headers={"X-Request-Id": "trace-42"})).headers["x-request-id"] == "trace-42"
        hostile = await client.get("/actors", headers={"X-Request-Id": "a\tb; DROP TABLE actors"})
        assert hostile.headers["x-request-id"] != "a\tb; DROP TABLE actors"
        assert (await client.get("/actors")).status_code == 200


async def test_one_json_log_line_per_request(json_logged_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="coco.access")
    async with httpx.AsyncClient(base_url=json_logged_url, timeout=30) as client:
        await client.get("/actors?select=id", headers={"X-Request-Id": "log-check-1"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "coco.access"]
    mine = [line for line in lines if line["request_id"] == "log-check-1"]
    assert len(mine) == 1
    assert mine[0]["status"] == 200 and mine[0]["route"] == "/{resource}" and mine[0]["method"] == "GET"
    assert mine[0]["duration_ms"] >= 0


async def test_metrics(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        await client.get("/actors/")
        await client.get("/no_such_table")
        await client.post("/graphql", json={"query": "query MetricsProbe { actors { nodes { id } } }"})
        async with client.stream("GET", "/coordination_events", headers={"Accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            during = samples((await client.get("/metrics")).text)
        answer = await client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    assert any(
        n == "coco_http_requests_total"
        and labels == {"method": "GET", "route": "/{resource}", "status": "200"}
        and value >= 1
        for n, labels, value in found
    )
    assert any(
        n == "coco_http_requests_total" and labels["status"] == "404" and labels["route"] == "other"
        for n, labels, _ in found
    )
    assert any(
        n == "coco_http_request_duration_seconds_count" and labels["route"] == "/graphql" for n, labels, _ in found
    )
    assert any(
        n == "coco_graphql_operations_total" and labels == {"type": "query", "name": "MetricsProbe"}
        for n, labels, _ in found
    )
    assert any(n == "coco_db_pool_size" and value >= 1 for n, _, value in found)
    assert any(n == "coco_live_subscribers" and value >= 1 for n, _, value in during)
    for name in ("coco_live_events_delivered_total", "coco_live_queue_overflows_total", "coco_db_pool_checked_out"):
        assert any(n == name for n, _, _ in found), name


async def test_liveness_and_readiness(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        assert (await client.get("/livez")).json()["status"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["database"] == "up"
