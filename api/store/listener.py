"""The process's one LISTEN connection, kept open across database restarts (what the live feed wakes on)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from api.errors import Unavailable
from api.store.database import libpq_url

# What asyncpg hands its listeners.
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

log = logging.getLogger("coco.live")

PING_INTERVAL_S = 5.0
PING_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
MAX_BACKOFF_S = 2.0


class Listener:
    """Calls `wake()` on every notification on `channel` (or `announce(payload)`, when
    given) and after every (re)connect.

    A notification is only a wake-up: the feed reads the table from the last
    cursor it delivered, so notifications coalesced by PostgreSQL, or lost
    while the connection was down, cost nothing but the read after `wake()`.
    A connection that died silently (no FIN, e.g. a dropped network path) is
    found by a periodic ping.
    """

    def __init__(
        self,
        database_url: str,
        channel: str,
        wake: Callable[[], None],
        *,
        ping_interval: float = PING_INTERVAL_S,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.url = libpq_url(database_url)
        self.channel = channel
        self.wake = wake
        # Given, a notification's payload goes there instead of a bare `wake()`.
        self.announce = announce
        self.ping_interval = ping_interval
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and LISTEN (failing if the database cannot be reached), then keep it so."""
        try:
            await self._connect()
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise Unavailable(f"the database is unavailable: {error}") from error
        self._task = asyncio.create_task(self._keep(), name="coco-live-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.url, timeout=CONNECT_TIMEOUT_S, server_settings={"application_name": "coco-live"}
        )
        try:
            await conn.add_listener(self.channel, self._notified)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        self._lost.clear()
        # Whatever was committed while we were not listening is read now.
        self.wake()

    def _notified(self, conn: Connection, pid: int, channel: str, payload: object) -> None:
        if self.announce is not None:
            self.announce(str(payload))
        else:
            self.wake()

    def _terminated(self, conn: Connection) -> None:
        if conn is self._conn:
            self._lost.set()

    async def _keep(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), timeout=self.ping_interval)
            except TimeoutError:
                if await self._alive():
                    continue
            log.warning("live events: LISTEN connection lost; reconnecting")
            await self._close()
            await self._reconnect()

    async def _alive(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=PING_TIMEOUT_S)
        except Exception:  # whatever the driver raises, a connection that cannot answer is gone
            return False
        return True

    async def _reconnect(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._connect()
            except Exception as error:  # keep trying, however connecting failed
                log.debug("live events: reconnect failed: %s", error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            log.warning("live events: LISTEN connection restored")
            return

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), timeout=PING_TIMEOUT_S)
        except Exception:
            conn.terminate()
