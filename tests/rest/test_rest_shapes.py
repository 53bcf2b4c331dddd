"""GETs of a known shape (api/rest/repeated.py) answer exactly what planning each request answers.

Each URL pattern is sent with several sets of values to a server that keeps shapes (the first
request of a shape is planned, the later ones fill its slots) and to one that plans every request
(COCO_REST_SHAPES=false); status, body and headers must be the same, bad values included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.conftest import RunningServer

PATTERNS: list[tuple[str, list[tuple[str, ...]]]] = [
    ("/actors?id=eq.{}", [("p-1",), ("p-2",), ("nobody",), ("",), ("a-1",)]),
    ("/actors?id=neq.{}&select=id,name&order=name.desc", [("p-1",), ("a-1",)]),
    ("/actors?name=eq.{}", [("Quinn Reed",), ("Ada, (Lovelace)",), ('"quoted"',), ("é ✓ 名前",), ("*",)]),
    (
        "/team_checkins?team_id=eq.{}&date=gte.{}&order=date.desc&limit=2",
        [("t-1", "2026-05-01"), ("t-2", "2026-05-22"), ("t-1", "2026-05-19"), ("t-1", "not-a-date")],
    ),
    ("/team_checkins?actor_id=not.eq.{}&limit=2&offset=1&order=id", [("p-1",), ("a-1",), ("x",)]),
    (
        "/team_checkins?date=gt.{}&date=lte.{}&select=id,date",
        [("2026-05-18", "2026-05-22"), ("2026-01-01", "2026-05-19")],
    ),
    ("/goal_stories?id=eq.{}&select=id,title,goal_story_updates(id,status)", [("g-1",), ("g-2",), ("g-3",)]),
    (
        "/goal_stories?select=id,goal_story_updates(status)&goal_story_updates.status=eq.{}",
        [("at_risk",), ("on_track",), ("off_track",), ("no-such-status",)],
    ),
    (
        "/goal_story_updates?progress_percent=gte.{}&select=id,progress_percent&order=id",
        [("10",), ("30",), ("eleven",), ("2147483648",)],
    ),
    ("/goal_stories?timeframe->>start=lt.{}&select=id&order=id", [("2026-01-10",), ("2026-02-15",)]),
    (
        "/coordination_events?event_type=eq.{}&select=event_type,reference_id&order=reference_id",
        [("team_checkin",), ("goal_story_update",), ("nonsense",)],
    ),
    ("/actors?select=id&order=id&nme=eq.{}", [("x",), ("y",)]),
    # Aggregates and spreads: the filters' values fill the slots of grouped and spread levels too (groups are
    # ordered: without an order, their order is PostgreSQL's to choose, as in PostgREST).
    (
        "/goal_story_updates?select=status,count(),progress_percent.avg(),last:date.max()&goal_story_id=eq.{}"
        "&order=status",
        [("g-1",), ("g-2",), ("g-3",), ("",)],
    ),
    ("/goal_story_updates?select=progress_percent.sum()&date=gte.{}", [("2026-05-12",), ("2026-01-01",), ("x",)]),
    (
        "/goal_stories?select=id,...goal_story_updates(status,progress_percent)&goal_story_updates.status=eq.{}"
        "&order=id&goal_story_updates.order=id",
        [("at_risk",), ("on_track",), ("nope",)],
    ),
    (
        "/goal_story_updates?select=date,...actor(name.max(),n:count())&progress_percent=gte.{}&actor.role=neq.{}"
        "&order=date",
        [("10", "Engineer"), ("30", "Product Manager"), ("eleven", "x")],
    ),
    ("/goal_stories?select=id,goal_story_updates(count())&id=neq.{}&order=id", [("g-1",), ("g-3",)]),
    ("/actors?limit=1&order=id", [(), ()]),
]
HEADERS = ("content-type", "content-range", "content-location", "preference-applied", "vary")


@pytest.fixture(scope="module")
def shaped_and_planned(database_url: str, engine: Any) -> Iterator[tuple[str, str, Any]]:
    """A server that keeps shapes and one that plans every request: their URLs, and the first's app."""
    keeping = RunningServer(database_url)
    with keeping as shaped, RunningServer(database_url, rest_shapes=False) as planned:
        yield shaped, planned, keeping.app


def _answer(response: httpx.Response) -> tuple[int, str, dict[str, str | None]]:
    return response.status_code, response.text, {h: response.headers.get(h) for h in HEADERS}


async def test_known_shapes_answer_as_planning_does(
    world: dict[str, Any], shaped_and_planned: tuple[str, str, Any]
) -> None:
    shaped_url, planned_url, app = shaped_and_planned
    statuses = set()
    async with (
        httpx.AsyncClient(base_url=shaped_url, timeout=30) as shaped,
        httpx.AsyncClient(base_url=planned_url, timeout=30) as planned,
    ):
        for pattern, value_sets in PATTERNS:
            for _ in range(2):  # the second round runs every value set from the known shape
                for values in value_sets:
                    url = pattern.format(*(quote(v, safe="") for v in values))
                    expected = _answer(await planned.get(url))
                    statuses.add(expected[0])
                    assert _answer(await shaped.get(url)) == expected, url
                    assert _answer(await shaped.get(url, headers={"Accept": "application/json"})) == expected, url
    # Bad values were among them (refused as planning refuses them: 400, never 500).
    assert 400 in statuses and 500 not in statuses
    # And the shapes were kept: the comparison was not between two planned answers.
    [known] = app.state.caches.named("rest_shapes")
    kept = [key for key, shape in known.items() if shape is not None]
    assert len(kept) >= len(PATTERNS) - 1, [key for key, shape in known.items() if shape is None]
    # Every aggregate or spread pattern among them.
    kept_selects = {name_value[1] for key in kept for name_value in key[-1] if name_value[0] == "select"}
    for pattern, _ in PATTERNS:
        chosen = parse_qs(urlsplit(pattern).query).get("select", [""])[0]
        if "()" in chosen or "..." in chosen:
            assert chosen in kept_selects, pattern


async def test_requests_that_could_mislead_a_shape_are_answered_as_planning_does(
    world: dict[str, Any], shaped_and_planned: tuple[str, str, Any]
) -> None:
    shaped_url, planned_url, _ = shaped_and_planned
    # A client's own text in the marker characters (in a reserved parameter here), and two Accept headers.
    marked = "/actors?id=eq.{}&or=(name.eq.%EE%80%800%EE%80%81,role.eq.Engineer)"
    accepts = [("Accept", "text/csv"), ("Accept", "application/json")]
    async with (
        httpx.AsyncClient(base_url=shaped_url, timeout=30) as shaped,
        httpx.AsyncClient(base_url=planned_url, timeout=30) as planned,
    ):
        for _ in range(2):
            for id in ("p-1", "p-2", "Ada Lovelace"):
                url = marked.format(quote(id, safe=""))
                assert _answer(await shaped.get(url)) == _answer(await planned.get(url)), url
            for id in ("p-1", "p-2"):
                url = f"/actors?id=eq.{id}"
                expected = _answer(await planned.get(url, headers=accepts))
                assert expected[2]["content-type"].startswith("text/csv")
                assert _answer(await shaped.get(url, headers=accepts)) == expected
