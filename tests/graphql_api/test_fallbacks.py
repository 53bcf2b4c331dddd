"""A query the compiled path leaves to the resolvers is logged at debug with its reason and counted in /metrics."""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config import Settings
from api.graphql.compiled import fall_back
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.schema import make_schema
from api.store import Reader, WriteService, create_engine

SETTINGS = Settings()
SCHEMA = make_schema(SETTINGS)
LIMITS = Limits(max_page_size=SETTINGS.graphql_max_page_size, default_page_size=SETTINGS.graphql_default_page_size)
LOGGER = "coco.graphql.compiled"
# The same response key twice with a sub-selection: graphql-core merges those, the compiled path does not.
MERGED = "{ actors(first: 1) { nodes { teams { totalCount } teams { totalCount } } } }"


def _fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("coco_graphql_fallbacks_total", {"reason": reason}) or 0.0


def _all_fallbacks() -> dict[str, float]:
    return {
        reason: _fallbacks(reason)
        for reason in ("unsupported", "invalid_input", "unavailable", "refused", "unexpected")
    }


async def _execute(engine: AsyncEngine, query: str, variables: dict[str, Any] | None = None) -> Any:
    context = Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS)
    return await SCHEMA.execute(query, variable_values=variables, context_value=context)


def _logged(caplog: pytest.LogCaptureFixture, reason: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == LOGGER and r.levelno == logging.DEBUG and f"({reason})" in r.getMessage()
    ]


async def test_a_selection_outside_the_compiled_subset_is_logged_and_counted(
    world: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    before = _all_fallbacks()
    query = "query Merged " + MERGED
    first = await _execute(world, query)
    assert first.errors is None and first.data == {"actors": {"nodes": [{"teams": {"totalCount": 1}}]}}
    [record] = _logged(caplog, "unsupported")
    assert "Merged" in record.getMessage() and "merged fields" in record.getMessage()
    # Known by now not to be plannable: not compiled again, but still answered by the resolvers, so counted.
    again = await _execute(world, query)
    assert again.data == first.data
    assert len(_logged(caplog, "unsupported")) == 2
    assert _all_fallbacks() == {**before, "unsupported": before["unsupported"] + 2}


async def test_bad_input_is_logged_and_counted_and_the_resolvers_refuse_it(
    world: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    before = _all_fallbacks()
    result = await _execute(world, 'query Bad { goalStories(after: "not a cursor") { nodes { id } } }')
    assert result.errors and result.errors[0].path == ["goalStories"]
    result = await _execute(world, "query BadVariable($n: Int) { actors(first: $n) { nodes { id } } }", {"n": "x"})
    assert result.errors and result.data is None
    assert len(_logged(caplog, "invalid_input")) == 2
    assert _all_fallbacks() == {**before, "invalid_input": before["invalid_input"] + 2}


async def test_the_database_failing_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    engine = create_engine(f"postgresql://coco@127.0.0.1:{closed}/nowhere", pool_size=1)
    before = _all_fallbacks()
    try:
        result = await _execute(engine, "{ actors { nodes { id } } }")
    finally:
        await engine.dispose()
    # The resolvers meet the same database: their error is the client's answer.
    assert result.errors and "unavailable" in result.errors[0].message
    assert len(_logged(caplog, "unavailable")) == 1
    assert _all_fallbacks() == {**before, "unavailable": before["unavailable"] + 1}


def test_a_fault_of_the_compiled_path_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    before = _fallbacks("unexpected")
    try:
        raise KeyError("no such view")
    except KeyError as error:
        fall_back(error, "Faulty")
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING and "Faulty" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert _fallbacks("unexpected") == before + 1


async def _counted(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^coco_graphql_fallbacks_total\{reason="([a-z_]+)"\} (\S+)$', text, re.MULTILINE)
    }


async def test_metrics_count_fallbacks_by_reason_and_nothing_else(gql, world: AsyncEngine, server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        before = await _counted(client)
        assert set(before) == {"unsupported", "invalid_input", "unavailable", "refused", "unexpected"}
        await gql("{ goalStories(first: 2) { nodes { id latestUpdate { title } } } }")  # compiled
        await gql("{ goalStories(first: 2) { nodes { id latestUpdate { title } } } }")  # its recorded plan
        assert await _counted(client) == before
        await gql("query ViaHttp " + MERGED)
        assert await gql.code('{ actors(after: "nope") { nodes { id } } }') == "BAD_USER_INPUT"
        # A mutation the write service refuses wrote nothing: the resolvers refuse it again, with their paths.
        assert await gql.code('mutation { deleteActor(id: "none") { actor { id } } }') == "NOT_FOUND"
        assert await _counted(client) == {
            **before,
            "unsupported": before["unsupported"] + 1,
            "invalid_input": before["invalid_input"] + 1,
            "refused": before["refused"] + 1,
        }
