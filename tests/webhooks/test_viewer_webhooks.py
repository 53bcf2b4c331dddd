"""The viewer's webhooks section in headless Chromium, with an admin token, against a server delivering to
a real local receiver: a delivery appears in the log without a reload, and a failing one shows its error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser import launched, playwright_api
from tests.conftest import RunningServer
from tests.hardening.conftest import SECRET, signed

from .conftest import Admin, Receiver, checkins

async_api = playwright_api()

ADMIN_TOKEN = "viewer-admin-token-0123456789"
WAIT_MS = 30_000


async def test_the_viewer_shows_webhooks_and_their_deliveries(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine, receiver: Receiver, tmp_path: Path
) -> None:
    with served(tokens=f"admin:{ADMIN_TOKEN}", jwt_secret=SECRET) as base:
        async with Admin(base, ADMIN_TOKEN) as admin:
            for hook in (await admin("{ webhooks { id } }"))["webhooks"]:
                await admin("mutation($id: ID!) { deleteWebhook(id: $id) { deletedId } }", {"id": hook["id"]})
            hook = await admin.create(receiver.url, description="team chat", teamIds=["t-1"])
            # Nothing listens on port 1: every attempt is refused, until the schedule runs out.
            dead = await admin.create("http://127.0.0.1:1/hook", description="gone")

        async with launched() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            await page.goto(f"{base}/viewer/?token={ADMIN_TOKEN}#webhooks")
            await page.wait_for_selector("body[data-loaded='true']", timeout=WAIT_MS)

            shown = page.locator(f"#webhooks article[data-webhook-id='{hook['id']}']")
            await shown.wait_for(timeout=WAIT_MS)
            assert receiver.url in await shown.locator(".webhook-url").inner_text()
            assert "team chat" in await shown.inner_text()
            assert "Backend" in await shown.locator(".facts").inner_text()  # t-1 by its name
            assert "No delivery attempts yet." in await shown.inner_text()

            [cursor] = await checkins(hooks_engine, 1, team="t-1")
            [received] = await asyncio.to_thread(receiver.wait_for, 1)

            # The page re-reads the log by itself: the delivery appears without a reload.
            row = shown.locator("tbody tr")
            await row.first.wait_for(timeout=WAIT_MS)
            cells = [c.strip() for c in await row.first.locator("td").all_inner_texts()]
            labels = [c.strip() for c in await shown.locator("thead th").all_inner_texts()]
            assert labels == ["Attempted", "Event", "Attempt", "Status", "Latency", "Error"]
            assert cells[1] == f"{received.id} cursor {cursor}"
            assert cells[2:4] == ["1", "Delivered 200"]
            assert cells[4].endswith(" ms") and cells[5] == ""

            failing = page.locator(f"#webhooks article[data-webhook-id='{dead['id']}']")
            await failing.locator("tbody tr").first.wait_for(timeout=WAIT_MS)
            first = [c.strip() for c in await failing.locator("tbody tr").first.locator("td").all_inner_texts()]
            assert first[3] == "Failed (no answer)"
            assert first[5], "a failed attempt shows its error"
            await page.screenshot(path=str(tmp_path / "webhooks.png"), full_page=True)
            assert problems == [], problems

            # A token that is not an admin's sees why there is nothing.
            await page.goto(f"{base}/viewer/?token={signed({'role': 'write'})}")
            await page.wait_for_selector("body[data-loaded='true']", timeout=WAIT_MS)
            state = page.locator("#webhooks .state")
            assert await state.get_attribute("data-access") == "scope"
            assert "need an admin token" in await state.inner_text()
            assert await page.locator("#webhooks article").count() == 0
