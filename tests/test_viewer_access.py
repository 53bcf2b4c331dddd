"""The viewer in headless Chromium against a server with access control on: it says when the token is
missing, expired or short of the read scope, and with a token (from its field or a ?token= link, kept in
the tab's sessionStorage and never in the address bar) shows the data and its live updates."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.demo import seed
from api.store.writes import WriteService
from tests.browser import launched, playwright_api
from tests.conftest import RunningServer, count_rows
from tests.hardening.conftest import SECRET, signed

async_api = playwright_api()

WAIT_MS = 20_000
DEMO_DAY = dt.date(2026, 5, 22)
# Tokens are signed when a test runs (they live ten minutes; a whole suite runs longer than that).
HOUR_AGO = -3600
SECTIONS = ("goals", "checkins-by-day", "actors", "teams", "team-checkins", "goal-stories", "goal-story-updates")
TABLES_SHOWN = {"actors": "actors", "teams": "teams", "team-checkins": "team_checkins"}


@pytest.fixture(scope="module")
def secured_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    """A server of this module's own with access control on: JWTs signed with SECRET, no anonymous reads."""
    with RunningServer(database_url, jwt_secret=SECRET) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def demo(clean: AsyncEngine) -> AsyncEngine:
    await seed(WriteService(clean), today=DEMO_DAY, now=dt.datetime.combine(DEMO_DAY, dt.time(17), dt.UTC))
    return clean


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    async with launched() as chromium:
        yield chromium


class Viewer:
    """A page of the viewer, with the console errors and uncaught exceptions it produced."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    async def open(self, url: str) -> None:
        await self.page.goto(url)
        await self.loaded()

    async def loaded(self) -> None:
        await self.page.wait_for_selector("body[data-loaded='true']", timeout=WAIT_MS)

    async def access(self) -> tuple[str, str]:
        status = self.page.locator("#access-status")
        return await status.get_attribute("data-problem") or "", (await status.text_content() or "").strip()

    async def stored_token(self) -> str | None:
        return await self.page.evaluate("() => sessionStorage.getItem('coco.token')")

    def refusals_only(self, status: int) -> bool:
        """Every console error is the browser's note of a refused request (the page itself raised none)."""
        return all(p.startswith("console: Failed to load resource") and str(status) in p for p in self.problems)


@pytest_asyncio.fixture(loop_scope="session")
async def viewer(browser: Any) -> AsyncIterator[Viewer]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield Viewer(await context.new_page())
    finally:
        await context.close()


async def refused_everywhere(viewer: Viewer, kind: str) -> None:
    for section in SECTIONS:
        state = viewer.page.locator(f"#{section} .state")
        assert await state.get_attribute("data-state") == "error", section
        assert await state.get_attribute("data-access") == kind, section
    assert await viewer.page.locator("tbody tr").count() == 0
    assert await viewer.page.locator("#live-status").get_attribute("data-state") == "error"
    assert await viewer.page.locator("#webhooks .state").get_attribute("data-access") == kind


async def test_without_a_token_the_viewer_says_one_is_missing(
    demo: AsyncEngine, secured_url: str, viewer: Viewer
) -> None:
    await viewer.open(f"{secured_url}/viewer/")

    problem, text = await viewer.access()
    assert problem == "missing"
    assert text.startswith("No access token: this server needs one."), text
    assert await viewer.page.locator("#access-status").get_attribute("role") == "alert"
    await refused_everywhere(viewer, "missing")
    assert "No access token" in await viewer.page.locator("#actors .state").inner_text()
    assert viewer.problems and viewer.refusals_only(401), viewer.problems


@pytest.mark.parametrize("transport", ["subscription", "events"])
async def test_a_token_from_the_field_shows_the_data_and_live_updates(
    demo: AsyncEngine, secured_url: str, viewer: Viewer, transport: str
) -> None:
    query = "" if transport == "subscription" else "?live=events"
    await viewer.open(f"{secured_url}/viewer/{query}")
    assert (await viewer.access())[0] == "missing"
    viewer.problems.clear()

    read, write = signed({"role": "read"}), signed({"role": "write"})
    await viewer.page.locator("#token-input").fill(read)
    async with viewer.page.expect_navigation():
        await viewer.page.get_by_role("button", name="Use token").click()
    await viewer.loaded()

    assert await viewer.access() == ("none", "Using the access token entered in this tab.")
    assert await viewer.stored_token() == read
    assert "token" not in viewer.page.url
    for section, table in TABLES_SHOWN.items():
        assert await viewer.page.locator(f"#{section} tbody tr").count() == await count_rows(demo, table), section
    # Not an admin: the webhooks section says what it needs.
    webhooks = viewer.page.locator("#webhooks .state")
    assert await webhooks.get_attribute("data-access") == "scope"
    assert await webhooks.inner_text() == "Webhooks need an admin token: this token does not grant the admin scope."

    await viewer.page.locator(f"#live-status[data-state='live'][data-transport='{transport}']").wait_for(
        timeout=WAIT_MS
    )
    team_id = await viewer.page.locator("#team-select").input_value()
    async with httpx.AsyncClient(base_url=secured_url, headers={"Authorization": f"Bearer {write}"}) as client:
        team = (await client.get(f"/teams?id=eq.{team_id}")).json()[0]
        posted = await client.post(
            "/team_checkins",
            headers={"Prefer": "return=representation"},
            json={"actor_id": team["member_ids"][0], "team_id": team_id, "date": "2026-05-01", "blockers": ["auth"]},
        )
    assert posted.status_code == 201, posted.text
    [checkin] = posted.json()
    await viewer.page.locator(f"#checkins-by-day [data-checkin-id='{checkin['id']}']").wait_for(timeout=WAIT_MS)
    await viewer.page.locator(f"#team-checkins tbody tr[data-id='{checkin['id']}']").wait_for(timeout=WAIT_MS)
    assert viewer.problems == []

    # Forgotten, the token is gone from the tab, and the page says one is missing again.
    async with viewer.page.expect_navigation():
        await viewer.page.get_by_role("button", name="Forget token").click()
    await viewer.loaded()
    assert await viewer.stored_token() is None
    assert (await viewer.access())[0] == "missing"


async def test_a_token_in_the_link_is_kept_for_the_tab_and_taken_out_of_the_address(
    demo: AsyncEngine, secured_url: str, viewer: Viewer
) -> None:
    read = signed({"role": "read"})
    await viewer.open(f"{secured_url}/viewer/?live=events&token={read}#actors")

    assert viewer.page.url == f"{secured_url}/viewer/?live=events#actors"
    assert await viewer.stored_token() == read
    assert (await viewer.access())[0] == "none"
    assert await viewer.page.locator("#actors tbody tr").count() == await count_rows(demo, "actors")
    # Kept for the tab: a reload (which has no token to read in the address) shows the data again.
    await viewer.page.reload()
    await viewer.loaded()
    assert await viewer.page.locator("#actors tbody tr").count() == await count_rows(demo, "actors")
    assert viewer.problems == []
    # Nor is the address that held it left in the history: going back leaves the viewer.
    await viewer.page.go_back()
    assert viewer.page.url == "about:blank"


@pytest.mark.parametrize(
    ("claims", "secret", "kind", "says"),
    [
        ({"role": "read", "exp": HOUR_AGO}, SECRET, "expired", "The access token has expired."),
        ({"scope": "profile email"}, SECRET, "scope", "The access token does not grant the read scope"),
        ({"role": "read"}, "another-secret-of-at-least-32-characters", "invalid", "did not accept"),
    ],
    ids=["expired", "no read scope", "wrong key"],
)
async def test_a_refused_token_says_why(
    demo: AsyncEngine, secured_url: str, viewer: Viewer, claims: dict[str, Any], secret: str, kind: str, says: str
) -> None:
    if "exp" in claims:
        claims = {**claims, "exp": int(time.time()) + claims["exp"]}
    token = signed(claims, secret)
    await viewer.open(f"{secured_url}/viewer/?token={token}")

    problem, text = await viewer.access()
    assert problem == kind and says in text, (problem, text)
    assert "Enter" in text
    await refused_everywhere(viewer, kind)
    assert viewer.problems and viewer.refusals_only(403 if kind == "scope" else 401), viewer.problems


async def test_a_token_that_expires_while_the_page_is_open_is_called_expired(
    demo: AsyncEngine, database_url: str, viewer: Viewer
) -> None:
    # No leeway, and a token that lives a few seconds: long enough to load the page and subscribe.
    with RunningServer(database_url, jwt_secret=SECRET, jwt_leeway_s=0) as url:
        short = signed({"role": "read", "exp": int(time.time()) + 6})
        await viewer.open(f"{url}/viewer/?token={short}")
        assert (await viewer.access())[0] == "none"
        await viewer.page.locator("#live-status[data-state='live']").wait_for(timeout=WAIT_MS)
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {short}"}) as client:
            deadline = time.monotonic() + 30
            while (await client.post("/graphql", json={"query": "{ __typename }"})).status_code != 401:
                assert time.monotonic() < deadline, "the token never expired"
                await asyncio.sleep(0.2)
        # The subscription, authenticated when it opened, still brings the event; the lists it changes are
        # read again with the token, which has expired since.
        team_id = await viewer.page.locator("#team-select").input_value()
        write = signed({"role": "write"})
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {write}"}) as client:
            team = (await client.get(f"/teams?id=eq.{team_id}")).json()[0]
            posted = await client.post(
                "/team_checkins",
                json={"actor_id": team["member_ids"][0], "team_id": team_id, "date": "2026-05-02"},
            )
        assert posted.status_code == 201, posted.text
        await viewer.page.locator("#access-status[data-problem='expired']").wait_for(timeout=WAIT_MS)
        assert (await viewer.access())[1] == "The access token has expired. Enter a new one above."
        # What was shown stays, under the reason it is no longer refreshed.
        state = viewer.page.locator("#team-checkins .state")
        assert await state.get_attribute("data-state") == "error"
        assert "expired" in await state.inner_text()
        assert (
            await viewer.page.locator("#team-checkins tbody tr").count() == await count_rows(demo, "team_checkins") - 1
        )
