"""The viewer's dashboard (/viewer/dashboard.html) in headless Chromium, against the real app with the demo week.

Every number on it is checked against the database, worked out here from the tables (each member's day
by their own timezone, with zoneinfo), at a desktop's and a phone's width; a check-in posted through REST
changes the heatmap without a reload.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.demo import seed
from api.store.writes import WriteService
from tests.browser import launched, playwright_api
from tests.conftest import RunningServer, emptied

api = playwright_api()

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 20_000
DEMO_DAY = dt.date(2026, 5, 22)  # a Friday
AS_OF = dt.datetime(2026, 5, 22, 17, 0, tzinfo=dt.UTC)
DAYS = 7
TEAM = "demo-t-backend"
STALE_DAYS = 14


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    async with launched() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def server_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    # A server of this module's own, whose live feed has seen no other module's cursors.
    with RunningServer(database_url) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def demo(engine: AsyncEngine) -> AsyncEngine:
    """The demo week ending on a Friday, and a goal gone quiet since April (a stale goal)."""
    await emptied(engine)
    await seed(WriteService(engine), today=DEMO_DAY, now=AS_OF)
    writer = WriteService(engine)
    await writer.create(
        "goal_story",
        [
            {
                "id": "old-goal",
                "title": "Migrate the old billing",
                "team_ids": [TEAM],
                "created_at": "2026-03-02T09:00:00Z",
            }
        ],
    )
    await writer.create(
        "goal_story_update",
        [
            {
                "id": "old-update",
                "actor_id": "demo-p-quinn",
                "goal_story_id": "old-goal",
                "date": "2026-04-20",
                "title": "Stalled",
                "content": "Waiting on finance.",
                "status": "off_track",
                "progress_percent": 20,
            }
        ],
    )
    [team] = await _rows(engine, "SELECT member_ids FROM teams WHERE id = :id", id=TEAM)
    await writer.create(
        "team_checkin",
        [
            {
                "id": "blocked-today",
                "actor_id": team["member_ids"][0],
                "team_id": TEAM,
                "date": DEMO_DAY.isoformat(),
                "blockers": ["the staging database is down"],
                "created_at": "2026-05-22T16:00:00Z",
            }
        ],
    )
    return engine


class Page:
    """One dashboard page, with every console error and uncaught exception it produced."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    async def open(self, server_url: str, live: str = "subscription") -> None:
        query = f"?team={TEAM}&to={DEMO_DAY}&days={DAYS}&asOf={AS_OF.isoformat().replace('+', '%2B')}&live={live}"
        await self.page.goto(f"{server_url}/viewer/dashboard.html{query}")
        await self.page.wait_for_selector("body[data-loaded='true']", timeout=WAIT_MS)


async def _page(browser: Any, viewport: dict[str, int], **options: Any) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=viewport, **options)
    yield Page(await context.new_page())
    await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def desktop(browser: Any) -> AsyncIterator[Page]:
    async for page in _page(browser, DESKTOP):
        yield page


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Any) -> AsyncIterator[Page]:
    async for page in _page(browser, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True):
        yield page


# ---------------------------------------------------------------- the numbers, from the tables


async def _rows(engine: AsyncEngine, sql: str, **values: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(text(sql), values)).mappings()]


async def expected_cells(engine: AsyncEngine, due: set[tuple[str, str]] | None = None) -> dict[tuple[str, str], str]:
    """Each (member, day)'s state: checked, blocked, missing or off (weekends, and days not yet begun);
    the cells where a check-in was due go into `due`."""
    [team] = await _rows(engine, "SELECT member_ids FROM teams WHERE id = :id", id=TEAM)
    zones = {
        r["id"]: r["timezone"]
        for r in await _rows(engine, "SELECT id, timezone FROM actors WHERE id = ANY(:ids)", ids=team["member_ids"])
    }
    checkins = await _rows(
        engine,
        "SELECT actor_id, date, blockers FROM team_checkins WHERE team_id = :id AND date BETWEEN :first AND :last",
        id=TEAM,
        first=DEMO_DAY - dt.timedelta(days=DAYS - 1),
        last=DEMO_DAY,
    )
    cells = {}
    for actor in team["member_ids"]:
        today = AS_OF.astimezone(ZoneInfo(zones[actor] or "UTC")).date()
        for n in range(DAYS):
            day = DEMO_DAY - dt.timedelta(days=DAYS - 1 - n)
            mine = [c for c in checkins if c["actor_id"] == actor and c["date"] == day]
            if day <= today and day.isoweekday() < 6 and due is not None:
                due.add((actor, day.isoformat()))
            if mine:
                cells[actor, day.isoformat()] = "blocked" if any(c["blockers"] for c in mine) else "checked"
            else:
                cells[actor, day.isoformat()] = "missing" if day <= today and day.isoweekday() < 6 else "off"
    return cells


async def expected_statuses(engine: AsyncEngine) -> dict[str, int]:
    rows = await _rows(
        engine,
        """SELECT g.id, (SELECT u.status FROM goal_story_updates u WHERE u.goal_story_id = g.id
                          ORDER BY u.date DESC, u.created_at DESC, u.id DESC LIMIT 1) AS status
           FROM goal_stories g""",
    )
    counts = Counter((r["status"] or "none").upper() for r in rows)
    return {s: counts[s] for s in ("ON_TRACK", "AT_RISK", "OFF_TRACK", "COMPLETED", "PAUSED", "NONE")}


async def expected_stale(engine: AsyncEngine) -> set[str]:
    rows = await _rows(
        engine,
        """SELECT g.id, g.created_at, l.date, l.status FROM goal_stories g
           LEFT JOIN LATERAL (SELECT u.date, u.status FROM goal_story_updates u WHERE u.goal_story_id = g.id
                              ORDER BY u.date DESC, u.created_at DESC, u.id DESC LIMIT 1) l ON true""",
    )
    today = AS_OF.date()
    return {
        r["id"]
        for r in rows
        if r["status"] != "completed"
        and (today - (r["date"] or r["created_at"].astimezone(dt.UTC).date())).days >= STALE_DAYS
    }


async def expected_blockers(engine: AsyncEngine) -> set[str]:
    rows = await _rows(
        engine,
        """SELECT DISTINCT ON (c.actor_id) c.id, c.blockers FROM team_checkins c
           JOIN teams t ON t.id = c.team_id AND c.actor_id = ANY(t.member_ids)
           WHERE c.team_id = :id ORDER BY c.actor_id, c.date DESC, c.created_at DESC, c.id DESC""",
        id=TEAM,
    )
    return {r["id"] for r in rows if r["blockers"]}


async def shown_cells(page: Any) -> dict[tuple[str, str], str]:
    cells = await page.locator("#coverage rect.cell").evaluate_all(
        "rects => rects.map(r => [r.dataset.actor, r.dataset.date, r.dataset.state])"
    )
    return {(actor, day): kind for actor, day, kind in cells}


async def check_numbers(page: Page, engine: AsyncEngine, width: int) -> None:
    due: set[tuple[str, str]] = set()
    cells = await expected_cells(engine, due)
    assert set(cells.values()) >= {"checked", "missing", "off"}
    assert await shown_cells(page.page) == cells
    summary = page.page.locator("#coverage-summary")
    expected_due = len(due)
    checked_due = sum(1 for key in due if cells[key] in ("checked", "blocked"))
    assert (await summary.get_attribute("data-expected"), await summary.get_attribute("data-checked")) == (
        str(expected_due),
        str(checked_due),
    )

    statuses = await expected_statuses(engine)
    bars = await page.page.locator("#goals-by-status rect.bar").evaluate_all(
        "bars => bars.map(b => [b.dataset.status, Number(b.dataset.count)])"
    )
    assert dict(bars) == statuses
    assert await page.page.locator("#goals-by-status .summary").get_attribute("data-total") == str(
        sum(statuses.values())
    )

    stale = await expected_stale(engine)
    assert stale == {"old-goal"}
    shown = await page.page.locator("#stale-goals li[data-id]").evaluate_all("items => items.map(i => i.dataset.id)")
    assert set(shown) == stale

    blockers = await expected_blockers(engine)
    assert blockers
    shown = await page.page.locator("#open-blockers ul.rows > li").evaluate_all("items => items.map(i => i.dataset.id)")
    assert set(shown) == blockers and len(shown) == len(blockers)

    assert await page.page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.problems == []


# ---------------------------------------------------------------- the tests


async def test_the_desktop_dashboard_shows_the_databases_numbers(
    demo: AsyncEngine, server_url: str, desktop: Page, tmp_path: Path
) -> None:
    await desktop.open(server_url)
    await check_numbers(desktop, demo, DESKTOP["width"])
    await desktop.page.wait_for_selector("#live-status[data-state='live']", timeout=WAIT_MS)
    # docs/dashboard.png is refreshed on request only (COCO_UPDATE_SCREENSHOT=1): a test run leaves the tree clean.
    shot = SCREENSHOT if os.environ.get("COCO_UPDATE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    await desktop.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


async def test_the_phone_dashboard_fits_the_screen(
    demo: AsyncEngine, server_url: str, phone: Page, tmp_path: Path
) -> None:
    await phone.open(server_url)
    await check_numbers(phone, demo, PHONE["width"])
    # The heatmap scrolls inside its own box when it is wider than the screen; the page does not. A live
    # event may redraw the chart at any moment (its box is briefly gone), so this waits until the box is
    # there and fits, and fails if it never does.
    fits = """(width) => {
        const box = document.querySelector("#coverage .chart-scroll")?.getBoundingClientRect();
        return box !== undefined && box.width > 0 && box.x >= 0 && box.x + box.width <= width;
    }"""
    await phone.page.wait_for_function(fits, arg=PHONE["width"], timeout=WAIT_MS)
    await phone.page.screenshot(path=str(os.environ.get("COCO_PHONE_SHOT") or tmp_path / "phone.png"), full_page=True)


@pytest.mark.parametrize("transport", ["subscription", "events"])
async def test_a_new_checkin_changes_the_heatmap_without_a_reload(
    demo: AsyncEngine, server_url: str, desktop: Page, transport: str
) -> None:
    await desktop.open(server_url, transport)
    await desktop.page.locator(f"#live-status[data-state='live'][data-transport='{transport}']").wait_for(
        timeout=WAIT_MS
    )
    await desktop.page.evaluate("window.__sameDocument = true")
    cells = await expected_cells(demo)
    actor, day = next(key for key, kind in sorted(cells.items()) if kind == "missing")
    version = await desktop.page.evaluate("document.body.dataset.version")

    async with httpx.AsyncClient(base_url=server_url) as client:
        response = await client.post(
            "/team_checkins",
            json={"actor_id": actor, "team_id": TEAM, "date": day, "blockers": ["waiting on the dashboard"]},
        )
    assert response.status_code == 201, response.text

    cell = desktop.page.locator(f"#coverage rect.cell[data-actor='{actor}'][data-date='{day}']")
    await desktop.page.wait_for_function(
        f"""() => document.querySelector("#coverage rect.cell[data-actor='{actor}'][data-date='{day}']")
                  ?.dataset.state === 'blocked'""",
        timeout=WAIT_MS,
    )
    assert await cell.get_attribute("data-state") == "blocked"
    assert await desktop.page.evaluate("document.body.dataset.version") != version
    assert await desktop.page.evaluate("window.__sameDocument") is True
    # Everything else still matches the database, the new check-in included.
    await check_numbers(desktop, demo, DESKTOP["width"])
