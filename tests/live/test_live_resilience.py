"""The stream survives a database restart, and a slow reader is cut off cleanly and resumes."""

from __future__ import annotations

import asyncio
import socket

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import Unavailable
from api.ops.embedded import EmbeddedPostgres
from api.store.events import PendingEvent, record_events
from api.store.writes import WriteService

from .helpers import checkins, seed, table_cursors
from .servers import STREAM, TIMEOUT, ServerProcess, cursors, messages, stream, take


async def test_a_database_restart_in_the_middle_of_a_stream_loses_nothing(
    own_postgres: EmbeddedPostgres, own_database: tuple[str, AsyncEngine]
) -> None:
    url, engine = own_database
    writer = WriteService(engine)
    await seed(writer)
    server = ServerProcess(url)
    await asyncio.to_thread(server.start)
    try:
        async with stream(server.url, {"after": "0"}) as source:
            await checkins(writer, 5)
            got = await take(source, 5)

            # One writer keeps writing through the restart; what it commits is in the table.
            restarted = asyncio.Event()

            async def keep_writing() -> None:
                written = 0
                while written < 20 or not restarted.is_set():
                    try:
                        await checkins(writer, 1)
                        written += 1
                    except (Unavailable, DBAPIError, OSError):
                        # The database is down, or the pooled connection died under the write
                        # (asyncpg then says InternalClientError): the table says what committed.
                        await asyncio.sleep(0.05)

            writing = asyncio.create_task(keep_writing())
            await checkins(writer, 5)  # committed right before the stop: their NOTIFY may die with it
            await asyncio.to_thread(own_postgres.stop)
            await asyncio.to_thread(own_postgres.start)
            restarted.set()
            await writing
            expected = await table_cursors(engine)
            got += await take(source, len(expected) - len(got))
        assert cursors(got) == expected
    finally:
        await asyncio.to_thread(server.stop)


async def record(engine: AsyncEngine, n: int) -> None:
    """n events in one transaction, through the real recording path (cursor lock, NOTIFY)."""
    async with engine.begin() as conn:
        await record_events(conn, [PendingEvent("a-0", "team_checkin", f"c-{i}") for i in range(n)])


async def test_a_reader_too_slow_for_its_queue_gets_a_clear_error_and_resumes(
    live_servers: tuple[str, str], writer: WriteService, engine: AsyncEngine
) -> None:
    await seed(writer)
    total = 40_000  # ~9 MB of stream: about twice what the socket buffers below hold
    base = live_servers[0]
    # The slow client reads nothing until every event is written and fanned out; its small
    # receive buffer (and the server's send buffer, at most 4 MB) fill, the server's writes
    # to it block, and its queue (1,000 events) overflows.
    transport = httpx.AsyncHTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)])
    async with (
        httpx.AsyncClient(base_url=base, transport=transport, timeout=TIMEOUT) as slow_client,
        stream(base, {"after": "0"}) as fast,
        slow_client.stream("GET", "/coordination_events", params={"after": "0"}, headers=STREAM) as response,
    ):
        assert response.status_code == 200
        # A reader that keeps up, on the same server: once it has every event, the
        # feed has offered every event to the slow one too.
        keeping_up = asyncio.create_task(take(fast, total))
        for _ in range(total // 5000):
            await record(engine, 5000)
        assert len(await keeping_up) == total
        received = []
        error = None
        async for message in messages(response):
            if message.event == "error":
                error = message.data
                break
            received.append(message)
            if len(received) == total:
                break
    assert error is not None, f"no overflow after {len(received)} events"
    assert error["code"] == "subscriber_overflow"
    assert "resume" in error["message"]
    assert 0 < len(received) < total
    assert error["last_cursor"] == received[-1].id
    async with stream(base, headers={"Last-Event-ID": received[-1].id}) as again:  # type: ignore[dict-item]
        rest = await take(again, total - len(received))
    assert cursors(received + rest) == await table_cursors(engine)
