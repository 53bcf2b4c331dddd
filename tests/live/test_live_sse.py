"""Server-sent events across two real server processes on one database."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.events import NOTIFY_CHANNEL
from api.store.tables import event_seq
from api.store.writes import WriteService

from .helpers import checkins, seed, table_cursors, until_subscribers
from .servers import STREAM, TIMEOUT, cursors, messages, stream, take


async def test_an_event_written_elsewhere_reaches_subscribers_on_both_processes(
    live_servers: tuple[str, str], writer: WriteService
) -> None:
    await seed(writer)
    async with stream(live_servers[0]) as on_a, stream(live_servers[1]) as on_b:
        [written] = await checkins(writer, 1)
        for source in (on_a, on_b):
            [message] = await take(source, 1)
            assert message.data["reference_id"] == written["reference_id"]
            assert message.data["cursor"] == str(written["seq"])
            assert set(message.data) == {"id", "actor_id", "event_type", "reference_id", "occurred_at", "cursor"}


async def test_500_events_from_10_concurrent_writers_arrive_once_each_in_cursor_order_on_both(
    live_servers: tuple[str, str], writer: WriteService, engine: AsyncEngine
) -> None:
    await seed(writer)
    async with stream(live_servers[0], {"after": "0"}) as on_a, stream(live_servers[1], {"after": "0"}) as on_b:

        async def write() -> None:
            for _ in range(50):
                await checkins(writer, 1)

        readers = [asyncio.create_task(take(source, 500)) for source in (on_a, on_b)]
        await asyncio.gather(*(write() for _ in range(10)))
        expected = await table_cursors(engine)
        assert len(expected) == 500
        for got in await asyncio.gather(*readers):
            assert cursors(got) == expected
            assert len({m.data["id"] for m in got}) == 500


async def test_a_subscriber_that_reconnects_with_last_event_id_gets_exactly_what_it_missed(
    live_servers: tuple[str, str], writer: WriteService, engine: AsyncEngine
) -> None:
    await seed(writer)
    async with stream(live_servers[0], {"after": "0"}) as first:
        await checkins(writer, 10)
        seen = await take(first, 4)
    # Gone; meanwhile more is written. It comes back on the other process.
    await checkins(writer, 7)
    last = seen[-1].id
    assert last is not None
    async with stream(live_servers[1], {"after": "0"}, headers={"Last-Event-ID": last}) as again:
        rest = await take(again, 13)
        more = await checkins(writer, 2)
        rest += await take(again, 2)
    assert cursors(seen + rest) == await table_cursors(engine)
    assert cursors(rest)[-2:] == [e["seq"] for e in more]
    # ?after= does the same for clients that cannot set headers.
    async with stream(live_servers[0], {"after": last}) as by_query:
        assert cursors(await take(by_query, 15)) == cursors(rest)


async def test_filters_on_the_stream(live_servers: tuple[str, str], writer: WriteService) -> None:
    await seed(writer, teams=2)
    await writer.create("goal_story", [{"id": "g-1", "title": "G", "team_ids": ["t-1"]}])
    params = [
        {"actor_id": "eq.a-1"},
        {"team_id": "t-1"},
        {"event_type": "eq.goal_story_update"},
        {"team_id": "eq.t-1", "event_type": "eq.team_checkin"},
    ]
    async with contextlib.AsyncExitStack() as stack:
        sources = [await stack.enter_async_context(stream(live_servers[1], {"after": "0", **p})) for p in params]
        mine = await checkins(writer, 2, actor="a-1", team="t-0")
        await checkins(writer, 2, actor="a-0", team="t-0")
        theirs = await checkins(writer, 2, actor="a-0", team="t-1")
        update = await writer.create(
            "goal_story_update",
            [{"actor_id": "a-0", "goal_story_id": "g-1", "date": "2026-05-22", "title": "t", "content": "c"}],
        )
        seq = [e["seq"] for e in update.events]
        expected = [
            [e["seq"] for e in mine],
            [e["seq"] for e in theirs] + seq,
            seq,
            [e["seq"] for e in theirs],
        ]
        for source, want in zip(sources, expected, strict=True):
            assert cursors(await take(source, len(want))) == want
        # Nothing else was due to the narrow ones: the next event each sees is a new matching one.
        [last] = await checkins(writer, 1, actor="a-1", team="t-1")
        for source in (sources[0], sources[1], sources[3]):
            assert cursors(await take(source, 1)) == [last["seq"]]


async def test_keep_alive_comments_flow_while_idle(live_servers: tuple[str, str], clean: AsyncEngine) -> None:
    async with (
        httpx.AsyncClient(base_url=live_servers[0], timeout=TIMEOUT) as client,
        client.stream("GET", "/coordination_events", headers=STREAM) as response,
    ):

        async def first_keep_alive() -> str:
            async for message in messages(response, comments=True):
                if message.data == "keep-alive":
                    return message.data
            raise AssertionError("the stream ended")

        assert await asyncio.wait_for(first_keep_alive(), TIMEOUT) == "keep-alive"


async def test_bad_parameters_are_a_clear_400_and_other_requests_pass_through(
    live_servers: tuple[str, str], clean: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=live_servers[0], timeout=TIMEOUT) as client:
        for params, headers, word in [
            ({"after": "soon"}, {}, "after"),
            ({"after": "²"}, {}, "after"),
            ({"after": "9" * 30}, {}, "after"),
            ({}, {"Last-Event-ID": "-3"}, "Last-Event-ID"),
            ({"actor_id": "like.a*"}, {}, "eq"),
            ({"order": "cursor.desc"}, {}, "order"),
            ({"event_type": "eq.lunch"}, {}, "event_type"),
        ]:
            response = await client.get("/coordination_events", params=params, headers={**STREAM, **headers})
            assert response.status_code == 400, params
            assert response.json()["code"] == "bad_request"
            assert word in response.json()["message"]
        # Asking for JSON is the REST layer's business, not the event stream's.
        response = await client.get("/coordination_events", headers={"Accept": "application/json"})
        assert not response.headers.get("content-type", "").startswith("text/event-stream")
        response = await client.get("/healthz", headers=STREAM)
        assert response.status_code == 200 and response.json()["database"] == "up"


async def test_streams_that_clients_leave_leave_no_subscriber_behind(
    live_servers: tuple[str, str], writer: WriteService
) -> None:
    """Each stream waits only for its client to leave (no task of its own per stream): when the clients
    go, whether they had events or not, the server's live subscriptions go with them."""
    await seed(writer)
    base = live_servers[0]
    await until_subscribers(base, 0)
    async with contextlib.AsyncExitStack() as held:
        sources = [await held.enter_async_context(stream(base)) for _ in range(20)]
        await until_subscribers(base, 20)
        [event] = await checkins(writer, 1)
        for source in sources[:10]:
            assert cursors(await take(source, 1)) == [event["seq"]]
    await until_subscribers(base, 0)


async def test_a_replay_stops_reading_the_history_once_its_client_has_left(
    live_servers: tuple[str, str], writer: WriteService, engine: AsyncEngine
) -> None:
    """A client resuming after an old cursor that leaves during the replay: the ASGI server drops what is
    sent to a client that left, without a word, so the stream must notice the disconnect itself, or it
    reads the rest of the history (a page at a time, for nobody) before it ends."""
    await seed(writer)
    base = live_servers[0]
    rows = 60_000  # about 10 MB of frames: more than the sockets' buffers take before the client leaves
    async with stream(base, {"reference_id": f"eq.r-{rows}"}) as last_only:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO coordination_events (id, seq, actor_id, event_type, reference_id, occurred_at) "
                    f"SELECT gen_random_uuid()::text, nextval('{event_seq.name}'), 'a-0', 'team_checkin', 'r-' || g, "
                    "now() FROM generate_series(1, :rows) AS g"
                ),
                {"rows": rows},
            )
            last = await conn.scalar(select(func.currval(event_seq.name)))
            await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, str(last))))
        # The feed has read past the whole history: a replay from the start is all of it.
        assert cursors(await take(last_only, 1)) == [last]
    await until_subscribers(base, 0)
    before = await delivered(base)

    url = httpx.URL(base)
    reader, writer_ = await asyncio.open_connection(url.host, url.port)
    writer_.write(
        f"GET /coordination_events?after=0 HTTP/1.1\r\nHost: {url.host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await asyncio.wait_for(reader.readuntil(b"\nid: "), TIMEOUT)  # the replay has begun
    writer_.close()
    await until_subscribers(base, 0)

    replayed = await delivered(base) - before
    assert 0 < replayed < rows // 2, replayed


async def delivered(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        body = (await client.get("/metrics")).text
    return sum(
        int(float(line.split()[1]))
        for line in body.splitlines()
        if line.startswith("coco_live_events_delivered_total ")
    )
