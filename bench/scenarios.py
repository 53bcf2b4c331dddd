"""The rows of the benchmark: each scenario against our server and its reference, side by side.

Each scenario states its request, the check one answer must pass, the wrk script
that loads it and, for the REST rows, the pgbench script of the same SQL.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.edge import tokens
from api.edge.auth import Access
from bench import replay, statements
from bench.loadgen import Measurement, run_wrk
from bench.rows import (
    BULK_SIZE,
    Context,
    Endpoint,
    Row,
    Side,
    graphql_data,
    http,
    http_side,
    rows_by_id,
    sql_side,
    texts,
)
from bench.seed import Scale

QUERIES = Path(__file__).resolve().parent / "queries"
CHECKIN_PAGE_TEAM = "t-7"
CHECKIN_PAGE_QUERY = "date=gte.2026-01-01&order=date.desc&limit=50"
CHECKIN_PAGE_PATH = f"/team_checkins?team_id=eq.{CHECKIN_PAGE_TEAM}&{CHECKIN_PAGE_QUERY}"
# The same page of every team, and of another team: what a team-scoped token must narrow to its team.
ALL_TEAMS_PAGE_PATH = f"/team_checkins?{CHECKIN_PAGE_QUERY}"
OTHER_TEAM_PAGE_PATH = f"/team_checkins?team_id=eq.t-8&{CHECKIN_PAGE_QUERY}"
# Long enough for any run with --repeat; minted afresh for each row anyway.
JWT_LIFETIME_S = 6 * 3600


def rest_read_one(ctx: Context) -> Row:
    env = {"BENCH_PATH": "/actors?id=eq.p-%d", "BENCH_ROTATE": str(ctx.scale.actors)}
    expected: dict[str, Any] = {}

    def check(base_url: str, side: Side) -> str | None:
        status, body = http("GET", base_url + "/actors?id=eq.p-7")
        if status != 200:
            return f"GET /actors?id=eq.p-7 answered {status}: {body[:200]!r}"
        rows = rows_by_id(body)
        if len(rows) != 1:
            return f"expected one actor, got {body[:200]!r}"
        _same_as_reference(expected, rows, side)
        return None

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "get_rotating.lua", env, ctx.load)

    reference = http_side(ctx, ctx.minimal, check, run)
    ours = http_side(ctx, ctx.ours, check, run)
    script = f"\\set n random(1, {ctx.scale.actors})\n" + statements.READ_ACTOR.format(id="'p-' || :n") + ";\n"
    return Row(
        "rest_read_one",
        "REST read one by id (GET /actors?id=eq.<id>, rotating ids)",
        ours,
        reference,
        sql_side(ctx, "rest_read_one", script),
        target=0.85,
    )


def _checkin_page_check(
    expected: dict[str, Any], headers: dict[str, str] | None = None
) -> Callable[[str, Side], str | None]:
    """The check of one page answer (sent with `headers`): non-empty, of the page's team only, and the
    same rows as the first side checked."""

    def check(base_url: str, side: Side) -> str | None:
        status, body = http("GET", base_url + CHECKIN_PAGE_PATH, headers=headers)
        if status != 200:
            return f"GET {CHECKIN_PAGE_PATH} answered {status}: {body[:200]!r}"
        rows = rows_by_id(body)
        if not rows:
            return "the page is empty"
        if _teams_of(body) != {CHECKIN_PAGE_TEAM}:
            return f"the page holds other teams' check-ins: {sorted(_teams_of(body))}"
        _same_as_reference(expected, rows, side)
        return None

    return check


def _checkin_page_run(ctx: Context, env: dict[str, str] | None = None) -> Callable[[str], Measurement]:
    """wrk on the page request (with `env`'s extra variables: a token, say)."""
    page = {"BENCH_PATH": CHECKIN_PAGE_PATH, "BENCH_ROTATE": "1", **(env or {})}

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "get_rotating.lua", page, ctx.load)

    return run


def rest_checkin_page(ctx: Context) -> Row:
    check, run = _checkin_page_check({}), _checkin_page_run(ctx)
    reference = http_side(ctx, ctx.minimal, check, run)
    ours = http_side(ctx, ctx.ours, check, run)
    script = statements.READ_CHECKIN_PAGE.format(team_id="'t-7'", since="'2026-01-01'", limit="50") + ";\n"
    return Row(
        "rest_checkin_page",
        f"REST filtered, ordered page of check-ins (GET {CHECKIN_PAGE_PATH})",
        ours,
        reference,
        sql_side(ctx, "rest_checkin_page", script),
        target=0.85,
    )


def bearer(ctx: Context, teams: list[str] | None) -> str:
    """The Authorization header of a read token as `coco token create --scope read [--teams ...]` mints it."""
    if not ctx.jwt_secret:
        raise ValueError("no JWT secret: the server with access control on was not configured")
    token = tokens.create(Access(jwt_secret=ctx.jwt_secret), scope="read", expires_s=JWT_LIFETIME_S, teams=teams)
    return f"Bearer {token}"


def _teams_of(body: bytes) -> set[str]:
    rows = json.loads(body)
    return {row.get("team_id") for row in rows} if isinstance(rows, list) else set()


def _checkin_page_jwt(ctx: Context, key: str, title: str, teams: list[str] | None) -> Row:
    """rest_checkin_page with a read token against the server with access control on; the reference
    is our server with access control off on the same request, so the ratio is what the JWT check
    (and, with `teams`, the team scope) costs."""
    expected: dict[str, Any] = {}
    reference = http_side(ctx, ctx.ours, _checkin_page_check(expected), _checkin_page_run(ctx))
    try:
        authorization = bearer(ctx, teams)
    except ValueError as error:
        ours = Side(ctx.ours_jwt.name, skipped=f"skipped: {error}")
        return Row(key, title, ours, reference, None, target=None)
    signed = {"Authorization": authorization}
    check_page = _checkin_page_check(expected, signed)

    def check_jwt(base_url: str, side: Side) -> str | None:
        status, body = http("GET", base_url + CHECKIN_PAGE_PATH)
        if status != 401:
            return f"without a token GET {CHECKIN_PAGE_PATH} answered {status}, not 401: access control is not on"
        problem = check_page(base_url, side)
        if problem:
            return problem
        status, body = http("GET", base_url + ALL_TEAMS_PAGE_PATH, headers=signed)
        if status != 200:
            return f"GET {ALL_TEAMS_PAGE_PATH} with the token answered {status}: {body[:200]!r}"
        seen = _teams_of(body)
        if teams is not None and not seen <= set(teams):
            return f"the token of teams {teams} read other teams' check-ins: {sorted(seen)}"
        if teams is None and len(seen) < 2:
            return f"the token without teams read only teams {sorted(seen)} of the unfiltered page"
        status, body = http("GET", base_url + OTHER_TEAM_PAGE_PATH, headers=signed)
        if status != 200:
            return f"GET {OTHER_TEAM_PAGE_PATH} with the token answered {status}: {body[:200]!r}"
        if teams is not None and json.loads(body):
            return f"the token of teams {teams} read another team's page: {body[:200]!r}"
        if teams is None and not json.loads(body):
            return "the token without teams read an empty page of another team"
        return None

    ours = http_side(ctx, ctx.ours_jwt, check_jwt, _checkin_page_run(ctx, {"BENCH_AUTHORIZATION": authorization}))
    return Row(key, title, ours, reference, None, target=None)


def rest_checkin_page_jwt_scoped(ctx: Context) -> Row:
    return _checkin_page_jwt(
        ctx,
        "rest_checkin_page_jwt_scoped",
        f"REST filtered, ordered page of check-ins with a read JWT scoped to team {CHECKIN_PAGE_TEAM}, "
        "against our server with access control off",
        teams=[CHECKIN_PAGE_TEAM],
    )


def rest_checkin_page_jwt_unscoped(ctx: Context) -> Row:
    return _checkin_page_jwt(
        ctx,
        "rest_checkin_page_jwt_unscoped",
        "REST filtered, ordered page of check-ins with a read JWT without teams, "
        "against our server with access control off",
        teams=None,
    )


def rest_create_checkin(ctx: Context) -> Row:
    s = ctx.scale
    env = {
        "BENCH_PATH": "/team_checkins",
        "BENCH_TEAMS": str(s.teams),
        "BENCH_MEMBERS": str(s.members_per_team),
        "BENCH_ACTORS": str(s.actors),
    }
    sample = json.dumps({"actor_id": "p-1", "team_id": "t-1", "date": "2026-07-01", "next": ["Check the harness"]})

    def check(base_url: str, side: Side) -> str | None:
        status, body = http("POST", base_url + "/team_checkins", sample.encode())
        return None if status == 201 else f"POST /team_checkins answered {status}: {body[:200]!r}"

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "post_checkin.lua", env, ctx.load)

    reference = http_side(ctx, ctx.minimal, check, run, write_rows=1)
    ours = http_side(ctx, ctx.ours, check, run, write_rows=1)
    m = s.members_per_team
    script = (
        f"\\set t random(1, {s.teams})\n"
        f"\\set a ((:t - 1) * {m} + random(0, {m - 1})) % {s.actors} + 1\n"
        + statements.CREATE_CHECKINS.format(
            body="""'{"actor_id":"p-' || :a || '","team_id":"t-' || :t || '","date":"2026-07-01",'
                 || '"previously":["Closed the onboarding ticket","Paired on the importer"],'
                 || '"next":["Ship the importer","Review the API draft"],'
                 || '"blockers":["Waiting on staging access"]}'"""
        )
        + ";\n"
    )
    return Row(
        "rest_create_checkin",
        "REST create a check-in with its event (POST /team_checkins)",
        ours,
        reference,
        sql_side(ctx, "rest_create_checkin", script, write_rows=1),
        target=0.7,
    )


# Four weeks of one team (every team has the same ten members), all of them in the past at `as_of`.
COVERAGE_PATH = "/rpc/team_coverage?team_id=t-7&from=2026-06-03&to=2026-06-30&as_of=2026-07-01T12:00:00Z"
COUNT_BY_STATUS_PATH = "/goal_story_updates?select=status,count()"


def _same_json_row(key: str, title: str, path: str, ctx: Context, answered: Callable[[Any], str | None]) -> Row:
    """A read of one fixed URL, our server against the minimal handler running our SQL: each answer
    must pass `answered` (None when it is right), and the two must hold the same JSON."""
    env = {"BENCH_PATH": path, "BENCH_ROTATE": "1"}
    expected: dict[str, Any] = {}

    def check(base_url: str, side: Side) -> str | None:
        status, body = http("GET", base_url + path)
        if status != 200:
            return f"GET {path} answered {status}: {body[:200]!r}"
        value = json.loads(body)
        problem = answered(value)
        if problem:
            return problem
        comparable = sorted(value, key=json.dumps) if isinstance(value, list) else value
        _same_as_reference(expected, comparable, side)
        return None

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "get_rotating.lua", env, ctx.load)

    reference = http_side(ctx, ctx.minimal, check, run)
    ours = http_side(ctx, ctx.ours, check, run)
    return Row(key, title, ours, reference, None, target=None)


def rest_count_by_status(ctx: Context) -> Row:
    def answered(value: Any) -> str | None:
        if not isinstance(value, list) or not value or any(set(g) != {"status", "count"} for g in value):
            return f"expected [{{status, count}}, ...], got {json.dumps(value)[:200]}"
        return None

    return _same_json_row(
        "rest_count_by_status",
        f"REST aggregate: updates counted by status (GET {COUNT_BY_STATUS_PATH})",
        COUNT_BY_STATUS_PATH,
        ctx,
        answered,
    )


def rest_team_coverage(ctx: Context) -> Row:
    def answered(value: Any) -> str | None:
        days = value.get("days") if isinstance(value, dict) else None
        if not isinstance(days, list) or len(days) != 28:
            return f"expected 28 days of coverage, got {json.dumps(value)[:200]}"
        return None

    return _same_json_row(
        "rest_team_coverage",
        "Team coverage over four weeks of a team of 10 (GET /rpc/team_coverage)",
        COVERAGE_PATH,
        ctx,
        answered,
    )


def bulk_body(scale: Scale, size: int = BULK_SIZE) -> str:
    rows = []
    for k in range(size):
        team = k % scale.teams + 1
        actor = ((team - 1) * scale.members_per_team + k % scale.members_per_team) % scale.actors + 1
        rows.append(
            {
                "actor_id": f"p-{actor}",
                "team_id": f"t-{team}",
                "date": "2026-07-02",
                "previously": [f"Imported item {k}", "Checked the totals"],
                "next": [f"Import batch {k + 1}"],
                # PostgREST wants the same keys in every object of a bulk insert.
                "blockers": ["Waiting on the export"] if k % 7 == 0 else None,
            }
        )
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

    reference = http_side(ctx, ctx.minimal, check, run, write_rows=size)
    ours = http_side(ctx, ctx.ours, check, run, write_rows=size)
    script = statements.CREATE_CHECKINS.format(body="'" + body.replace("'", "''") + "'") + ";\n"
    return Row(
        "rest_bulk_create",
        f"REST bulk create of {size:,} check-ins (POST /team_checkins, JSON array)",
        ours,
        reference,
        sql_side(ctx, "rest_bulk_create", script, write_rows=size),
        target=0.5,
    )


def _graphql_row(
    ctx: Context,
    key: str,
    title: str,
    ours_file: str,
    reference_file: str,
    *,
    write: bool,
    target: float | None,
    reference: Endpoint | None = None,
) -> Row:
    """Our GraphQL API against a PostGraphile (4 unless `reference` says otherwise); for a read, both
    answers must hold the same values, else the row says the two queries are not equivalent."""
    theirs_endpoint = reference or ctx.postgraphile
    values: dict[str, list[str]] = {}

    def measured(endpoint: Endpoint, query_file: str) -> Side:
        query = (QUERIES / query_file).read_text()
        body_file = ctx.work_dir / f"{key}-{query_file}.json"
        body_file.write_text(json.dumps({"query": query}))
        env = {"BENCH_PATH": "/graphql", "BENCH_BODY_FILE": str(body_file)}

        def check(base_url: str, side: Side) -> str | None:
            data, problem = graphql_data(base_url, query)
            if problem:
                return problem
            if not write:
                values[endpoint.name] = texts(data)
            return None

        def run(base_url: str) -> Measurement:
            return run_wrk(base_url + "/", "post_body.lua", env, ctx.load)

        return http_side(ctx, endpoint, check, run, write_rows=1 if write else None)

    theirs_side = measured(theirs_endpoint, reference_file)
    ours = measured(ctx.ours_graphql, ours_file)
    # A read is one statement (the compiled path): alone under pgbench it is the floor of our side.
    sql = None
    if not write and ours.measurement is not None:
        sql = sql_side(ctx, key, statements.graphql_read((QUERIES / ours_file).read_text()) + ";\n")
    if len(values) == 2:
        theirs, mine = values[theirs_endpoint.name], values[ctx.ours_graphql.name]
        if theirs != mine:
            ours.notes.append(
                f"the response holds other values than {theirs_endpoint.name}'s ({len(mine)} strings vs "
                f"{len(theirs)}): the two queries are not equivalent"
            )
    return Row(key, title, ours, theirs_side, sql, target=target)


NESTED_TITLE = "GraphQL nested goal query (roots, children, latest 3 updates + actor, teams + members)"
CREATE_TITLE = "GraphQL createTeamCheckin mutation (row + event)"


def graphql_nested(ctx: Context) -> Row:
    return _graphql_row(
        ctx,
        "graphql_nested_goals",
        NESTED_TITLE,
        "coco_nested_goals.graphql",
        "postgraphile_nested_goals.graphql",
        write=False,
        target=4.0,
    )


def graphql_create(ctx: Context) -> Row:
    return _graphql_row(
        ctx,
        "graphql_create_checkin",
        CREATE_TITLE,
        "coco_create_checkin.graphql",
        "postgraphile_create_checkin.graphql",
        write=True,
        target=None,
    )


# PostGraphile 5 under its V4 preset answers v4's spelling of each query, so the same documents serve.
def graphql_nested_pg5(ctx: Context) -> Row:
    return _graphql_row(
        ctx,
        "graphql_nested_goals_pg5",
        NESTED_TITLE + ", against PostGraphile 5",
        "coco_nested_goals.graphql",
        "postgraphile_nested_goals.graphql",
        write=False,
        target=4.0,
        reference=ctx.postgraphile5,
    )


def graphql_create_pg5(ctx: Context) -> Row:
    return _graphql_row(
        ctx,
        "graphql_create_checkin_pg5",
        CREATE_TITLE + ", against PostGraphile 5",
        "coco_create_checkin.graphql",
        "postgraphile_create_checkin.graphql",
        write=True,
        target=1.0,
        reference=ctx.postgraphile5,
    )


def _same_as_reference(expected: dict[str, Any], rows: Any, side: Side) -> None:
    """The first implementation checked (the reference) sets what the others should answer."""
    if "rows" not in expected:
        expected["rows"] = rows
    elif rows != expected["rows"]:
        side.notes.append(f"the answer differs from the reference's: {json.dumps(rows)[:300]}")


def pooled(scenario: Callable[[Context], Row], key: str, target: float) -> Callable[[Context], Row]:
    """The scenario with both servers' DATABASE_URL through the same PgBouncer in transaction mode:
    ours with COCO_DB_POOLER=transaction (DIRECT_DATABASE_URL to PostgreSQL for LISTEN), the minimal
    handler with asyncpg's statement cache off, as PgBouncer's transaction mode needs of any client."""

    def run(ctx: Context) -> Row:
        row = scenario(dataclasses.replace(ctx, ours=ctx.ours_pooled, minimal=ctx.minimal_pooled, with_sql=False))
        title = row.title + ", both through PgBouncer 1.18 in transaction mode"
        return Row(key, title, row.ours, row.reference, None, target=target)

    return run


# -- the same requests at a larger scale (--scale N) ------------------------------------------------------

# The p50 at N times the history must stay within this multiple of the p50 at 1x (issue 19).
SCALE_P50_LIMIT = 1.5
# An early cursor: the replay reads from the start of the history, whatever its length.
REPLAY_AFTER = 1000
REPLAY_EVENTS = 1000


def _scaled_row(
    ctx: Context, key: str, title: str, check: Callable[[str, Side], str | None], run: Callable[[str], Measurement]
) -> Row:
    """Our server on the data N times as long (ours) against our server on the 1x data (reference), the same
    request; each side's answer checked on its own (the data differ, so the answers may)."""
    factor = ctx.db_scaled.scale.checkins // max(ctx.scale.checkins, 1) if ctx.db_scaled else None
    if ctx.db_scaled is None or ctx.ours.unavailable or ctx.ours.base_url is None:
        reference = Side(ctx.ours.name + ", 1x data", skipped=ctx.ours.unavailable or "skipped: no 1x server")
    else:
        reference = http_side(ctx, dataclasses.replace(ctx.ours, name=ctx.ours.name + ", 1x data"), check, run)
    if ctx.db_scaled is None:
        ours = Side(ctx.ours_scaled.name, skipped="skipped: no scaled database (run with --scale N, N > 1)")
    else:
        ours = http_side(ctx, ctx.ours_scaled, check, run)
    return Row(key, f"{title}, {factor}x data against 1x", ours, reference, None, p50_limit=SCALE_P50_LIMIT)


def scaled_rest_checkin_page(ctx: Context) -> Row:
    def check(base_url: str, side: Side) -> str | None:
        return _checkin_page_check({})(base_url, side)

    return _scaled_row(
        ctx, "scaled_rest_checkin_page", f"REST check-in page (GET {CHECKIN_PAGE_PATH})", check, _checkin_page_run(ctx)
    )


def _scaled_graphql(
    ctx: Context, key: str, title: str, query_file: str, answered: Callable[[dict[str, Any]], str | None]
) -> Row:
    query = (QUERIES / query_file).read_text()
    body_file = ctx.work_dir / f"{key}.json"
    body_file.write_text(json.dumps({"query": query}))
    env = {"BENCH_PATH": "/graphql", "BENCH_BODY_FILE": str(body_file)}

    def check(base_url: str, side: Side) -> str | None:
        data, problem = graphql_data(base_url, query)
        return problem or answered(data or {})

    def run(base_url: str) -> Measurement:
        return run_wrk(base_url + "/", "post_body.lua", env, ctx.load)

    return _scaled_row(ctx, key, title, check, run)


def scaled_graphql_nested_goals(ctx: Context) -> Row:
    def answered(data: dict[str, Any]) -> str | None:
        roots = data.get("goalStories", {}).get("nodes", [])
        updates = [u for r in roots for c in r["children"]["nodes"] for u in c["updates"]["nodes"]]
        return None if roots and updates else f"no roots or no updates: {json.dumps(data)[:200]}"

    return _scaled_graphql(ctx, "scaled_graphql_nested_goals", NESTED_TITLE, "coco_nested_goals.graphql", answered)


def scaled_graphql_team_coverage(ctx: Context) -> Row:
    def answered(data: dict[str, Any]) -> str | None:
        days = (data.get("teamCoverage") or {}).get("days")
        if not isinstance(days, list) or len(days) != 28 or not any(d["checkedIn"] for d in days):
            return f"expected 28 days of coverage with check-ins, got {json.dumps(data)[:200]}"
        return None

    return _scaled_graphql(
        ctx,
        "scaled_graphql_team_coverage",
        "GraphQL teamCoverage, the dashboard's selection: four weeks of a team of 10",
        "coco_team_coverage.graphql",
        answered,
    )


def scaled_event_replay(ctx: Context) -> Row:
    def check(base_url: str, side: Side) -> str | None:
        return replay.check(base_url, REPLAY_AFTER, REPLAY_EVENTS)

    def run(base_url: str) -> Measurement:
        return replay.run(base_url, REPLAY_AFTER, REPLAY_EVENTS, ctx.load)

    return _scaled_row(
        ctx,
        "scaled_event_replay",
        f"Event replay after an old cursor (GET /coordination_events?after={REPLAY_AFTER}, "
        f"text/event-stream, the first {REPLAY_EVENTS:,} events, {replay.CLIENTS} clients)",
        check,
        run,
    )


# Run by `--scale N` (N > 1), unless --only names others.
SCALED: dict[str, Callable[[Context], Row]] = {
    "scaled_rest_checkin_page": scaled_rest_checkin_page,
    "scaled_graphql_nested_goals": scaled_graphql_nested_goals,
    "scaled_graphql_team_coverage": scaled_graphql_team_coverage,
    "scaled_event_replay": scaled_event_replay,
}

SCENARIOS: dict[str, Callable[[Context], Row]] = {
    "rest_read_one": rest_read_one,
    "rest_checkin_page": rest_checkin_page,
    "rest_checkin_page_jwt_scoped": rest_checkin_page_jwt_scoped,
    "rest_checkin_page_jwt_unscoped": rest_checkin_page_jwt_unscoped,
    "rest_create_checkin": rest_create_checkin,
    "rest_bulk_create": rest_bulk_create,
    "rest_count_by_status": rest_count_by_status,
    "rest_team_coverage": rest_team_coverage,
    "graphql_nested_goals": graphql_nested,
    "graphql_create_checkin": graphql_create,
    "graphql_nested_goals_pg5": graphql_nested_pg5,
    "graphql_create_checkin_pg5": graphql_create_pg5,
    "pooled_rest_read_one": pooled(rest_read_one, "pooled_rest_read_one", target=0.6),
    "pooled_rest_create_checkin": pooled(rest_create_checkin, "pooled_rest_create_checkin", target=0.6),
    **SCALED,
}
