"""Every documented request shape, planned on a database big enough for the planner's choice to be real:
no sequential scan of a large table.

The database holds the benchmark's dataset at a small scale (bench/seed.py: 50 teams, 60,000 check-ins,
12,000 goal story updates, an event for each) plus the demo organisation, so the documented examples,
written against the demo ids, find their rows among many; it is VACUUMed and ANALYZEd. Then a real
server (the app, in process, over real HTTP) answers what the docs show: every example of README.md and
docs/*.md (REST, GraphQL, MCP, as tests/test_docs_examples.py finds them), the dashboard's query and
the viewer's newest-cursor query (viewer/dashboard.js), the benchmark's nested goal query and check-in
page, and the event replay after an old cursor (server-sent events, GraphQL's subscription and MCP's
get_coordination_events read it alike).

The plans are PostgreSQL's own: `auto_explain` is loaded into this database's sessions only
(`session_preload_libraries`, logging every statement's plan as JSON with its parameters), so what is
checked is the plan of each statement the server actually ran, with the values it ran with (prepared
statements included, whatever plan they settled on), not a re-creation of it.

Large tables are those that grow with every day of use, without bound: team_checkins,
goal_story_updates and coordination_events (a check-in per member and day, an update per goal and
week, an event for each). The organisation's tables (actors, teams, goal stories) hold what an
organisation has (hundreds, thousands of rows), where reading the whole table is often the planner's
best choice. webhook_deliveries grows too, but no documented shape reads it in bulk and it is not
seeded here. An aggregate over every row of a table (no filter: `GET
/goal_story_updates?select=status,count()`, GraphQL's `goalStoryUpdates { aggregates }` of the whole
table) reads the whole table whatever the plan: a scan without a filter under an aggregate is let be
(`_aggregates_all`), and only that.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from api.ops.demo import seed as seed_demo
from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine, libpq_url
from api.store.migrate import upgrade
from api.store.writes import WriteService
from bench.seed import Scale, statements
from tests.conftest import RunningServer
from tests.test_docs_examples import (
    COMMANDS,
    MCP_HEADERS,
    NODE_FILES,
    Demo,
    fenced_blocks,
    is_stream,
    run_curl,
    shell_commands,
    tool_calls,
)
from tests.viewer_documents import dashboard_query

ROOT = Path(__file__).resolve().parents[1]
LARGE = frozenset({"team_checkins", "goal_story_updates", "coordination_events"})
# Big enough that reading a whole large table costs the planner more than its indexes (tens of
# thousands of rows, thousands of pages), small enough to seed in a few seconds.
SCALE = Scale(checkins=60_000, updates=12_000)
# Nodes that hand their input's rows on whole (reordered, hashed, wrapped): between an aggregate and the
# scan it reads, they do not make the scan any less a read of every row for the aggregate.
PASSING = frozenset(
    {"Sort", "Incremental Sort", "Hash", "Materialize", "Subquery Scan", "Gather", "Gather Merge", "Result"}
)
# The early cursor the replays start after: most of the history lies after it.
OLD_CURSOR = 100
# auto_explain's "Query Parameters": $1 = '7', $2 = NULL (values quoted as SQL literals).
PARAMETER = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
# A lookup repeated per row may filter a table of a page or two (five check-ins' teams, say, where the
# planner rightly reads the page rather than an index); not a table's worth of rows per parent.
FILTERED_ROWS_ALLOWED = 1_000
CURL = subprocess.run(["curl", "--version"], capture_output=True).returncode == 0
WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b")
ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] ", re.MULTILINE)


@dataclass
class Planned:
    """A statement the server ran, with its plan (auto_explain's JSON: Query Text, Query Parameters, Plan)."""

    query: str
    parameters: str
    plan: dict[str, Any]

    def scans(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every node of the plan, with its ancestors (the nearest last)."""
        stack: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [(self.plan, [])]
        while stack:
            node, above = stack.pop()
            yield node, above
            stack.extend((child, [*above, node]) for child in node.get("Plans", []))


def logged_plans(log: str) -> list[Planned]:
    """The plans auto_explain wrote into this stretch of the server log."""
    planned = []
    starts = [m.start() for m in ENTRY.finditer(log)] + [len(log)]
    for start, end in itertools.pairwise(starts):
        entry = log[start:end]
        marker = entry.find("plan:\n")
        if " LOG:  duration: " not in entry or marker < 0:
            continue
        document = json.loads(entry[marker + len("plan:\n") :])
        planned.append(Planned(document["Query Text"], document.get("Query Parameters", ""), document["Plan"]))
    return planned


def large_seq_scans(planned: Planned) -> list[str]:
    """The large tables the plan reads sequentially, but for a whole table's aggregate."""
    return [
        node["Relation Name"]
        for node, above in planned.scans()
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE and not _aggregates_all(node, above)
    ]


def _aggregates_all(scan: dict[str, Any], above: list[dict[str, Any]]) -> bool:
    """Whether the scan reads every row of its table for an aggregate over all of them (a count by status, say),
    which reads every row whatever the plan: no filter, and an aggregate above it through nodes that pass
    every row on."""
    if "Filter" in scan:
        return False
    for node in reversed(above):
        if node["Node Type"] == "Aggregate":
            return True
        if node["Node Type"] not in PASSING:
            return False
    return False


@dataclass
class Seeded:
    url: str
    log_file: Path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(postgres: EmbeddedPostgres) -> AsyncIterator[Seeded]:
    name = f"coco_plans_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    engine = create_engine(url, pool_size=2)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            for statement in statements(SCALE):
                await conn.exec_driver_sql(statement)
        await seed_demo(WriteService(engine))
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM (ANALYZE)")
            # New sessions of this database only (the server's): every statement's plan into the log.
            for setting, value in (
                ("session_preload_libraries", "auto_explain"),
                ("auto_explain.log_min_duration", "0"),
                ("auto_explain.log_format", "json"),
                ("auto_explain.log_nested_statements", "on"),
                ("auto_explain.log_parameter_max_length", "-1"),
            ):
                await autocommit.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET {setting} = '{value}'")
    finally:
        await engine.dispose()
    yield Seeded(url, postgres.log_file)


async def _replay(http: httpx.AsyncClient, path: str, wanted: int) -> None:
    """Read `wanted` events of a replay over server-sent events, then close the stream."""
    seen = 0
    async with http.stream("GET", path, headers={"Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200, path
        async for line in stream.aiter_lines():
            seen += line.startswith("id: ")
            if seen >= wanted:
                return


async def run_documented_shapes(base_url: str) -> list[str]:
    """Every documented request, as printed (examples) or as its client sends it; what was run."""
    demo = Demo(base_url, None)  # type: ignore[arg-type] - run_curl needs the port only
    ran = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        for block in fenced_blocks():
            if block.language == "graphql":
                answer = await http.post("/graphql", json={"query": block.text})
                assert answer.status_code == 200 and "errors" not in answer.json(), (block.where(), answer.text)
                ran.append(block.where())
            elif block.language == "sh":
                for command in shell_commands(block):
                    if command.startswith(COMMANDS) or is_stream(command):
                        continue
                    status, body = run_curl(command, demo)
                    assert 200 <= status < 300, (block.where(), command, status, body)
                    ran.append(command)
            elif block.language == "text" and "→ " in block.text:
                for name, arguments, _ in tool_calls(block):
                    call = {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "tools/call",
                        "params": {"name": name, "arguments": arguments},
                    }
                    # Some examples show a refusal (a bad argument): the answer matters less than the statements.
                    answer = await http.post("/mcp", json=call, headers=MCP_HEADERS)
                    assert answer.status_code == 200 and "result" in answer.json(), (block.where(), answer.text)
                    ran.append(f"mcp {name}")
            else:
                assert block.language in ("text", "jsonl", "json", "js") or block.text in NODE_FILES, block.where()

        # The dashboard (viewer/dashboard.js), on a team of the seeded history, four weeks of it.
        variables = {"team": "t-7", "from": "2026-06-03", "to": "2026-06-30", "asOf": "2026-07-01T12:00:00Z"}
        answer = await http.post(
            "/graphql", json={"query": dashboard_query(), "variables": {**variables, "weekdays": False, "days": 14}}
        )
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
        assert answer.json()["data"]["teamCoverage"]["days"], "the dashboard's coverage is empty"
        # Both viewer pages ask for the newest cursor before following the live events.
        newest = "{ coordinationEvents(first: 1, orderBy: [{ field: CURSOR, direction: DESC }]) { nodes { cursor } } }"
        assert newest in (ROOT / "viewer" / "dashboard.js").read_text()
        answer = await http.post("/graphql", json={"query": newest})
        assert answer.status_code == 200 and answer.json()["data"]["coordinationEvents"]["nodes"], answer.text
        ran += ["viewer/dashboard.js DASHBOARD", "viewer newest cursor"]

        # The benchmark's shapes (bench/README.md): the nested goal query and the check-in page.
        nested = (ROOT / "bench" / "queries" / "coco_nested_goals.graphql").read_text()
        answer = await http.post("/graphql", json={"query": nested})
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
        page = await http.get("/team_checkins?team_id=eq.t-7&date=gte.2026-01-01&order=date.desc&limit=50")
        assert page.status_code == 200 and len(page.json()) == 50
        ran += ["bench nested goals", "bench check-in page"]

        # The event replay after an old cursor: server-sent events with after= and with Last-Event-ID,
        # and MCP's get_coordination_events (the GraphQL subscription's `after` reads as the stream does).
        await _replay(http, f"/coordination_events?after={OLD_CURSOR}", 600)
        await _replay(http, "/coordination_events?after=500&event_type=eq.goal_story_update", 50)
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "get_coordination_events", "arguments": {"after": str(OLD_CURSOR)}},
        }
        result = (await http.post("/mcp", json=call, headers=MCP_HEADERS)).json()["result"]
        assert not result.get("isError") and result["structuredContent"]["events"], result
        ran += ["SSE replay", "SSE replay, filtered", "mcp get_coordination_events after"]
    return ran


@dataclass
class Documented:
    ran: list[str]
    # The statements the documented shapes ran that read a large table, with their logged plans.
    touched: list[Planned]
    url: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def documented(seeded: Seeded) -> Documented:
    if not CURL:
        pytest.skip("no curl")
    start = seeded.log_file.stat().st_size
    with RunningServer(seeded.url) as base_url:
        ran = await run_documented_shapes(base_url)
    with seeded.log_file.open(errors="replace") as log:
        log.seek(start)
        planned = logged_plans(log.read())
    touched = [p for p in planned if re.search(r"\b(" + "|".join(LARGE) + r")\b", p.query)]
    return Documented(ran, touched, seeded.url)


async def test_no_documented_shape_scans_a_large_table(documented: Documented) -> None:
    ran, touched = documented.ran, documented.touched
    assert len(ran) > 20, ran
    # The plans were logged: a check that saw none would pass whatever the server did.
    assert len(touched) > len(ran) / 2, f"only {len(touched)} plans logged for {len(ran)} requests"
    scans = [
        f"{sorted(set(tables))} in {p.query.strip()[:4000]} (parameters: {p.parameters})"
        for p in touched
        if (tables := large_seq_scans(p))
    ]
    assert not scans, "sequential scans of large tables:\n" + "\n\n".join(scans)


async def test_settled_plans_look_rows_up_by_index(documented: Documented) -> None:
    """A prepared statement runs on its generic plan from its sixth execution on a connection, which is
    the plan a busy server runs; the logged plans above are the first executions' custom plans. The
    generic plan of each read above (those of a large table), run with the values it ran with, reads no
    large table whole, and no scan
    that runs once per row of an outer read (a parent's children, a row's actor) filters a table's rows
    instead of looking them up: with an index on goal stories' `parent_id` alone, the nested goal query
    walked the primary key and filtered every goal story, once per parent (migration 0006)."""
    # Reads: a write's logged values would collide with the rows it wrote.
    statements = {p.query: p for p in documented.touched if not WRITE.search(p.query)}
    conn = await asyncpg.connect(libpq_url(documented.url))
    try:
        problems = []
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        for number, (query, logged) in enumerate(statements.items()):
            generic = Planned(query, logged.parameters, await _generic_plan(conn, f"settled_{number}", logged))
            if tables := large_seq_scans(generic):
                problems.append(f"sequential scans of {sorted(set(tables))} in {query.strip()[:4000]}")
            problems += [
                f"{node['Relation Name']} filtered ({node['Filter']}) {node['Actual Loops']} times, "
                f"{node['Rows Removed by Filter']} rows out each time, in {query.strip()[:4000]}"
                for node, _ in generic.scans()
                if "Relation Name" in node
                and node.get("Actual Loops", 0) > 1
                and node.get("Rows Removed by Filter", 0) > node.get("Actual Rows", 0)
                and node["Actual Loops"] * node["Rows Removed by Filter"] > FILTERED_ROWS_ALLOWED
            ]
    finally:
        await conn.close()
    assert len(statements) > 20, len(statements)
    assert not problems, "\n\n".join(problems)


async def _generic_plan(conn: asyncpg.Connection, name: str, logged: Planned) -> dict[str, Any]:
    """The generic plan of `logged`'s statement, run with its logged values (EXPLAIN ANALYZE: how often
    each scan ran and what it filtered out)."""
    values = dict(PARAMETER.findall(logged.parameters))
    await conn.execute(f"PREPARE {name} AS {logged.query}")
    count = await conn.fetchval("SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = $1", name)
    assert set(values) == {str(n) for n in range(1, count + 1)}, (logged.query, logged.parameters)
    arguments = f"({', '.join(values[str(n)] for n in range(1, count + 1))})" if count else ""
    transaction = conn.transaction()
    await transaction.start()
    try:
        explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}{arguments}")
    finally:
        await transaction.rollback()
    plan: dict[str, Any] = json.loads(explained)[0]["Plan"]
    return plan


def test_the_log_reader_finds_plans_and_their_sequential_scans() -> None:
    plan = {"Node Type": "Limit", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "team_checkins"}]}
    document = json.dumps({"Query Text": "SELECT 1 FROM team_checkins", "Query Parameters": "$1 = 'x'", "Plan": plan})
    log = (
        "2026-12-03 22:00:00.123 UTC [42] LOG:  connection authorized\n"
        "2026-12-03 22:00:00.456 UTC [42] LOG:  duration: 0.050 ms  plan:\n"
        + json.dumps(json.loads(document), indent=2)
        + "\n"
        "2026-12-03 22:00:01.000 UTC [43] LOG:  duration: 0.010 ms  plan:\n"
        + json.dumps({"Query Text": "SELECT 2", "Plan": {"Node Type": "Result"}})
        + "\n"
    )
    [first, second] = logged_plans(log)
    assert (first.query, first.parameters, large_seq_scans(first)) == (
        "SELECT 1 FROM team_checkins",
        "$1 = 'x'",
        ["team_checkins"],
    )
    assert (second.query, large_seq_scans(second)) == ("SELECT 2", [])
