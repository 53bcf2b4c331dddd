"""PostGraphile 4 as the reference GraphQL server, on the benchmark database.

PostGraphile sees the tables as they are, so two things the CoCo schema has
need a bench-only helper in the database (written by the seed, see cluster.py):

- array references (goal story team_ids, team member_ids) are not foreign keys;
  PostGraphile's idiom for them is a computed column, a STABLE SQL function
  `<table>_<field>(row)`, which it inlines into its one SQL statement;
- its `createTeamCheckin` inserts the row only; a trigger makes it record the
  coordination event in the same transaction, with the same commit-order lock as
  api/store/events.py, so that both servers do the same work per mutation. The trigger
  fires only for PostGraphile's connections (application_name), never for ours.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from api.store.events import EVENT_LOCK_KEY, NOTIFY_CHANNEL

BENCH_DIR = Path(__file__).resolve().parent
EXECUTABLE = BENCH_DIR / ".node" / "node_modules" / ".bin" / "postgraphile"
APPLICATION_NAME = "bench_postgraphile"

# Bump when FIXTURES change: cached databases are rebuilt.
FIXTURES_VERSION = 1
FIXTURES = [
    """
    CREATE FUNCTION goal_stories_teams(story goal_stories) RETURNS SETOF teams
    LANGUAGE sql STABLE AS $$
        SELECT t.* FROM unnest(story.team_ids) WITH ORDINALITY AS ref(id, position)
        JOIN teams AS t ON t.id = ref.id ORDER BY ref.position
    $$
    """,
    """
    CREATE FUNCTION teams_members(team teams) RETURNS SETOF actors
    LANGUAGE sql STABLE AS $$
        SELECT a.* FROM unnest(team.member_ids) WITH ORDINALITY AS ref(id, position)
        JOIN actors AS a ON a.id = ref.id ORDER BY ref.position
    $$
    """,
    f"""
    CREATE FUNCTION bench_postgraphile_checkin_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        cursor_value bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock({EVENT_LOCK_KEY});
        cursor_value := nextval('coordination_event_seq');
        INSERT INTO coordination_events (id, seq, actor_id, event_type, reference_id, occurred_at)
        VALUES (gen_random_uuid()::text, cursor_value, NEW.actor_id, 'team_checkin', NEW.id, NEW.created_at);
        PERFORM pg_notify('{NOTIFY_CHANNEL}', cursor_value::text);
        RETURN NULL;
    END
    $$
    """,
    f"""
    CREATE TRIGGER bench_postgraphile_checkin_event AFTER INSERT ON team_checkins FOR EACH ROW
    WHEN (current_setting('application_name') = '{APPLICATION_NAME}')
    EXECUTE FUNCTION bench_postgraphile_checkin_event()
    """,
]


def available() -> bool:
    return EXECUTABLE.exists() and shutil.which("node") is not None


def connection_string(database: str, socket_dir: Path, port: int) -> str:
    # node-postgres takes the socket directory as `host` in the query string.
    return f"postgres://postgres@/{database}?host={socket_dir}&port={port}&application_name={APPLICATION_NAME}"


def command(database: str, socket_dir: Path, port: int, http_port: int, workers: int) -> list[str]:
    args = [
        str(EXECUTABLE),
        "--connection",
        connection_string(database, socket_dir, port),
        "--schema",
        "public",
        "--host",
        "127.0.0.1",
        "--port",
        str(http_port),
        "--disable-query-log",
        "--max-pool-size",
        "16",
        "--disable-graphiql",
    ]
    if workers > 1:
        args += ["--cluster-workers", str(workers)]
    return args


def environment() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, "NODE_ENV": "production"}
