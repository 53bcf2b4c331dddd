"""Fuzzing the edges of what can be stored: timestamps near years 1 and 9999 in every offset, integers
around every column's and driver's range, dates at and past the calendar's ends, on every writable
field of those kinds, through REST (create, PATCH), GraphQL (create, update) and MCP.

Each example is held to the promise of the write path, checked in the tables themselves: an answer
of success means exactly the row (holding the value sent) and its event were stored, and the row
reads back as RFC 3339 in any zone; a refusal is a client error in our words, and nothing changed.
Whether a value is accepted must agree with the write service's validation (api/store/validation.py).

`make test` runs a few examples of each (a smoke); `make fuzz-hardening` runs many
(COCO_FUZZ_EXAMPLES each).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import dateutil.parser
import httpx
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.entities import entity as entity_named
from api.errors import DomainError
from api.store.validation import to_columns
from api.store.writes import WriteService
from tests.conftest import table_counts

EXAMPLES = int(os.environ.get("COCO_FUZZ_EXAMPLES", "8"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)

LEAKS = re.compile(r"query argument \$|datetime\.|<class|NoneType|Traceback|asyncpg|sqlalchemy|\bint\(|Decimal")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
ZONES = ("UTC", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Africa/Monrovia", "Asia/Kathmandu")

# ---------------------------------------------------------------- strategies

OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))


def _near(start: dt.datetime, end: dt.datetime) -> st.SearchStrategy[dt.datetime]:
    return st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(min_value=start, max_value=end), OFFSETS)


INSTANTS = st.one_of(
    _near(dt.datetime(1, 1, 1), dt.datetime(1, 1, 2, 23, 59, 59)),
    _near(dt.datetime(9999, 12, 30), dt.datetime(9999, 12, 31, 23, 59, 59, 999_999)),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(), OFFSETS),
)
TIMESTAMPS = st.one_of(
    INSTANTS.map(lambda d: d.isoformat()),
    INSTANTS.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    # No offset: read as UTC.
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "10000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "0000-12-31T23:59:59Z",
            "-0001-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00+24:00",
            "9999-12-31T23:59:60Z",
            "9999-12-31T23:59:59.9999999Z",
            "infinity",
            "",
        ]
    ),
)
EDGES = [0, 1, -1, 100, 101, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**53, 2**63 - 1, 2**63, -(2**63) - 1, 2**64]
INTEGERS = st.one_of(
    st.sampled_from(EDGES),
    st.integers(-(2**70), 2**70),
    st.integers(-5, 105),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([5.0, 1e300, -0.0, True, "50", None]),
)
DATES = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31", "10000-01-01", "0000-12-31", "2026-02-30", "2026-1-1", "20260101"]),
)


@dataclass(frozen=True)
class Target:
    """A writable field of one of the kinds fuzzed, and how a document holding a value of it is made."""

    entity: str
    field: str
    values: st.SearchStrategy[Any]

    def document(self, id: str, value: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "team_checkin": {"actor_id": "a-1", "team_id": "t-1", "date": "2026-05-22"},
            "goal_story_update": {
                "actor_id": "a-1",
                "goal_story_id": "g-1",
                "date": "2026-05-22",
                "title": "T",
                "content": "C",
            },
            "goal_story": {"title": "G"},
        }[self.entity]
        if self.field.startswith("timeframe."):
            return {"id": id, **base, "timeframe": {"start": "2026-01-01", self.field.split(".")[1]: value}}
        return {"id": id, **base, self.field: value}


TARGETS = [
    Target("team_checkin", "created_at", TIMESTAMPS),
    Target("team_checkin", "date", DATES),
    Target("goal_story_update", "created_at", TIMESTAMPS),
    Target("goal_story_update", "date", DATES),
    Target("goal_story_update", "progress_percent", INTEGERS),
    Target("goal_story", "created_at", TIMESTAMPS),
    Target("goal_story", "timeframe.end", DATES),
]
# What MCP writes: its tools leave created_at out (an agent posts now), and write no goal stories.
MCP_TARGETS = [t for t in TARGETS if t.entity != "goal_story" and t.field != "created_at"]


def _example(targets: list[Target]) -> st.SearchStrategy[tuple[Target, Any]]:
    return st.sampled_from(targets).flatmap(lambda t: st.tuples(st.just(t), t.values))


def accepted(target: Target, document: dict[str, Any]) -> bool:
    """What the write service's validation says of the document."""
    try:
        to_columns(entity_named(target.entity), document, partial=False)
    except DomainError:
        return False
    return True


# ---------------------------------------------------------------- the front ends

_ids = itertools.count()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _wire(document: dict[str, Any]) -> dict[str, Any]:
    return {_camel(k): v for k, v in document.items()}


GRAPHQL_NAMES = {"team_checkin": "TeamCheckin", "goal_story_update": "GoalStoryUpdate", "goal_story": "GoalStory"}
EVENTS = {"team_checkin": True, "goal_story_update": True, "goal_story": False}


async def rest_create(http: httpx.AsyncClient, target: Target, document: dict[str, Any], prefer: str) -> str | None:
    """None when stored, else the refusal's words (every refusal a 4xx)."""
    resource = entity_named(target.entity).resource
    answer = await http.post(f"/{resource}", json=document, headers={"Prefer": prefer})
    if answer.status_code in (200, 201):
        return None
    assert 400 <= answer.status_code < 500, answer.text
    return answer.text


async def graphql_create(http: httpx.AsyncClient, target: Target, document: dict[str, Any]) -> str | None:
    name = GRAPHQL_NAMES[target.entity]
    key = name[0].lower() + name[1:]
    query = f"mutation($i: Create{name}Input!) {{ create{name}(input: $i) {{ {key} {{ id createdAt }} }} }}"
    answer = await http.post("/graphql", json={"query": query, "variables": {"i": _wire(document)}})
    assert answer.status_code < 500, answer.text
    body = answer.json()
    if not body.get("errors"):
        assert RFC3339.match(body["data"][f"create{name}"][key]["createdAt"]), body
        return None
    assert all(e["extensions"]["code"] == "BAD_USER_INPUT" for e in body["errors"]), body
    return " ".join(e["message"] for e in body["errors"])


async def mcp_post(http: httpx.AsyncClient, target: Target, document: dict[str, Any]) -> str | None:
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": f"post_{target.entity}", "arguments": document},
    }
    answer = await http.post("/mcp", json=call, headers={"Accept": "application/json, text/event-stream"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    if "error" in body:  # a malformed call: refused before any tool ran
        return body["error"]["message"]
    result = body["result"]
    return result["content"][0]["text"] if result.get("isError") else None


# ---------------------------------------------------------------- the promise


async def _stored_value(engine: AsyncEngine, target: Target, id: str) -> Any:
    table = entity_named(target.entity).resource
    column = target.field.replace(".", "_")
    async with engine.connect() as conn:
        return await conn.scalar(text(f'SELECT "{column}" FROM {table} WHERE id = :id'), {"id": id})


def _sent(target: Target, document: dict[str, Any]) -> Any:
    return document["timeframe"][target.field.split(".")[1]] if "." in target.field else document[target.field]


def as_graphql_reads(target: Target, document: dict[str, Any]) -> dict[str, Any]:
    """The document as GraphQL's Date and DateTime scalars hand it on (they parse more forms than RFC 3339
    and YYYY-MM-DD, such as 24:00 for the next midnight, or 20260101): what the write service validates."""
    if target.field.startswith("timeframe."):
        part = target.field.split(".")[1]
        parsed = _parsed(dt.date.fromisoformat, document["timeframe"][part])
        return {**document, "timeframe": {**document["timeframe"], part: parsed}}
    parse = {"created_at": dateutil.parser.isoparse, "date": dt.date.fromisoformat}.get(target.field)
    return document if parse is None else {**document, target.field: _parsed(parse, document[target.field])}


def _parsed(parse: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return parse(value)
    except (ValueError, OverflowError):
        return value


def _same(stored: Any, sent: Any) -> bool:
    if isinstance(stored, dt.datetime):
        parsed = sent if isinstance(sent, dt.datetime) else dt.datetime.fromisoformat(sent.replace("Z", "+00:00"))
        return stored == (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))
    if isinstance(stored, dt.date):
        return stored == (sent if isinstance(sent, dt.date) else dt.date.fromisoformat(sent))
    return stored == sent


async def held_to_the_promise(
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    target: Target,
    document: dict[str, Any],
    refusal: str | None,
    *,
    before: dict[str, int],
    must_match_validation: bool = True,
) -> None:
    after = await table_counts(engine)
    changed = {t: after[t] - before[t] for t in after if after[t] != before[t]}
    if refusal is not None:
        assert changed == {}, (document, changed)
        assert not LEAKS.search(refusal), refusal
        if must_match_validation:
            assert not accepted(target, document), ("refused, though valid", document, refusal)
        return
    assert accepted(target, document), ("stored, though invalid", document)
    resource = entity_named(target.entity).resource
    expected = {resource: 1, **({"coordination_events": 1} if EVENTS[target.entity] else {})}
    assert changed == expected, (document, changed)
    assert _same(await _stored_value(engine, target, document["id"]), _sent(target, document)), document
    for zone in ZONES:
        rows = (
            await http.get(
                f"/{resource}?id=eq.{document['id']}&select=created_at", headers={"Prefer": f"timezone={zone}"}
            )
        ).json()
        assert RFC3339.match(rows[0]["created_at"]), (zone, rows)


# ---------------------------------------------------------------- the fuzzers


@pytest_asyncio.fixture(loop_scope="session")
async def seeded(writer: WriteService, server_url: str) -> AsyncIterator[tuple[AsyncEngine, httpx.AsyncClient]]:
    await writer.create("actor", [{"id": "a-1", "actor_type": "agent", "name": "Bot"}])
    await writer.create("team", [{"id": "t-1", "name": "T", "member_ids": ["a-1"]}])
    await writer.create("goal_story", [{"id": "g-1", "title": "G"}])
    async with httpx.AsyncClient(base_url=server_url, timeout=60) as http:
        yield writer.engine, http


@FUZZ
@given(example=_example(TARGETS), prefer=st.sampled_from(["return=minimal", "return=representation"]))
async def test_rest_creates(
    seeded: tuple[AsyncEngine, httpx.AsyncClient], example: tuple[Target, Any], prefer: str
) -> None:
    engine, http = seeded
    target, value = example
    document = target.document(f"f-{next(_ids)}", value)
    before = await table_counts(engine)
    refusal = await rest_create(http, target, document, prefer)
    await held_to_the_promise(engine, http, target, document, refusal, before=before)


@FUZZ
@given(example=_example(TARGETS))
async def test_graphql_creates(seeded: tuple[AsyncEngine, httpx.AsyncClient], example: tuple[Target, Any]) -> None:
    engine, http = seeded
    target, value = example
    document = target.document(f"f-{next(_ids)}", value)
    before = await table_counts(engine)
    refusal = await graphql_create(http, target, document)
    # GraphQL's own scalars (Int is 32-bit; Date and DateTime parse by themselves) may refuse more.
    read = as_graphql_reads(target, document)
    await held_to_the_promise(engine, http, target, read, refusal, before=before, must_match_validation=False)


@FUZZ
@given(example=_example(MCP_TARGETS))
async def test_mcp_posts(seeded: tuple[AsyncEngine, httpx.AsyncClient], example: tuple[Target, Any]) -> None:
    engine, http = seeded
    target, value = example
    document = target.document(f"f-{next(_ids)}", value)
    before = await table_counts(engine)
    refusal = await mcp_post(http, target, document)
    # The tool's input schema (JSON Schema types) may refuse more than the write service does.
    await held_to_the_promise(engine, http, target, document, refusal, before=before, must_match_validation=False)


@FUZZ
@given(example=_example([t for t in TARGETS if not t.field.startswith("timeframe.")]))
async def test_rest_and_graphql_updates(
    seeded: tuple[AsyncEngine, httpx.AsyncClient], example: tuple[Target, Any]
) -> None:
    """A change of one field: stored (with an event where the entity records them) or refused, the row
    as it was."""
    engine, http = seeded
    target, value = example
    id = f"f-{next(_ids)}"
    base = target.document(id, {"created_at": "2026-01-01T00:00:00Z", "date": "2026-05-22"}.get(target.field, 50))
    resource = entity_named(target.entity).resource
    assert (await http.post(f"/{resource}", json=base)).status_code == 201
    name = GRAPHQL_NAMES[target.entity]
    for surface in ("rest", "graphql"):
        before = await table_counts(engine)
        stored_before = await _stored_value(engine, target, id)
        if surface == "rest":
            answer = await http.patch(f"/{resource}?id=eq.{id}", json={target.field: value})
            assert answer.status_code < 500, answer.text
            refusal = None if answer.status_code == 204 else answer.text
        else:
            query = f'mutation($i: Update{name}Input!) {{ update{name}(id: "{id}", input: $i) {{ __typename }} }}'
            body = (
                await http.post("/graphql", json={"query": query, "variables": {"i": {_camel(target.field): value}}})
            ).json()
            refusal = " ".join(e["message"] for e in body["errors"]) if body.get("errors") else None
            value = as_graphql_reads(target, {target.field: value})[target.field]
        after = await table_counts(engine)
        if refusal is not None:
            assert after == before, (surface, value)
            assert await _stored_value(engine, target, id) == stored_before
            assert not LEAKS.search(refusal), refusal
            if surface == "rest":
                assert not accepted(target, target.document(id, value)), ("refused, though valid", value, refusal)
            continue
        assert accepted(target, target.document(id, value)), ("stored, though invalid", value)
        assert _same(await _stored_value(engine, target, id), value), (surface, value)
        events = after["coordination_events"] - before["coordination_events"]
        assert events in ((0, 1) if EVENTS[target.entity] else (0,)), (surface, value, events)
        assert {t for t in after if after[t] != before[t]} <= {"coordination_events"}
