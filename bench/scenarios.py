"""The rows of the benchmark: each scenario measured against our server and its reference, side by side.

A row holds one `Side` per implementation. A side is a measurement, or the reason
it was not measured ("skipped: endpoint not available"), so one missing endpoint
never stops the run. Before each measurement the scenario checks one answer by
hand (status, and for reads the same content as the reference), because a fast
wrong answer is not a result.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import statements
from .cluster import BenchDatabase, reset_writes, written_since
from .loadgen import Load, LoadGeneratorError, Measurement, run_pgbench, run_wrk
from .seed import Scale

QUERIES = Path(__file__).resolve().parent / "queries"
PGBENCH_SCRIPTS = Path(__file__).resolve().parent / ".data" / "pgbench"
BULK_SIZE = 1000
CHECKIN_PAGE_PATH = "/team_checkins?team_id=eq.t-7&date=gte.2026-01-01&order=date.desc&limit=50"
NOT_AVAILABLE = "skipped: endpoint not available"


@dataclass
class Side:
    implementation: str
    measurement: Measurement | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    # For write scenarios: rows and events the run left behind (equal when every row has its event).
    written: dict[str, int] | None = None
    # With --repeat: every run's requests/s, of which this side is the median run.
    runs: list[float] | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"implementation": self.implementation}
        if self.measurement is not None:
            result.update(self.measurement.as_dict())
        if self.skipped is not None:
            result["skipped"] = self.skipped
        if self.notes:
            result["notes"] = self.notes
        if self.written is not None:
            result["written"] = self.written
        if self.runs is not None:
            result["runs_requests_per_s"] = self.runs
        return result


@dataclass
class Row:
    key: str
    title: str
    ours: Side
    reference: Side
    # Run for information only: the same SQL without any HTTP (pgbench).
    sql: Side | None = None
    # Our throughput must be at least this multiple of the reference's.
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.ours.measurement is None or self.reference.measurement is None:
            return None
        if not self.reference.measurement.requests_per_s:
            return None
        return self.ours.measurement.requests_per_s / self.reference.measurement.requests_per_s

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if ratio is None or self.target is None:
            return None
        clean = all(s.measurement is not None and s.measurement.errors == 0 for s in (self.ours, self.reference))
        return ratio >= self.target and clean

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "ours": self.ours.as_dict(),
            "reference": self.reference.as_dict(),
            "sql": self.sql.as_dict() if self.sql else None,
            "ratio": round(self.ratio, 3) if self.ratio is not None else None,
            "target": self.target,
            "met": self.met,
        }


@dataclass
class Endpoint:
    """One HTTP implementation as the scenarios see it: a base URL, or why there is none."""

    name: str
    base_url: str | None
    unavailable: str | None = None


@dataclass
class Context:
    db: BenchDatabase
    load: Load
    ours: Endpoint  # our REST layer
    ours_graphql: Endpoint  # our GraphQL API (the same server)
    minimal: Endpoint
    postgraphile: Endpoint
    work_dir: Path
    with_sql: bool = True
    bulk_size: int = BULK_SIZE

    @property
    def scale(self) -> Scale:
        return self.db.scale


# -- HTTP checks ---------------------------------------------------------------------------


def http(method: str, url: str, body: bytes | None = None, timeout: float = 60) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def probe_rest(endpoint: Endpoint) -> None:
    """Mark the REST scenarios of `endpoint` unavailable unless it answers a PostgREST read."""
    if endpoint.base_url is None:
        return
    try:
        status, body = http("GET", endpoint.base_url + "/actors?id=eq.p-1")
    except OSError as error:
        endpoint.unavailable = f"skipped: {error}"
        return
    if status in (404, 405):
        endpoint.unavailable = NOT_AVAILABLE
    elif status != 200:
        endpoint.unavailable = f"skipped: GET /actors answered {status}: {body[:200]!r}"


def probe_graphql(endpoint: Endpoint) -> None:
    """Mark `endpoint` unavailable unless it answers a GraphQL request at /graphql."""
    if endpoint.base_url is None:
        return
    try:
        status, body = http("POST", endpoint.base_url + "/graphql", json.dumps({"query": "{ __typename }"}).encode())
    except OSError as error:
        endpoint.unavailable = f"skipped: {error}"
        return
    if status in (404, 405):
        endpoint.unavailable = NOT_AVAILABLE
    elif status != 200:
        endpoint.unavailable = f"skipped: POST /graphql answered {status}: {body[:200]!r}"


def _graphql(url: str, query: str) -> tuple[dict[str, Any] | None, str | None]:
    """The data of one GraphQL request, or what went wrong."""
    status, body = http("POST", url + "/graphql", json.dumps({"query": query}).encode())
    try:
        answer = json.loads(body)
    except ValueError:
        return None, f"status {status}, not JSON: {body[:200]!r}"
    if status != 200 or answer.get("errors") or not answer.get("data"):
        return None, f"status {status}: {json.dumps(answer.get('errors') or answer)[:300]}"
    return answer["data"], None


def _texts(value: Any) -> list[str]:
    """Every string in a JSON document, sorted: equal for two spellings of the same rows."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return sorted(s for v in value.values() for s in _texts(v))
    if isinstance(value, list):
        return sorted(s for v in value for s in _texts(v))
    return []


def _rows_by_id(body: bytes) -> list[Any]:
    rows = json.loads(body)
    return sorted(rows, key=lambda r: r.get("id", "")) if isinstance(rows, list) else rows


# -- measuring one side ----------------------------------------------------------------------


def _measure(side: Side, run: Callable[[], Measurement]) -> Side:
    try:
        side.measurement = run()
    except (LoadGeneratorError, OSError) as error:
        side.skipped = f"failed: {error}"[:500]
    else:
        if side.measurement.errors:
            side.notes.append(f"{side.measurement.errors} failed requests: {side.measurement.error_detail}")
        if not side.measurement.requests:
            side.notes.append(f"no request completed within {side.measurement.duration_s:.0f} s: "
                              "the latencies are unknown, not zero")
    return side


def _measure_write(ctx: Context, side: Side, run: Callable[[], Measurement], rows_per_request: int) -> Side:
    asyncio.run(reset_writes(ctx.db.url, ctx.db.seed_max_seq))
    _measure(side, run)
    written = asyncio.run(written_since(ctx.db.url, ctx.db.seed_max_seq))
    side.written = written
    if written["team_checkins"] != written["coordination_events"]:
        side.notes.append(f"rows and events differ: {written}")
    if side.measurement is not None and written["team_checkins"] < side.measurement.requests * rows_per_request:
        side.notes.append(f"fewer rows than requests x {rows_per_request}: {written}")
    asyncio.run(reset_writes(ctx.db.url, ctx.db.seed_max_seq))
    return side


def _http_side(ctx: Context, endpoint: Endpoint, check: Callable[[str, Side], str | None],
               run: Callable[[str], Measurement], write_rows: int | None = None) -> Side:
    side = Side(endpoint.name)
    if endpoint.base_url is None or endpoint.unavailable:
        side.skipped = endpoint.unavailable or NOT_AVAILABLE
        return side
    base_url = endpoint.base_url
    try:
        problem = check(base_url, side)
    except (OSError, ValueError) as error:  # no answer, or not the JSON it should be
        problem = f"{type(error).__name__}: {error}"
    if problem:
        side.skipped = f"failed: {problem}"[:500]
        return side
    if write_rows is None:
        return _measure(side, lambda: run(base_url))
    return _measure_write(ctx, side, lambda: run(base_url), write_rows)


def _sql_side(ctx: Context, key: str, script: str, write_rows: int | None = None) -> Side | None:
    if not ctx.with_sql:
        return None
    side = Side("SQL only (pgbench)")
    db = ctx.db
    # Kept after the run (bench/.data/pgbench/<row>.sql), to read or to run by hand.
    PGBENCH_SCRIPTS.mkdir(parents=True, exist_ok=True)
    path = PGBENCH_SCRIPTS / f"{key}.sql"
    path.write_text(script)

    def run() -> Measurement:
        return run_pgbench(db.name, db.socket_dir, db.port, path, ctx.load)

    if write_rows is None:
        return _measure(side, run)
    return _measure_write(ctx, side, run, write_rows)


# -- the scenarios ----------------------------------------------------------------------------


def rest_read_one(ctx: Context) -> Row:
    env = {"BENCH_PATH": "/actors?id=eq.p-%d", "BENCH_ROTATE": str(ctx.scale.actors)}
    expected: dict[str, Any] = {}

    def check(base_url: str, side: Side) -> str | None:
        status, body = http("GET", base_url + "/actors?id=eq.p-7")
        if status != 200:
            return f"GET /actors?id=eq.p-7 answered {status}: {body[:200]!r}"
        rows = _rows_by_id(body)
        if len(rows) != 1:
            return f"expected one actor, got {body[:200]!r}"
        _same_as_reference(expected, rows, side)
        return None

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "get_rotating.lua", env, ctx.load)

    reference = _http_side(ctx, ctx.minimal, check, run)
    ours = _http_side(ctx, ctx.ours, check, run)
    script = f"\\set n random(1, {ctx.scale.actors})\n" + statements.READ_ACTOR.format(id="'p-' || :n") + ";\n"
    return Row("rest_read_one", "REST read one by id (GET /actors?id=eq.<id>, rotating ids)", ours, reference,
               _sql_side(ctx, "rest_read_one", script), target=0.7)


def rest_checkin_page(ctx: Context) -> Row:
    env = {"BENCH_PATH": CHECKIN_PAGE_PATH, "BENCH_ROTATE": "1"}
    expected: dict[str, Any] = {}

    def check(base_url: str, side: Side) -> str | None:
        status, body = http("GET", base_url + CHECKIN_PAGE_PATH)
        if status != 200:
            return f"GET {CHECKIN_PAGE_PATH} answered {status}: {body[:200]!r}"
        rows = _rows_by_id(body)
        if not rows:
            return "the page is empty"
        _same_as_reference(expected, rows, side)
        return None

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "get_rotating.lua", env, ctx.load)

    reference = _http_side(ctx, ctx.minimal, check, run)
    ours = _http_side(ctx, ctx.ours, check, run)
    script = statements.READ_CHECKIN_PAGE.format(team_id="'t-7'", since="'2026-01-01'", limit="50") + ";\n"
    return Row("rest_checkin_page", f"REST filtered, ordered page of check-ins (GET {CHECKIN_PAGE_PATH})",
               ours, reference, _sql_side(ctx, "rest_checkin_page", script), target=0.7)


def rest_create_checkin(ctx: Context) -> Row:
    s = ctx.scale
    env = {"BENCH_PATH": "/team_checkins", "BENCH_TEAMS": str(s.teams), "BENCH_MEMBERS": str(s.members_per_team),
           "BENCH_ACTORS": str(s.actors)}
    sample = json.dumps({"actor_id": "p-1", "team_id": "t-1", "date": "2026-07-01", "next": ["Check the harness"]})

    def check(base_url: str, side: Side) -> str | None:
        status, body = http("POST", base_url + "/team_checkins", sample.encode())
        return None if status == 201 else f"POST /team_checkins answered {status}: {body[:200]!r}"

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "post_checkin.lua", env, ctx.load)

    reference = _http_side(ctx, ctx.minimal, check, run, write_rows=1)
    ours = _http_side(ctx, ctx.ours, check, run, write_rows=1)
    m = s.members_per_team
    script = (
        f"\\set t random(1, {s.teams})\n"
        f"\\set a ((:t - 1) * {m} + random(0, {m - 1})) % {s.actors} + 1\n"
        + statements.CREATE_CHECKINS.format(
            body="""'{"actor_id":"p-' || :a || '","team_id":"t-' || :t || '","date":"2026-07-01",'
                 || '"previously":["Closed the onboarding ticket","Paired on the importer"],'
                 || '"next":["Ship the importer","Review the API draft"],'
                 || '"blockers":["Waiting on staging access"]}'""")
        + ";\n"
    )
    return Row("rest_create_checkin", "REST create a check-in with its event (POST /team_checkins)", ours, reference,
               _sql_side(ctx, "rest_create_checkin", script, write_rows=1), target=0.5)


def bulk_body(scale: Scale, size: int = BULK_SIZE) -> str:
    rows = []
    for k in range(size):
        team = k % scale.teams + 1
        actor = ((team - 1) * scale.members_per_team + k % scale.members_per_team) % scale.actors + 1
        rows.append({"actor_id": f"p-{actor}", "team_id": f"t-{team}", "date": "2026-07-02",
                     "previously": [f"Imported item {k}", "Checked the totals"],
                     "next": [f"Import batch {k + 1}"],
                     # PostgREST wants the same keys in every object of a bulk insert.
                     "blockers": ["Waiting on the export"] if k % 7 == 0 else None})
    # ": " rather than ":" since pgbench would take `:null` in its script for a variable.
    return json.dumps(rows, separators=(",", ": "))


def rest_bulk_create(ctx: Context) -> Row:
    size = ctx.bulk_size
    body = bulk_body(ctx.scale, size)
    body_file = ctx.work_dir / "bulk.json"
    body_file.write_text(body)
    env = {"BENCH_PATH": "/team_checkins", "BENCH_BODY_FILE": str(body_file)}

    def check(base_url: str, side: Side) -> str | None:
        status, answer = http("POST", base_url + "/team_checkins", body.encode())
        return None if status == 201 else f"bulk POST /team_checkins answered {status}: {answer[:200]!r}"

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "post_body.lua", env, ctx.load)

    reference = _http_side(ctx, ctx.minimal, check, run, write_rows=size)
    ours = _http_side(ctx, ctx.ours, check, run, write_rows=size)
    script = statements.CREATE_CHECKINS.format(body="'" + body.replace("'", "''") + "'") + ";\n"
    return Row("rest_bulk_create", f"REST bulk create of {size:,} check-ins (POST /team_checkins, JSON array)",
               ours, reference, _sql_side(ctx, "rest_bulk_create", script, write_rows=size), target=0.5)


def _graphql_row(ctx: Context, key: str, title: str, ours_file: str, reference_file: str, *, write: bool,
                 target: float | None) -> Row:
    texts: dict[str, list[str]] = {}

    def side(endpoint: Endpoint, query_file: str) -> Side:
        query = (QUERIES / query_file).read_text()
        body_file = ctx.work_dir / f"{key}-{query_file}.json"
        body_file.write_text(json.dumps({"query": query}))
        env = {"BENCH_PATH": "/graphql", "BENCH_BODY_FILE": str(body_file)}

        def check(base_url: str, side: Side) -> str | None:
            data, problem = _graphql(base_url, query)
            if problem:
                return problem
            if not write:
                texts[endpoint.name] = _texts(data)
            return None

        def run(base_url: str) -> Measurement:
            return run_wrk(base_url + "/", "post_body.lua", env, ctx.load)

        return _http_side(ctx, endpoint, check, run, write_rows=1 if write else None)

    reference = side(ctx.postgraphile, reference_file)
    ours = side(ctx.ours_graphql, ours_file)
    if len(texts) == 2:
        theirs, mine = texts[ctx.postgraphile.name], texts[ctx.ours_graphql.name]
        if theirs != mine:
            ours.notes.append(f"the response holds other values than PostGraphile's ({len(mine)} strings vs "
                              f"{len(theirs)}): the two queries are not equivalent")
    return Row(key, title, ours, reference, None, target=target)


def graphql_nested(ctx: Context) -> Row:
    return _graphql_row(ctx, "graphql_nested_goals",
                        "GraphQL nested goal query (roots, children, latest 3 updates + actor, teams + members)",
                        "coco_nested_goals.graphql", "postgraphile_nested_goals.graphql", write=False, target=1.5)


def graphql_create(ctx: Context) -> Row:
    return _graphql_row(ctx, "graphql_create_checkin", "GraphQL createTeamCheckin mutation (row + event)",
                        "coco_create_checkin.graphql", "postgraphile_create_checkin.graphql", write=True, target=None)


def _same_as_reference(expected: dict[str, Any], rows: Any, side: Side) -> None:
    """The first implementation checked (the reference) sets what the others should answer."""
    if "rows" not in expected:
        expected["rows"] = rows
    elif rows != expected["rows"]:
        side.notes.append(f"the answer differs from the reference's: {json.dumps(rows)[:300]}")


def median_row(runs: list[Row]) -> Row:
    """One row from repeated runs of it: each side's run with the median throughput (its
    latencies and notes come with it), so a burst of noise in one run does not decide."""
    first = runs[0]

    def pick(sides: list[Side | None]) -> Side | None:
        measured = sorted((s for s in sides if s is not None and s.measurement is not None),
                          key=lambda s: s.measurement.requests_per_s)  # type: ignore[union-attr]
        if not measured:
            return sides[0]
        chosen = measured[(len(measured) - 1) // 2]
        chosen.runs = [s.measurement.requests_per_s for s in measured]  # type: ignore[union-attr]
        return chosen

    ours, reference = pick([r.ours for r in runs]), pick([r.reference for r in runs])
    assert ours is not None and reference is not None
    return Row(first.key, first.title, ours, reference, pick([r.sql for r in runs]), target=first.target)


SCENARIOS: dict[str, Callable[[Context], Row]] = {
    "rest_read_one": rest_read_one,
    "rest_checkin_page": rest_checkin_page,
    "rest_create_checkin": rest_create_checkin,
    "rest_bulk_create": rest_bulk_create,
    "graphql_nested_goals": graphql_nested,
    "graphql_create_checkin": graphql_create,
}
