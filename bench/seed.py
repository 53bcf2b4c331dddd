"""The benchmark dataset, generated inside PostgreSQL with `INSERT ... SELECT generate_series`.

This is a bench-only shortcut, not an API path: rows go straight into the tables,
a hundred thousand check-ins in seconds. To look like what the server would have
written, every check-in and goal story update gets its one coordination event
(occurred_at = created_at), with cursors in created_at order, and the cursor
sequence continues after them so that later writes through the server follow on.

Ids are readable and predictable, so load scripts can address rows without a
lookup: actors `p-1..p-N`, teams `t-1..t-N`, goal stories `g-1..g-N`, check-ins
`c-1..`, updates `u-1..`. Team k has the members p-((k-1)*m+1) .. p-(k*m) (wrapping
around the actors), which is also who posts its check-ins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from sqlalchemy.ext.asyncio import AsyncConnection

# Bump whenever what `seed` writes changes: cached benchmark databases are reseeded.
SEED_VERSION = 1

CHECKIN_ID_PREFIX = "c-"


@dataclass(frozen=True)
class Scale:
    teams: int = 50
    actors: int = 500
    members_per_team: int = 10
    # Three levels: `roots`, then `children_per_root` under each root, the rest are
    # grandchildren spread round-robin over the children.
    goal_stories: int = 200
    roots: int = 10
    children_per_root: int = 4
    checkins: int = 100_000
    updates: int = 20_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
        if self.teams < 1 or self.actors < 1 or self.members_per_team < 1:
            raise ValueError("a dataset needs at least one team, one actor and one member per team")
        if self.goal_stories and not 1 <= self.roots <= self.goal_stories:
            raise ValueError("roots must be between 1 and goal_stories")
        if self.goal_stories > self.roots and self.children_per_root < 1:
            raise ValueError("goal stories beyond the roots need children_per_root >= 1")
        if self.updates and not self.goal_stories:
            raise ValueError("updates need goal stories")

    @property
    def children(self) -> int:
        return min(self.roots * self.children_per_root, self.goal_stories - self.roots)

    @property
    def grandchildren(self) -> int:
        return self.goal_stories - self.roots - self.children


FULL = Scale()
QUICK = Scale(teams=10, actors=100, goal_stories=40, roots=4, children_per_root=3, checkins=5_000, updates=1_000)


def scaled(factor: int, base: Scale = FULL) -> Scale:
    """`base` with `factor` times its check-ins and updates (and so its events): the data that grows with
    use. The organisation (teams, actors, goal stories) stays as it is: each team, goal and member has
    `factor` times the history."""
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"the scale factor must be a whole number >= 1, not {factor!r}")
    return replace(base, checkins=base.checkins * factor, updates=base.updates * factor)


def statements(scale: Scale) -> list[str]:
    """The SQL that writes the dataset into empty tables, in order.

    Only integers from `scale` are interpolated (validated above), never outside text.
    """
    s = scale
    members = s.members_per_team
    actor = f"'p-' || ((({{i}} - 1) % {s.actors}) + 1)"  # the actor at position {i}, wrapping around

    def member_of(team: str, slot: str) -> str:
        return actor.format(i=f"(({team}) - 1) * {members} + ({slot}) + 1")

    sql = [
        f"""
        INSERT INTO actors (id, actor_type, name, role, timezone)
        SELECT 'p-' || i,
               CASE WHEN i % 5 = 0 THEN 'agent' ELSE 'person' END,
               CASE WHEN i % 5 = 0 THEN 'Agent ' ELSE 'Person ' END || i,
               (ARRAY['Engineer', 'Designer', 'Product Manager', 'Researcher', 'Support'])[i % 5 + 1],
               CASE WHEN i % 3 = 0 THEN NULL
                    ELSE (ARRAY['Europe/Berlin', 'America/Chicago', 'Asia/Tokyo'])[i % 3 + 1] END
        FROM generate_series(1, {s.actors}) AS i
        """,
        f"""
        INSERT INTO teams (id, name, description, member_ids)
        SELECT 't-' || k, 'Team ' || k, 'Keeps the lights on for area ' || k,
               ARRAY(SELECT {member_of("k", "j")} FROM generate_series(0, {members - 1}) AS j ORDER BY j)
        FROM generate_series(1, {s.teams}) AS k
        """,
    ]
    if s.goal_stories:
        first_grandchild = s.roots + s.children + 1
        parent = f"""CASE
                   WHEN i <= {s.roots} THEN NULL
                   WHEN i < {first_grandchild} THEN 'g-' || ((i - {s.roots} - 1) / {max(s.children_per_root, 1)} + 1)
                   ELSE 'g-' || ({s.roots} + (i - {first_grandchild}) % {max(s.children, 1)} + 1) END"""
        sql.append(f"""
        INSERT INTO goal_stories (id, title, description, actor_ids, team_ids, parent_id,
                                  timeframe_start, timeframe_end, created_at)
        SELECT 'g-' || i,
               CASE WHEN i <= {s.roots} THEN 'Objective ' WHEN i < {first_grandchild} THEN 'Key result '
                    ELSE 'Initiative ' END || i,
               'Make measurable progress on outcome ' || i || ' this quarter, together.',
               ARRAY[{actor.format(i="i")}, {actor.format(i="i + 1")}],
               ARRAY['t-' || ((i - 1) % {s.teams} + 1)]
                 || CASE WHEN {s.teams} > 1 THEN ARRAY['t-' || (i % {s.teams} + 1)] ELSE '{{}}'::text[] END,
               {parent},
               date '2026-01-01' + (i % 4) * 91,
               date '2026-01-01' + (i % 4) * 91 + 90,
               timestamptz '2025-01-01 09:00+00' + i * interval '1 hour'
        FROM generate_series(1, {s.goal_stories}) AS i
        """)
    if s.updates:
        # Update k belongs to goal (k-1) % G + 1 and is its n-th, three days after the
        # previous one: dates are distinct within a goal, so "latest three" is well defined.
        sql.append(f"""
        INSERT INTO goal_story_updates (id, actor_id, goal_story_id, date, title, content, status,
                                        progress_percent, created_at)
        SELECT 'u-' || k, {actor.format(i="g")}, 'g-' || g, d,
               'Week ' || n || ' on goal ' || g,
               'We shipped the next slice of goal ' || g || ', measured the result against the baseline '
                 || 'and adjusted the plan for the coming weeks. Risks are tracked in the usual place.',
               (ARRAY['on_track', 'at_risk', 'off_track', 'completed', 'paused'])[n % 5 + 1],
               CASE WHEN n % 7 = 0 THEN NULL ELSE n % 101 END,
               d + time '16:00' + (k % 3600) * interval '1 second'
        FROM generate_series(1, {s.updates}) AS k,
             LATERAL (SELECT (k - 1) % {s.goal_stories} + 1 AS g, (k - 1) / {s.goal_stories} AS n) AS pos,
             LATERAL (SELECT date '2025-06-01' + n * 3 AS d) AS day
        """)
    if s.checkins:
        # Check-in k is the n-th of team (k-1) % T + 1, posted by its members in turn,
        # one member a day going back in time from 2026-06-30.
        sql.append(f"""
        INSERT INTO team_checkins (id, actor_id, team_id, date, next, previously, blockers, created_at)
        SELECT '{CHECKIN_ID_PREFIX}' || k, {member_of("t", f"n % {members}")}, 't-' || t, d,
               ARRAY['Finish task ' || k, 'Review pull request ' || (k + 1)],
               ARRAY['Closed ticket ' || (k - 1), 'Paired on ' || (k % 97), 'Wrote notes for ' || t],
               CASE WHEN k % 7 = 0 THEN ARRAY['Waiting on review from team ' || (k % {s.teams} + 1)] END,
               d + time '17:00' + (k % 3600) * interval '1 second'
        FROM generate_series(1, {s.checkins}) AS k,
             LATERAL (SELECT (k - 1) % {s.teams} + 1 AS t, (k - 1) / {s.teams} AS n) AS pos,
             LATERAL (SELECT date '2026-06-30' - n / {members} AS d) AS day
        """)
    # One event per check-in and update, cursors in the order the rows were created.
    sql.append("""
        INSERT INTO coordination_events (id, seq, actor_id, event_type, reference_id, occurred_at)
        SELECT gen_random_uuid()::text,
               -- After whatever cursors the sequence already gave out: a cursor never goes back.
               (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM coordination_event_seq)
                 + row_number() OVER (ORDER BY created_at, reference_id),
               actor_id, event_type, reference_id, created_at
        FROM (SELECT actor_id, 'team_checkin' AS event_type, id AS reference_id, created_at FROM team_checkins
              UNION ALL
              SELECT actor_id, 'goal_story_update', id, created_at FROM goal_story_updates) AS written
        """)
    sql.append("""
        SELECT setval('coordination_event_seq', greatest(max(seq), 1), max(seq) IS NOT NULL)
        FROM coordination_events
        """)
    return sql


async def seed(conn: AsyncConnection, scale: Scale) -> None:
    """Write the dataset into empty tables, inside the caller's transaction."""
    for statement in statements(scale):
        await conn.exec_driver_sql(statement)
