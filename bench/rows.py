"""What a benchmark row is, and how one side of it is checked and measured.

A row holds one `Side` per implementation. A side is a measurement, or the reason
it was not measured ("skipped: endpoint not available"), so one missing endpoint
never stops the run. Before measuring, a side answers one request by hand (the
scenario's check), because a fast wrong answer is not a result; after a write
measurement, the rows and events it left are counted.
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

from bench.cluster import BenchDatabase, reset_writes, written_since
from bench.loadgen import Load, LoadGeneratorError, Measurement, run_pgbench
from bench.seed import Scale

PGBENCH_SCRIPTS = Path(__file__).resolve().parent / ".data" / "pgbench"
BULK_SIZE = 1000
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
    # Or (the rows at a larger scale, whose reference is our server on the 1x data): our p50 must be at
    # most this multiple of the reference's.
    p50_limit: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.ours.measurement is None or self.reference.measurement is None:
            return None
        if not self.reference.measurement.requests_per_s:
            return None
        return self.ours.measurement.requests_per_s / self.reference.measurement.requests_per_s

    @property
    def p50_ratio(self) -> float | None:
        """Our p50 over the reference's."""
        if self.ours.measurement is None or self.reference.measurement is None:
            return None
        ours, theirs = (s.measurement.latency_ms.get("p50") for s in (self.ours, self.reference))  # type: ignore[union-attr]
        return ours / theirs if ours is not None and theirs else None

    @property
    def met(self) -> bool | None:
        clean = all(s.measurement is not None and s.measurement.errors == 0 for s in (self.ours, self.reference))
        if self.p50_limit is not None:
            p50_ratio = self.p50_ratio
            return None if p50_ratio is None else p50_ratio <= self.p50_limit and clean
        ratio = self.ratio
        if ratio is None or self.target is None:
            return None
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
            "p50_ratio": round(self.p50_ratio, 3) if self.p50_ratio is not None else None,
            "p50_limit": self.p50_limit,
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
    postgraphile: Endpoint  # PostGraphile 4
    work_dir: Path
    with_sql: bool = True
    bulk_size: int = BULK_SIZE
    # The same two servers with DATABASE_URL through PgBouncer in transaction mode (the pooled rows).
    ours_pooled: Endpoint = field(default_factory=lambda: Endpoint("coco serve via PgBouncer", None))
    minimal_pooled: Endpoint = field(default_factory=lambda: Endpoint("minimal handler via PgBouncer", None))
    postgraphile5: Endpoint = field(default_factory=lambda: Endpoint("PostGraphile 5", None))
    # A second `coco serve` with access control on (the JWT rows), and the HS256 secret it checks tokens with.
    ours_jwt: Endpoint = field(default_factory=lambda: Endpoint("coco serve, access control on", None))
    jwt_secret: str | None = None
    # With --scale N > 1: a second `coco serve` on the database with N times the history (the scale rows'
    # "ours"; their reference is `ours`, on the 1x data), and that database.
    ours_scaled: Endpoint = field(default_factory=lambda: Endpoint("coco serve, scaled data", None))
    db_scaled: BenchDatabase | None = None

    @property
    def scale(self) -> Scale:
        return self.db.scale


# -- HTTP checks ---------------------------------------------------------------------------


def http(
    method: str, url: str, body: bytes | None = None, timeout: float = 60, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    sent = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers={**sent, **(headers or {})})
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


def graphql_data(url: str, query: str) -> tuple[dict[str, Any] | None, str | None]:
    """The data of one GraphQL request, or what went wrong."""
    status, body = http("POST", url + "/graphql", json.dumps({"query": query}).encode())
    try:
        answer = json.loads(body)
    except ValueError:
        return None, f"status {status}, not JSON: {body[:200]!r}"
    if status != 200 or answer.get("errors") or not answer.get("data"):
        return None, f"status {status}: {json.dumps(answer.get('errors') or answer)[:300]}"
    return answer["data"], None


def texts(value: Any) -> list[str]:
    """Every string in a JSON document, sorted: equal for two spellings of the same rows."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return sorted(s for v in value.values() for s in texts(v))
    if isinstance(value, list):
        return sorted(s for v in value for s in texts(v))
    return []


def rows_by_id(body: bytes) -> list[Any]:
    rows = json.loads(body)
    return sorted(rows, key=lambda r: r.get("id", "")) if isinstance(rows, list) else rows


# -- measuring one side ----------------------------------------------------------------------


def measure(side: Side, run: Callable[[], Measurement]) -> Side:
    try:
        side.measurement = run()
    except (LoadGeneratorError, OSError) as error:
        side.skipped = f"failed: {error}"[:500]
    else:
        if side.measurement.errors:
            side.notes.append(f"{side.measurement.errors} failed requests: {side.measurement.error_detail}")
        if not side.measurement.requests:
            side.notes.append(
                f"no request completed within {side.measurement.duration_s:.0f} s: the latencies are unknown, not zero"
            )
    return side


def measure_write(ctx: Context, side: Side, run: Callable[[], Measurement], rows_per_request: int) -> Side:
    asyncio.run(reset_writes(ctx.db.url, ctx.db.seed_max_seq))
    measure(side, run)
    written = asyncio.run(written_since(ctx.db.url, ctx.db.seed_max_seq))
    side.written = written
    if written["team_checkins"] != written["coordination_events"]:
        side.notes.append(f"rows and events differ: {written}")
    if side.measurement is not None and written["team_checkins"] < side.measurement.requests * rows_per_request:
        side.notes.append(f"fewer rows than requests x {rows_per_request}: {written}")
    asyncio.run(reset_writes(ctx.db.url, ctx.db.seed_max_seq))
    return side


def http_side(
    ctx: Context,
    endpoint: Endpoint,
    check: Callable[[str, Side], str | None],
    run: Callable[[str], Measurement],
    write_rows: int | None = None,
) -> Side:
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
        return measure(side, lambda: run(base_url))
    return measure_write(ctx, side, lambda: run(base_url), write_rows)


def sql_side(ctx: Context, key: str, script: str, write_rows: int | None = None) -> Side | None:
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
        return measure(side, run)
    return measure_write(ctx, side, run, write_rows)


def median_row(runs: list[Row]) -> Row:
    """One row from repeated runs of it: each side's run with the median throughput (its
    latencies and notes come with it), so a burst of noise in one run does not decide."""
    first = runs[0]

    def pick(sides: list[Side | None]) -> Side | None:
        measured = sorted(
            (s for s in sides if s is not None and s.measurement is not None),
            key=lambda s: s.measurement.requests_per_s,
        )  # type: ignore[union-attr]
        if not measured:
            return sides[0]
        chosen = measured[(len(measured) - 1) // 2]
        chosen.runs = [s.measurement.requests_per_s for s in measured]  # type: ignore[union-attr]
        return chosen

    ours, reference = pick([r.ours for r in runs]), pick([r.reference for r in runs])
    assert ours is not None and reference is not None
    return Row(
        first.key,
        first.title,
        ours,
        reference,
        pick([r.sql for r in runs]),
        target=first.target,
        p50_limit=first.p50_limit,
    )
