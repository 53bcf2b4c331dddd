"""Headless Chromium for the browser tests: the system's (Debian's `chromium`), never a downloaded one.

Outside CI a module that needs it skips when there is no Chromium or no Playwright; in CI it fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = os.environ.get("COCO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def playwright_api() -> Any:
    """`playwright.async_api`, or a skip (a failure in CI) when it or Chromium is missing."""
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}: install Debian's chromium package to run the browser tests"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)
    if IN_CI:
        import playwright.async_api

        return playwright.async_api
    return pytest.importorskip("playwright.async_api", reason="playwright is not installed (pip install -e '.[test]')")


@asynccontextmanager
async def launched() -> AsyncIterator[Any]:
    """Headless Chromium (the system's), closed at the end of the block."""
    async with playwright_api().async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
