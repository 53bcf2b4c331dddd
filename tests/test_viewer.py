"""The viewer at /viewer/ in headless Chromium, against the real app over real HTTP with the demo data.

Chromium is the system's (Debian's `chromium` package, which `.ci/run` installs); Playwright never
downloads a browser here. Outside CI the module skips when there is no Chromium; in CI it fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.demo import seed
from api.store.writes import WriteService
from tests.browser import launched, playwright_api
from tests.conftest import RunningServer, count_rows, emptied

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "viewer.png"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TABLES_SHOWN = {
    "actors": "actors",
    "teams": "teams",
    "team-checkins": "team_checkins",
    "goal-stories": "goal_stories",
    "goal-story-updates": "goal_story_updates",
    "coordination-events": "coordination_events",
}
WAIT_MS = 20_000
DEMO_DAY = dt.date(2026, 5, 22)

# Playwright's types, or a skip (a failure in CI) when it or Chromium is missing.
async_api = playwright_api()
Browser, ConsoleMessage, Page, WebSocketRoute = (
    async_api.Browser,
    async_api.ConsoleMessage,
    async_api.Page,
    async_api.WebSocketRoute,
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with launched() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def server_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    """The app of this module's own: the session's server may have seen the event cursor move backwards
    (the benchmark's seed in tests/test_bench_harness.py restarts it at 1), after which its live feed
    skips new events as already delivered."""
    with RunningServer(database_url) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def demo(engine: AsyncEngine) -> AsyncEngine:
    """Only the demo organisation and its week, ending on a fixed Friday (the screenshot stays the same)."""
    await emptied(engine)
    await seed(WriteService(engine), today=DEMO_DAY, now=dt.datetime.combine(DEMO_DAY, dt.time(17), dt.UTC))
    return engine


class Viewer:
    """One page of the viewer, with every console error and uncaught exception it produced."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    async def open(self, server_url: str, query: str = "") -> None:
        await self.page.goto(f"{server_url}/viewer/{query}")
        await self.page.wait_for_selector("body[data-loaded='true']", timeout=WAIT_MS)

    async def texts(self, selector: str) -> list[str]:
        return [t.strip() for t in await self.page.locator(selector).all_inner_texts()]


@pytest_asyncio.fixture(loop_scope="session")
async def desktop(browser: Browser) -> AsyncIterator[Viewer]:
    context = await browser.new_context(viewport=DESKTOP)
    viewer = Viewer(await context.new_page())
    yield viewer
    await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Browser) -> AsyncIterator[Viewer]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    viewer = Viewer(await context.new_page())
    yield viewer
    await context.close()


async def graphql(server_url: str, query: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server_url) as client:
        response = await client.post("/graphql", json={"query": query})
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def expected_goal_tree(server_url: str) -> dict[str, Any]:
    data = await graphql(
        server_url,
        """{ goalStories(first: 100, where: { parentId: { isNull: true } }) {
        nodes { id title latestUpdate { status progressPercent }
                children(first: 100) { nodes { title latestUpdate { status progressPercent } } } } } }""",
    )
    [root] = [g for g in data["goalStories"]["nodes"] if g["title"] == "Launch PSC 2.0"]
    return root


async def post_checkin(server_url: str, actor_id: str, team_id: str, day: str, blockers: list[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server_url) as client:
        response = await client.post(
            "/team_checkins",
            headers={"Prefer": "return=representation"},
            json={
                "actor_id": actor_id,
                "team_id": team_id,
                "date": day,
                "previously": ["wrote the viewer test"],
                "blockers": blockers,
            },
        )
    assert response.status_code == 201, response.text
    [checkin] = response.json()
    return checkin


def shown_status(update: dict[str, Any] | None) -> str:
    return update["status"].replace("_", " ").capitalize() if update and update["status"] else "No status"


async def check_tables(viewer: Viewer, engine: AsyncEngine) -> None:
    for section, table in TABLES_SHOWN.items():
        rows = viewer.page.locator(f"#{section} tbody tr")
        expected = await count_rows(engine, table)
        assert expected > 0, table
        assert await rows.count() == expected, section
        await rows.first.wait_for(state="visible")
        assert (await viewer.page.locator(f"#{section} caption").inner_text()).endswith(f"({expected})")


async def check_goal_tree(viewer: Viewer, server_url: str) -> None:
    root = await expected_goal_tree(server_url)
    assert len(root["children"]["nodes"]) == 3
    tree = viewer.page.locator("#goals ul.tree.root > li").filter(
        has=viewer.page.get_by_role("heading", name="Launch PSC 2.0", exact=True)
    )
    assert await tree.count() == 1
    subgoals = tree.locator(":scope > ul.tree > li")
    assert await subgoals.count() == 3
    shown = {}
    for index in range(3):
        node = subgoals.nth(index).locator(":scope > .goal")
        shown[(await node.locator(".goal-title").inner_text()).strip()] = (
            (await node.locator(".badge").inner_text()).strip(),
            (await node.locator(".progress").inner_text()).strip(),
        )
    expected = {}
    for child in root["children"]["nodes"]:
        update = child["latestUpdate"]
        assert update is not None, child  # every demo goal has an update from its owner
        progress = f"{update['progressPercent']}%" if update["progressPercent"] is not None else "No progress reported"
        expected[child["title"]] = (shown_status(update), progress)
    assert shown == expected


async def test_an_empty_database_shows_empty_states(clean: AsyncEngine, server_url: str, desktop: Viewer) -> None:
    await desktop.open(server_url)

    for section in ("goals", *TABLES_SHOWN):
        state = desktop.page.locator(f"#{section} .state")
        assert await state.get_attribute("data-state") == "empty", section
        assert (await state.inner_text()).startswith("No "), section
        assert await desktop.page.locator(f"#{section} tbody tr").count() == 0
    assert await desktop.page.locator("#team-select").is_disabled()
    assert desktop.problems == []


async def test_the_desktop_viewer_shows_every_table_and_the_goal_tree(
    demo: AsyncEngine, server_url: str, desktop: Viewer, tmp_path: Path
) -> None:
    await desktop.open(server_url)

    await check_tables(desktop, demo)
    await check_goal_tree(desktop, server_url)
    # Each team's week, by day, with its blockers marked: every blocked check-in, across the teams.
    blocked_total = 0
    options = desktop.page.locator("#team-select option")
    for index in range(await options.count()):
        await desktop.page.locator("#team-select").select_option(index=index)
        assert await desktop.page.locator("#checkins-by-day article.day").count() >= 1
        blocked = desktop.page.locator("#checkins-by-day .card.blocked")
        for card in range(await blocked.count()):
            assert await blocked.nth(card).locator(".blockers h5").text_content() == "Blockers"
        blocked_total += await blocked.count()
    async with demo.connect() as conn:
        expected_blocked = (
            await conn.execute(text("SELECT count(*) FROM team_checkins WHERE cardinality(blockers) > 0"))
        ).scalar_one()
    assert blocked_total == expected_blocked > 0
    await desktop.page.locator("#team-select").select_option(index=0)
    headings = await desktop.texts("h1, h2")
    assert headings[0] == "CoCo viewer" and "Goals" in headings and "Coordination events" in headings
    assert await desktop.page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    await desktop.page.wait_for_selector("#live-status[data-state='live']", timeout=WAIT_MS)

    # docs/viewer.png is refreshed on request only (COCO_UPDATE_SCREENSHOT=1): a test run leaves the tree clean.
    shot = SCREENSHOT if os.environ.get("COCO_UPDATE_SCREENSHOT") == "1" else tmp_path / "viewer.png"
    await desktop.page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    await desktop.page.locator("#goal-story-updates").screenshot(path=str(tmp_path / "desktop-table.png"))
    assert desktop.problems == []


async def test_the_phone_viewer_fits_the_screen(
    demo: AsyncEngine, server_url: str, phone: Viewer, tmp_path: Path
) -> None:
    await phone.open(server_url)

    await check_tables(phone, demo)
    await check_goal_tree(phone, server_url)
    assert await phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Tables become cards: no header row on screen, each cell labelled by its column.
    first_cell = phone.page.locator("#actors tbody tr").first.locator("td").first
    label = await first_cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Name"'
    await phone.page.screenshot(path=str(tmp_path / "phone.png"))
    await phone.page.locator("#checkins-by-day").screenshot(path=str(tmp_path / "phone-days.png"))
    await phone.page.locator("#team-checkins tbody tr").first.screenshot(path=str(tmp_path / "phone-card.png"))
    assert phone.problems == []


@pytest.mark.parametrize("transport", ["subscription", "events"])
async def test_a_checkin_posted_through_rest_appears_without_a_reload(
    demo: AsyncEngine, server_url: str, desktop: Viewer, transport: str
) -> None:
    # By default the GraphQL subscription over WebSocket; ?live=events reads the server-sent event feed.
    await desktop.open(server_url, "" if transport == "subscription" else "?live=events")
    status = desktop.page.locator(f"#live-status[data-state='live'][data-transport='{transport}']")
    await status.wait_for(timeout=WAIT_MS)
    await desktop.page.evaluate("window.__sameDocument = true")
    team_id = await desktop.page.locator("#team-select").input_value()
    team = (await graphql(server_url, f'{{ team(id: "{team_id}") {{ memberIds }} }}'))["team"]
    before = await desktop.page.locator("#team-checkins tbody tr").count()
    day = (DEMO_DAY - dt.timedelta(days=10)).isoformat()  # before the demo week: a day of its own

    checkin = await post_checkin(server_url, team["memberIds"][0], team_id, day, ["waiting on the live feed"])

    card = desktop.page.locator(f"#checkins-by-day [data-checkin-id='{checkin['id']}']")
    await card.wait_for(timeout=WAIT_MS)
    assert "blocked" in (await card.get_attribute("class") or "")
    assert "waiting on the live feed" in await card.locator(".blockers").inner_text()
    assert await desktop.page.locator(f"#checkins-by-day article.day[data-date='{day}']").count() == 1
    await desktop.page.locator(f"#team-checkins tbody tr[data-id='{checkin['id']}']").wait_for(timeout=WAIT_MS)
    assert await desktop.page.locator("#team-checkins tbody tr").count() == before + 1
    await desktop.page.locator("#coordination-events tbody tr").filter(has_text=checkin["id"]).wait_for(timeout=WAIT_MS)
    assert await desktop.page.evaluate("window.__sameDocument") is True
    assert desktop.problems == []


async def test_an_unreachable_api_shows_error_states(demo: AsyncEngine, server_url: str, browser: Browser) -> None:
    # The browser itself refuses the GraphQL requests: a network outage as the page sees it.
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await page.route("**/graphql", lambda route: route.abort("connectionrefused"))
        viewer = Viewer(page)
        await viewer.open(server_url)

        for section in TABLES_SHOWN:
            state = page.locator(f"#{section} .state")
            assert await state.get_attribute("data-state") == "error", section
            assert await state.get_attribute("role") == "alert", section
            assert "could not be reached" in await state.inner_text(), section
            assert await page.locator(f"#{section} tbody tr").count() == 0
        assert await page.locator("#goals .state").get_attribute("data-state") == "error"
        assert await page.locator("#checkins-by-day .state").get_attribute("data-state") == "error"
    finally:
        await context.close()


async def test_a_dropped_subscription_reconnects_and_resumes_after_the_last_cursor(
    demo: AsyncEngine, server_url: str, desktop: Viewer
) -> None:
    # Every WebSocket of the page goes through to the real server; the test sees what the page sends
    # and can cut a connection, as a network drop would.
    connections: list[tuple[WebSocketRoute, WebSocketRoute, list[dict[str, Any]]]] = []

    def through(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        sent: list[dict[str, Any]] = []

        def forward(message: str | bytes) -> None:
            sent.append(json.loads(message))
            server_side.send(message)

        page_side.on_message(forward)
        connections.append((page_side, server_side, sent))

    await desktop.page.route_web_socket(re.compile(r"/graphql$"), through)
    await desktop.open(server_url)
    await desktop.page.locator("#live-status[data-state='live'][data-transport='subscription']").wait_for(
        timeout=WAIT_MS
    )
    team_id = await desktop.page.locator("#team-select").input_value()
    team = (await graphql(server_url, f'{{ team(id: "{team_id}") {{ memberIds }} }}'))["team"]
    before = await desktop.page.locator("#team-checkins tbody tr").count()
    day = (DEMO_DAY - dt.timedelta(days=12)).isoformat()

    first = await post_checkin(server_url, team["memberIds"][0], team_id, day, [])
    await desktop.page.locator(f"#checkins-by-day [data-checkin-id='{first['id']}']").wait_for(timeout=WAIT_MS)
    [(page_side, server_side, _)] = connections
    await server_side.close(code=1001, reason="going away")
    await page_side.close(code=1001, reason="going away")
    second = await post_checkin(server_url, team["memberIds"][-1], team_id, day, ["the network dropped"])

    await desktop.page.locator(f"#checkins-by-day [data-checkin-id='{second['id']}']").wait_for(timeout=WAIT_MS)
    await desktop.page.locator("#live-status[data-state='live']").wait_for(timeout=WAIT_MS)
    assert len(connections) == 2
    [subscribe] = [frame for frame in connections[1][2] if frame["type"] == "subscribe"]
    events = await graphql(
        server_url,
        f"""{{ coordinationEvents(first: 1, where: {{ referenceId: {{ eq: "{first["id"]}" }} }})
        {{ nodes {{ cursor }} }} }}""",
    )
    assert subscribe["payload"]["variables"]["after"] == events["coordinationEvents"]["nodes"][0]["cursor"]
    assert [frame["type"] for frame in connections[0][2]][:2] == ["connection_init", "subscribe"]
    await desktop.page.locator(f"#team-checkins tbody tr[data-id='{second['id']}']").wait_for(timeout=WAIT_MS)
    assert await desktop.page.locator("#team-checkins tbody tr").count() == before + 2
    assert desktop.problems == []
