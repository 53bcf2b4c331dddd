"""Coordination views: the questions no generic read answers, each one SQL statement returning one JSON value.

- `team_coverage`: per day of a range, a team's members expected to check in, who did, who did not,
  and the blockers raised. A check-in counts for the day its `date` names (the day of the member's own
  calendar it covers); each member's timezone decides when their day begins, so a day that has not yet
  begun where the member lives (as of `as_of`) is not expected of them: at 02:00 UTC a member in
  Asia/Tokyo is expected for today, one in America/Los_Angeles only for yesterday.
- `stale_goal_stories`: goal stories without an update for at least `days` days (counted from the
  latest update's date, or from the goal's creation when it has none), with their latest update.
- `open_blockers`: each member's latest check-in to a team when its blockers are not empty, with its
  age in days of the member's own calendar.
- `goal_rollup`: a goal story's whole subtree (or every tree) with each goal's latest status and
  progress, the count of goals by status, and the average progress.

Every view takes the caller's `Scope` (api/plan.py; `current_scope()` gives the caller's): None sees
everything; a scope limited to teams sees only those teams, their check-ins, and the goal stories involving
one of them (and those stories' updates), by the same rule as every other read, so a scoped token counts
only what it may see. Front ends call these through `Views` (api/store/__init__.py) and never see the SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    Boolean,
    Integer,
    Select,
    Text,
    TextClause,
    bindparam,
    select,
    text,
)
from sqlalchemy.sql.elements import BindParameter

from api.entities import ENTITIES, GOAL_STORY_STATUSES
from api.errors import InvalidInput, InvalidReason
from api.plan import Scope
from api.store.reads import Reader
from api.store.select import readable, scoped
from api.store.tables import TABLES

# The longest range `team_coverage` answers in one go (a year and a day: a leap year, both ends included).
MAX_COVERAGE_DAYS = 366
# The most days `stale_goal_stories` looks back (a century is already no dashboard's question).
MAX_STALE_DAYS = 36500


# ---------------------------------------------------------------- who may see what
# Each view reads the entities' rows through `visible_<table>` (a CTE, inlined by PostgreSQL: NOT
# MATERIALIZED): the table itself for a caller without a scope (that statement is built once), and for a
# scoped caller the rows its scope may see, by the read path's own rule (`readable` of api/store/select.py,
# the one rule of every read), in a statement built for the call (the scope's teams are bound in it).
# Check-ins are read only through a visible team, which makes them visible: their own test would only
# lead the planner to read the team's every check-in for each member.

VISIBLE = {
    "team": "visible_teams",
    "actor": "visible_actors",
    "goal_story": "visible_goal_stories",
    "goal_story_update": "visible_goal_story_updates",
}


def _sources(entities: tuple[str, ...], scope: Scope | None) -> list[CTE]:
    sources = []
    with scoped(scope):
        for name in entities:
            table = TABLES[name]
            rows = readable(select(*table.c), ENTITIES[name], table)
            sources.append(rows.cte(VISIBLE[name]).prefix_with("NOT MATERIALIZED"))
    return sources


@dataclass(frozen=True)
class View:
    """One view: its body (a scalar subquery: it has CTEs of its own), the entities it reads, and its
    statement for a caller who sees every row."""

    body: TextClause
    entities: tuple[str, ...]
    everything: Select[Any]

    def statement(self, scope: Scope | None) -> tuple[Select[Any], bool]:
        """The statement for `scope`, and whether it is one kept for good."""
        if scope is None or scope.teams is None:
            return self.everything, True
        return select(self.body).add_cte(*_sources(self.entities, scope)), False


def _view(body: str, entities: tuple[str, ...], *binds: BindParameter[Any]) -> View:
    value = text(f"({body})").bindparams(*binds)
    return View(value, entities, select(value).add_cte(*_sources(entities, None)))


# A member's day is taken in their timezone (UTC without one). The write service accepts the names Python's
# zoneinfo knows; one PostgreSQL's own time zone data lacked ("localtime" is the only one today) makes the
# view answer PostgreSQL's error naming it (22023, a bad value). Looking each name up in pg_timezone_names
# first would cost more than the rest of the view: that function works out every zone's offset.
MEMBER_ZONE = "coalesce(a.timezone, 'UTC')"


# The latest update first: latest date, then latest created_at, then id (as `latestUpdate` picks it).
LATEST_FIRST = "u.date DESC, u.created_at DESC, u.id DESC"


TEAM_COVERAGE = _view(
    f"""
WITH team AS (
    SELECT t.id, t.name, coalesce(t.member_ids, CAST('{{}}' AS text[])) AS member_ids
    FROM visible_teams AS t
    WHERE t.id = :team_id
), members AS (
    SELECT a.id, a.name, a.timezone, min(m.ord) AS ord,
           CAST(CAST(:as_of AS timestamptz) AT TIME ZONE {MEMBER_ZONE} AS date) AS today
    FROM team
    CROSS JOIN unnest(team.member_ids) WITH ORDINALITY AS m (actor_id, ord)
    JOIN visible_actors AS a ON a.id = m.actor_id
    GROUP BY a.id, a.name, a.timezone
), days AS (
    SELECT CAST(d AS date) AS day
    FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
), checkins AS (
    SELECT c.id, c.actor_id, c.date, c.created_at, c.blockers, m.ord
    FROM team_checkins AS c
    JOIN team ON c.team_id = team.id
    JOIN members AS m ON m.id = c.actor_id
    WHERE c.date BETWEEN CAST(:first AS date) AND CAST(:last AS date)
), per_member AS (
    SELECT c.actor_id, c.date, count(DISTINCT c.id) AS checkins,
           coalesce(json_agg(b.text ORDER BY c.created_at, c.id, b.n) FILTER (WHERE b.n IS NOT NULL), '[]')
               AS blockers
    FROM checkins AS c
    LEFT JOIN LATERAL unnest(c.blockers) WITH ORDINALITY AS b (text, n) ON true
    GROUP BY c.actor_id, c.date
), cells AS (
    SELECT d.day, m.id AS actor_id, m.ord,
           d.day <= m.today AND (NOT :weekdays_only OR extract(isodow FROM d.day) < 6) AS expected,
           coalesce(p.checkins, 0) AS checkins,
           coalesce(p.blockers, '[]') AS blockers
    FROM days AS d
    CROSS JOIN members AS m
    LEFT JOIN per_member AS p ON p.actor_id = m.id AND p.date = d.day
), per_day AS (
    SELECT c.day,
           json_agg(c.actor_id ORDER BY c.ord) FILTER (WHERE c.expected) AS expected,
           json_agg(c.actor_id ORDER BY c.ord) FILTER (WHERE c.checkins > 0) AS checked_in,
           json_agg(c.actor_id ORDER BY c.ord) FILTER (WHERE c.expected AND c.checkins = 0) AS missing,
           json_agg(json_build_object(
               'actorId', c.actor_id, 'expected', c.expected, 'checkins', c.checkins, 'blockers', c.blockers
           ) ORDER BY c.ord) AS cells
    FROM cells AS c
    GROUP BY c.day
), day_blockers AS (
    SELECT c.date,
           json_agg(json_build_object('actorId', c.actor_id, 'checkinId', c.id, 'text', b.text)
                    ORDER BY c.ord, c.created_at, c.id, b.n) AS blockers
    FROM checkins AS c
    CROSS JOIN LATERAL unnest(c.blockers) WITH ORDINALITY AS b (text, n)
    GROUP BY c.date
), member_totals AS (
    SELECT c.actor_id,
           count(*) FILTER (WHERE c.expected) AS expected_days,
           count(*) FILTER (WHERE c.checkins > 0) AS checked_in_days,
           count(*) FILTER (WHERE c.expected AND c.checkins = 0) AS missed_days
    FROM cells AS c
    GROUP BY c.actor_id
)
SELECT CAST(json_build_object(
    'teamId', team.id,
    'teamName', team.name,
    'from', CAST(:first AS date),
    'to', CAST(:last AS date),
    'asOf', CAST(:as_of AS timestamptz),
    'weekdaysOnly', :weekdays_only,
    'members', coalesce((
        SELECT json_agg(json_build_object(
            'actorId', m.id, 'name', m.name, 'timezone', m.timezone, 'localDate', m.today,
            'expectedDays', t.expected_days, 'checkedInDays', t.checked_in_days, 'missedDays', t.missed_days
        ) ORDER BY m.ord)
        FROM members AS m JOIN member_totals AS t ON t.actor_id = m.id
    ), '[]'),
    'days', (
        SELECT json_agg(json_build_object(
            'date', d.day,
            'expected', coalesce(p.expected, '[]'),
            'checkedIn', coalesce(p.checked_in, '[]'),
            'missing', coalesce(p.missing, '[]'),
            'blockers', coalesce(b.blockers, '[]'),
            'cells', coalesce(p.cells, '[]')
        ) ORDER BY d.day)
        FROM days AS d
        LEFT JOIN per_day AS p ON p.day = d.day
        LEFT JOIN day_blockers AS b ON b.date = d.day
    )
) AS text)
FROM team
""",
    ("team", "actor"),
    bindparam("team_id", type_=Text),
    bindparam("first", type_=Text),
    bindparam("last", type_=Text),
    bindparam("as_of", type_=Text),
    bindparam("weekdays_only", type_=Boolean),
)

STALE_GOAL_STORIES = _view(
    f"""
WITH goals AS (
    SELECT g.id, g.title, g.parent_id, g.team_ids, g.created_at,
           latest.id AS update_id, latest.date, latest.status, latest.progress_percent, latest.title AS update_title,
           coalesce(latest.date, CAST(g.created_at AT TIME ZONE 'UTC' AS date)) AS since
    FROM visible_goal_stories AS g
    LEFT JOIN LATERAL (
        SELECT u.id, u.date, u.status, u.progress_percent, u.title
        FROM visible_goal_story_updates AS u
        WHERE u.goal_story_id = g.id
        ORDER BY {LATEST_FIRST}
        LIMIT 1
    ) AS latest ON true
    WHERE (CAST(:team_id AS text) IS NULL OR CAST(:team_id AS text) = ANY(g.team_ids))
), stale AS (
    SELECT goals.*,
           CAST(CAST(:as_of AS timestamptz) AT TIME ZONE 'UTC' AS date) - goals.since AS days_since
    FROM goals
    WHERE (:include_completed OR goals.status IS DISTINCT FROM 'completed')
)
SELECT CAST(coalesce(json_agg(json_build_object(
    'id', s.id,
    'title', s.title,
    'parentId', s.parent_id,
    'teamIds', coalesce(s.team_ids, CAST('{{}}' AS text[])),
    'createdAt', s.created_at,
    'status', s.status,
    'progressPercent', s.progress_percent,
    'lastUpdateDate', s.date,
    'daysSinceUpdate', s.days_since,
    'latestUpdate', CASE WHEN s.update_id IS NULL THEN NULL ELSE json_build_object(
        'id', s.update_id, 'date', s.date, 'title', s.update_title,
        'status', s.status, 'progressPercent', s.progress_percent
    ) END
) ORDER BY s.days_since DESC, s.id), '[]') AS text)
FROM stale AS s
WHERE s.days_since >= :days
""",
    ("goal_story", "goal_story_update"),
    bindparam("days", type_=Integer),
    bindparam("team_id", type_=Text),
    bindparam("as_of", type_=Text),
    bindparam("include_completed", type_=Boolean),
)

OPEN_BLOCKERS = _view(
    f"""
WITH members AS (
    SELECT t.id AS team_id, t.name AS team_name, m.actor_id, min(m.ord) AS ord
    FROM visible_teams AS t
    CROSS JOIN unnest(t.member_ids) WITH ORDINALITY AS m (actor_id, ord)
    WHERE CAST(:team_id AS text) IS NULL OR t.id = CAST(:team_id AS text)
    GROUP BY t.id, t.name, m.actor_id
), latest AS (
    SELECT l.*, m.team_name, m.ord
    FROM members AS m
    CROSS JOIN LATERAL (
        SELECT c.id, c.team_id, c.actor_id, c.date, c.created_at, c.blockers
        FROM team_checkins AS c
        -- The team as a filter, not an index condition: walking the member's check-ins newest first
        -- (team_checkins_actor_date) stops at the first of this team's, where a bitmap of the team's
        -- every check-in would be read for each member.
        WHERE c.actor_id = m.actor_id AND (c.team_id = m.team_id) IS TRUE
        ORDER BY c.date DESC, c.created_at DESC, c.id DESC
        LIMIT 1
    ) AS l
), open AS (
    SELECT l.*, a.name AS actor_name, a.timezone,
           CAST(CAST(:as_of AS timestamptz) AT TIME ZONE {MEMBER_ZONE} AS date) - l.date AS age_days
    FROM latest AS l
    JOIN visible_actors AS a ON a.id = l.actor_id
    WHERE cardinality(l.blockers) > 0
)
SELECT CAST(coalesce(json_agg(json_build_object(
    'checkinId', o.id,
    'teamId', o.team_id,
    'teamName', o.team_name,
    'actorId', o.actor_id,
    'actorName', o.actor_name,
    'timezone', o.timezone,
    'date', o.date,
    'createdAt', o.created_at,
    'blockers', o.blockers,
    'ageDays', o.age_days
) ORDER BY o.age_days DESC, o.team_name, o.team_id, o.ord), '[]') AS text)
FROM open AS o
""",
    ("team", "actor"),
    bindparam("team_id", type_=Text),
    bindparam("as_of", type_=Text),
)

_STATUS_COUNTS = ", ".join(f"'{s}', count(*) FILTER (WHERE t.status = '{s}')" for s in GOAL_STORY_STATUSES)

GOAL_ROLLUP = _view(
    f"""
WITH RECURSIVE tree AS (
    SELECT g.id, g.title, g.parent_id, 0 AS depth, ARRAY[g.id] AS path
    FROM visible_goal_stories AS g
    WHERE CASE WHEN CAST(:id AS text) IS NULL THEN g.parent_id IS NULL ELSE g.id = CAST(:id AS text) END
    UNION ALL
    SELECT g.id, g.title, g.parent_id, tree.depth + 1, tree.path || g.id
    FROM tree
    JOIN visible_goal_stories AS g ON g.parent_id = tree.id
    WHERE NOT g.id = ANY(tree.path)
), parents AS (
    SELECT DISTINCT tree.parent_id AS id FROM tree
), nodes AS (
    SELECT tree.*, latest.id AS update_id, latest.date, latest.status, latest.progress_percent,
           parents.id IS NULL AS leaf
    FROM tree
    LEFT JOIN parents ON parents.id = tree.id
    LEFT JOIN LATERAL (
        SELECT u.id, u.date, u.status, u.progress_percent
        FROM visible_goal_story_updates AS u
        WHERE u.goal_story_id = tree.id
        ORDER BY {LATEST_FIRST}
        LIMIT 1
    ) AS latest ON true
)
SELECT CASE WHEN count(*) = 0 THEN NULL ELSE CAST(json_build_object(
    'id', CAST(:id AS text),
    'goals', json_agg(json_build_object(
        'id', t.id, 'title', t.title, 'parentId', t.parent_id, 'depth', t.depth,
        'status', t.status, 'progressPercent', t.progress_percent, 'lastUpdateDate', t.date
    ) ORDER BY t.path),
    'total', count(*),
    'statusCounts', json_build_object({_STATUS_COUNTS}, 'none', count(*) FILTER (WHERE t.status IS NULL)),
    'withProgress', count(t.progress_percent),
    'averageProgress', round(avg(t.progress_percent), 2),
    'leafAverageProgress', round(avg(t.progress_percent) FILTER (WHERE t.leaf), 2)
) AS text) END
FROM nodes AS t
""",
    ("goal_story", "goal_story_update"),
    bindparam("id", type_=Text),
)


def _scoped(view: View, scope: Scope | None, values: dict[str, Any]) -> tuple[Select[Any], dict[str, Any], bool]:
    statement, kept = view.statement(scope)
    return statement, values, kept


def _instant(as_of: dt.datetime | None) -> str:
    moment = as_of or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat()


@dataclass(frozen=True)
class Views:
    """The coordination views over a reader: each method one statement, its answer the JSON text built
    by PostgreSQL (None where the view names a row the caller cannot see or that does not exist)."""

    reader: Reader

    async def team_coverage(
        self,
        team_id: str,
        first: dt.date,
        last: dt.date,
        *,
        scope: Scope | None = None,
        as_of: dt.datetime | None = None,
        weekdays_only: bool = False,
    ) -> str | None:
        if last < first:
            raise InvalidInput(
                f"the range ends ({last}) before it starts ({first})", field="to", reason=InvalidReason.RULE
            )
        if (last - first).days + 1 > MAX_COVERAGE_DAYS:
            raise InvalidInput(
                f"a coverage range is at most {MAX_COVERAGE_DAYS} days, not {(last - first).days + 1}",
                field="to",
                reason=InvalidReason.RULE,
            )
        answer: str | None = await self.reader.first_value(
            *_scoped(
                TEAM_COVERAGE,
                scope,
                {
                    "team_id": team_id,
                    "first": first.isoformat(),
                    "last": last.isoformat(),
                    "as_of": _instant(as_of),
                    "weekdays_only": weekdays_only,
                },
            )
        )
        return answer

    async def stale_goal_stories(
        self,
        days: int,
        *,
        scope: Scope | None = None,
        team_id: str | None = None,
        as_of: dt.datetime | None = None,
        include_completed: bool = False,
    ) -> str:
        if not 0 <= days <= MAX_STALE_DAYS:
            raise InvalidInput(
                f"days must be between 0 and {MAX_STALE_DAYS}, not {days}", field="days", reason=InvalidReason.RULE
            )
        answer: str = await self.reader.first_value(
            *_scoped(
                STALE_GOAL_STORIES,
                scope,
                {
                    "days": days,
                    "team_id": team_id,
                    "as_of": _instant(as_of),
                    "include_completed": include_completed,
                },
            )
        )
        return answer

    async def open_blockers(
        self, team_id: str | None = None, *, scope: Scope | None = None, as_of: dt.datetime | None = None
    ) -> str:
        answer: str = await self.reader.first_value(
            *_scoped(OPEN_BLOCKERS, scope, {"team_id": team_id, "as_of": _instant(as_of)})
        )
        return answer

    async def goal_rollup(self, id: str | None, *, scope: Scope | None = None) -> str | None:
        """The subtree of goal story `id`, or (None) every tree, each from a root."""
        answer: str | None = await self.reader.first_value(*_scoped(GOAL_ROLLUP, scope, {"id": id}))
        return answer
