"""The SQL of the REST scenarios, shared by the minimal handler and the pgbench scripts.

The reads are the statements api/store/select.py renders for the same requests (one
statement, JSON built by PostgreSQL with JSON_OBJECT ... ABSENT ON NULL and
json_agg), so the minimal handler is the floor for exactly that SQL. The write
is one statement doing what api/store/writes.py + api/store/events.py do per transaction:
insert the rows, take the commit-order lock, draw one event cursor per row,
insert the events, notify. It takes a JSON object or array of check-ins as text.

Placeholders are `{name}`, formatted to `$1` for asyncpg or to a pgbench expression.
"""

from __future__ import annotations

from api.store.events import EVENT_LOCK_KEY, NOTIFY_CHANNEL

READ_ACTOR = """
SELECT coalesce(json_agg(JSON_OBJECT('id' : s0.id, 'actor_type' : s0.actor_type, 'name' : s0.name,
                                     'role' : s0.role, 'timezone' : s0.timezone ABSENT ON NULL)),
                '[]'::json)::text
FROM (SELECT id, actor_type, name, role, timezone FROM actors WHERE id = {id}) AS s0
"""

READ_CHECKIN_PAGE = """
SELECT coalesce(json_agg(JSON_OBJECT('id' : s0.id, 'actor_id' : s0.actor_id, 'team_id' : s0.team_id,
                                     'date' : s0.date, 'next' : s0.next, 'previously' : s0.previously,
                                     'blockers' : s0.blockers, 'created_at' : s0.created_at ABSENT ON NULL)
                         ORDER BY s0.date DESC),
                '[]'::json)::text
FROM (SELECT id, actor_id, team_id, date, next, previously, blockers, created_at
      FROM team_checkins
      WHERE team_id = {team_id} AND date >= {since}::varchar::date
      ORDER BY date DESC
      LIMIT {limit}) AS s0
"""

# GET /goal_story_updates?select=status,count(): one group per status, as select.py renders a grouped read.
COUNT_UPDATES_BY_STATUS = """
SELECT coalesce(json_agg(JSON_OBJECT('status' : s0.status, 'count' : s0.count)), '[]'::json)::text
FROM (SELECT status, count(*) AS count FROM goal_story_updates GROUP BY status) AS s0
"""


def team_coverage() -> tuple[str, tuple[str, ...]]:
    """The team coverage view's statement for a caller who sees every row, as our server runs it
    (api/store/views.py), compiled for asyncpg: its text and the names of its $n parameters in order."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    from api.store.views import TEAM_COVERAGE

    compiled = TEAM_COVERAGE.everything.compile(dialect=dialect())
    return compiled.string, tuple(compiled.positiontup or ())


CREATE_CHECKINS = f"""
WITH body AS (
    SELECT CASE WHEN json_typeof(doc) = 'array' THEN doc ELSE json_build_array(doc) END AS rows
    FROM (SELECT ({{body}})::json AS doc) AS given
), inserted AS (
    INSERT INTO team_checkins (id, actor_id, team_id, date, next, previously, blockers, created_at)
    SELECT coalesce(r.id, gen_random_uuid()::text), r.actor_id, r.team_id, r.date, r.next, r.previously,
           r.blockers, coalesce(r.created_at, now())
    FROM body, json_populate_recordset(NULL::team_checkins, body.rows) AS r
    RETURNING id, actor_id, created_at
), locked AS (
    -- Only once every row is in (as api/store/events.py does, last before commit): writers
    -- serialise over the events alone, not over the whole insert.
    SELECT pg_advisory_xact_lock({EVENT_LOCK_KEY}) AS done FROM (SELECT count(*) FROM inserted) AS all_in
), events AS (
    INSERT INTO coordination_events (id, seq, actor_id, event_type, reference_id, occurred_at)
    SELECT gen_random_uuid()::text, nextval('coordination_event_seq'), i.actor_id, 'team_checkin', i.id, i.created_at
    FROM inserted AS i, locked
    RETURNING seq
)
SELECT count(*), pg_notify('{NOTIFY_CHANNEL}', max(seq)::text) FROM events
"""


def graphql_read(query: str) -> str:
    """The one statement our server runs for a GraphQL query that the compiled path answers
    (api/graphql/compiled.py plans it, api/store/select.py renders it), for a caller who sees every row,
    with its values written in: what pgbench runs for a GraphQL read's SQL-only figure."""
    from graphql import parse
    from graphql.execution.values import get_variable_values
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    from api.config import Settings
    from api.graphql.compiled import _operation, compile_operation
    from api.graphql.connections import Limits
    from api.graphql.schema import make_schema
    from api.graphql.strawberry_adapter import graphql_schema
    from api.store.select import bundle_statement

    settings = Settings()
    schema = make_schema(settings, subscription=None)
    operation, fragments = _operation(parse(query), None)
    variables = get_variable_values(graphql_schema(schema), operation.variable_definitions or (), {})
    if isinstance(variables, list):
        raise ValueError("; ".join(error.message for error in variables))
    limits = Limits(max_page_size=settings.graphql_max_page_size, default_page_size=settings.graphql_default_page_size)
    statement = bundle_statement(compile_operation(schema, operation, fragments, variables, limits))
    return str(statement.compile(dialect=dialect(), compile_kwargs={"literal_binds": True}))
