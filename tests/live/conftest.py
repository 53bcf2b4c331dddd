"""The live feed in process, and two real server processes on the session database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from api.live import LiveFeed
from api.store import Reader

from .servers import ServerProcess


@pytest.fixture(scope="session")
def live_servers(database_url: str, engine: AsyncEngine) -> Iterator[tuple[str, str]]:
    """Base URLs of two server processes on one database (keep-alive every second)."""
    servers = [ServerProcess(database_url, COCO_SSE_KEEPALIVE_S="1") for _ in range(2)]
    try:
        for server in servers:
            server.start()
        yield servers[0].url, servers[1].url
    finally:
        for server in servers:
            server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def feed(database_url: str, clean: AsyncEngine) -> AsyncIterator[LiveFeed]:
    live = LiveFeed(database_url, Reader(clean))
    await live.start()
    yield live
    await live.stop()
