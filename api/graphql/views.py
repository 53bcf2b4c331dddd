"""The coordination views as root fields: `teamCoverage`, `staleGoalStories`, `openBlockers`, `goalRollup`.

Each is one statement of the data layer (api/store/views.py), asked with the caller's team scope, whose
JSON becomes these types; the entity behind a row (`team`, `goalStory`, `checkin`, ...) is loaded as any
relation is, batched.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import strawberry
from strawberry import Info

from api.entities import GOAL_STORY_STATUSES
from api.graphql.context import Context
from api.graphql.enums import GoalStoryStatus
from api.graphql.names import camel
from api.graphql.types import TYPES, one
from api.store import MAX_COVERAGE_DAYS, MAX_STALE_DAYS, Views, current_scope


def _views(info: Info) -> Views:
    context: Context = info.context
    return Views(context.reader)


def _status(value: str | None) -> GoalStoryStatus | None:
    return None if value is None else GoalStoryStatus(value)


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


@strawberry.type(description="One member on one day of a team's coverage.")
class CoverageCell:
    actor_id: strawberry.ID
    expected: bool = strawberry.field(
        description="The member was due to check in: the day has begun in their timezone (and is a weekday, "
        "when only weekdays are counted)."
    )
    checkins: int = strawberry.field(description="Check-ins the member gave the team for this day.")
    blockers: list[str] = strawberry.field(description="The blockers of those check-ins, in the order given.")


@strawberry.type(description="A blocker raised in a check-in.")
class CoverageBlocker:
    actor_id: strawberry.ID
    checkin_id: strawberry.ID
    text: str


@strawberry.type(description="One day of a team's coverage (the day of each member's own calendar).")
class CoverageDay:
    date: dt.date
    expected: list[strawberry.ID] = strawberry.field(description="Members due to check in, in team order.")
    checked_in: list[strawberry.ID] = strawberry.field(description="Members who checked in for this day.")
    missing: list[strawberry.ID] = strawberry.field(description="Members due who did not check in.")
    blockers: list[CoverageBlocker] = strawberry.field(description="Blockers raised in this day's check-ins.")
    cells: list[CoverageCell] = strawberry.field(description="Every member's cell, in team order.")


@strawberry.type(description="A team member and their totals over the range.")
class CoverageMember:
    actor_id: strawberry.ID
    name: str
    timezone: str | None = strawberry.field(description="Their IANA timezone (null: UTC is used).")
    local_date: dt.date = strawberry.field(description="Their own date at `asOf`.")
    expected_days: int
    checked_in_days: int
    missed_days: int

    @strawberry.field(description="The member.", graphql_type=TYPES["actor"] | None)
    async def actor(self, info: Info) -> Any:
        return await one(info, TYPES["actor"], "actor", self.actor_id)


@strawberry.type(description="Who of a team checked in, day by day, each member's day following their timezone.")
class TeamCoverage:
    team_id: strawberry.ID
    team_name: str
    from_: dt.date = strawberry.field(name="from")
    to: dt.date
    as_of: dt.datetime = strawberry.field(description="The moment the coverage was taken at.")
    weekdays_only: bool
    members: list[CoverageMember] = strawberry.field(description="The team's members, in team order.")
    days: list[CoverageDay] = strawberry.field(description="Each day of the range, in order.")


@strawberry.type(description="The latest update of a goal story, in short.")
class UpdateSummary:
    id: strawberry.ID
    date: dt.date
    title: str
    status: GoalStoryStatus | None
    progress_percent: int | None


@strawberry.type(description="A goal story without an update for the days asked.")
class StaleGoalStory:
    id: strawberry.ID
    title: str
    parent_id: strawberry.ID | None
    team_ids: list[strawberry.ID]
    created_at: dt.datetime
    status: GoalStoryStatus | None = strawberry.field(description="The latest update's status (null: no update).")
    progress_percent: int | None
    last_update_date: dt.date | None
    days_since_update: int = strawberry.field(
        description="Days from the latest update's date (or, with none, the goal's creation) to `asOf`'s date (UTC)."
    )
    latest_update: UpdateSummary | None

    @strawberry.field(description="The goal story.", graphql_type=TYPES["goal_story"] | None)
    async def goal_story(self, info: Info) -> Any:
        return await one(info, TYPES["goal_story"], "goal_story", self.id)


@strawberry.type(description="A member's latest check-in to a team, whose blockers are not empty.")
class OpenBlocker:
    checkin_id: strawberry.ID
    team_id: strawberry.ID
    team_name: str
    actor_id: strawberry.ID
    actor_name: str
    timezone: str | None
    date: dt.date
    created_at: dt.datetime
    blockers: list[str]
    age_days: int = strawberry.field(description="Days from the check-in's date to the member's own today.")

    @strawberry.field(description="The check-in.", graphql_type=TYPES["team_checkin"] | None)
    async def checkin(self, info: Info) -> Any:
        return await one(info, TYPES["team_checkin"], "team_checkin", self.checkin_id)


@strawberry.type(description="Goals of a rollup by their latest status.")
class StatusCounts:
    on_track: int
    at_risk: int
    off_track: int
    completed: int
    paused: int
    none: int = strawberry.field(description="Goals without a status (no update, or one without status).")


@strawberry.type(description="One goal story of a rollup.")
class RollupGoal:
    id: strawberry.ID
    title: str
    parent_id: strawberry.ID | None
    depth: int = strawberry.field(description="0 for the rollup's root.")
    status: GoalStoryStatus | None
    progress_percent: int | None
    last_update_date: dt.date | None

    @strawberry.field(description="The goal story.", graphql_type=TYPES["goal_story"] | None)
    async def goal_story(self, info: Info) -> Any:
        return await one(info, TYPES["goal_story"], "goal_story", self.id)


@strawberry.type(description="A goal story's whole subtree (or every tree) with status counts and progress.")
class GoalRollup:
    id: strawberry.ID | None = strawberry.field(description="The root asked for (null: every tree).")
    goals: list[RollupGoal] = strawberry.field(description="The goals, depth first, each after its parent.")
    total: int
    status_counts: StatusCounts
    with_progress: int = strawberry.field(description="Goals whose latest update gives a progress.")
    average_progress: float | None = strawberry.field(description="The average of those progresses.")
    leaf_average_progress: float | None = strawberry.field(
        description="The same over the goals without children in the subtree."
    )


def _coverage(data: dict[str, Any]) -> TeamCoverage:
    return TeamCoverage(
        team_id=strawberry.ID(data["teamId"]),
        team_name=data["teamName"],
        from_=dt.date.fromisoformat(data["from"]),
        to=dt.date.fromisoformat(data["to"]),
        as_of=dt.datetime.fromisoformat(data["asOf"]),
        weekdays_only=data["weekdaysOnly"],
        members=[
            CoverageMember(
                actor_id=strawberry.ID(m["actorId"]),
                name=m["name"],
                timezone=m["timezone"],
                local_date=dt.date.fromisoformat(m["localDate"]),
                expected_days=m["expectedDays"],
                checked_in_days=m["checkedInDays"],
                missed_days=m["missedDays"],
            )
            for m in data["members"]
        ],
        days=[
            CoverageDay(
                date=dt.date.fromisoformat(d["date"]),
                expected=d["expected"],
                checked_in=d["checkedIn"],
                missing=d["missing"],
                blockers=[
                    CoverageBlocker(actor_id=b["actorId"], checkin_id=b["checkinId"], text=b["text"])
                    for b in d["blockers"]
                ],
                cells=[
                    CoverageCell(
                        actor_id=c["actorId"], expected=c["expected"], checkins=c["checkins"], blockers=c["blockers"]
                    )
                    for c in d["cells"]
                ],
            )
            for d in data["days"]
        ],
    )


def _stale(row: dict[str, Any]) -> StaleGoalStory:
    latest = row["latestUpdate"]
    return StaleGoalStory(
        id=row["id"],
        title=row["title"],
        parent_id=row["parentId"],
        team_ids=row["teamIds"],
        created_at=dt.datetime.fromisoformat(row["createdAt"]),
        status=_status(row["status"]),
        progress_percent=row["progressPercent"],
        last_update_date=_date(row["lastUpdateDate"]),
        days_since_update=row["daysSinceUpdate"],
        latest_update=None
        if latest is None
        else UpdateSummary(
            id=latest["id"],
            date=dt.date.fromisoformat(latest["date"]),
            title=latest["title"],
            status=_status(latest["status"]),
            progress_percent=latest["progressPercent"],
        ),
    )


def _blocker(row: dict[str, Any]) -> OpenBlocker:
    return OpenBlocker(
        checkin_id=row["checkinId"],
        team_id=row["teamId"],
        team_name=row["teamName"],
        actor_id=row["actorId"],
        actor_name=row["actorName"],
        timezone=row["timezone"],
        date=dt.date.fromisoformat(row["date"]),
        created_at=dt.datetime.fromisoformat(row["createdAt"]),
        blockers=row["blockers"],
        age_days=row["ageDays"],
    )


def _rollup(data: dict[str, Any]) -> GoalRollup:
    return GoalRollup(
        id=data["id"],
        goals=[
            RollupGoal(
                id=g["id"],
                title=g["title"],
                parent_id=g["parentId"],
                depth=g["depth"],
                status=_status(g["status"]),
                progress_percent=g["progressPercent"],
                last_update_date=_date(g["lastUpdateDate"]),
            )
            for g in data["goals"]
        ],
        total=data["total"],
        status_counts=StatusCounts(**data["statusCounts"]),
        with_progress=data["withProgress"],
        average_progress=data["averageProgress"],
        leaf_average_progress=data["leafAverageProgress"],
    )


# ---------------------------------------------------------------- the statements behind the root fields

# Each root field's read, by its resolver's arguments (as Strawberry passes them), with the caller's team
# scope. The compiled path (api/graphql/compiled_views.py) calls the same functions with the same arguments,
# so that both paths read, refuse and limit alike.


async def team_coverage_text(
    views: Views,
    team_id: strawberry.ID,
    from_: dt.date,
    to: dt.date,
    as_of: dt.datetime | None = None,
    weekdays_only: bool = False,
) -> str | None:
    return await views.team_coverage(
        str(team_id), from_, to, scope=current_scope(), as_of=as_of, weekdays_only=weekdays_only
    )


async def stale_goal_stories_text(
    views: Views,
    days: int,
    team_id: strawberry.ID | None = None,
    include_completed: bool = False,
    as_of: dt.datetime | None = None,
) -> str:
    return await views.stale_goal_stories(
        days,
        scope=current_scope(),
        team_id=None if team_id is None else str(team_id),
        as_of=as_of,
        include_completed=include_completed,
    )


async def open_blockers_text(
    views: Views, team_id: strawberry.ID | None = None, as_of: dt.datetime | None = None
) -> str:
    return await views.open_blockers(None if team_id is None else str(team_id), scope=current_scope(), as_of=as_of)


async def goal_rollup_text(views: Views, id: strawberry.ID | None = None) -> str | None:
    return await views.goal_rollup(None if id is None else str(id), scope=current_scope())


# Each view root field by its GraphQL name: its read (api/graphql/compiled_views.py answers them too).
VIEW_READS: dict[str, Any] = {
    "teamCoverage": team_coverage_text,
    "staleGoalStories": stale_goal_stories_text,
    "openBlockers": open_blockers_text,
    "goalRollup": goal_rollup_text,
}

# The types made of the store's JSON alone: any other object type under a view is an entity, loaded by a resolver.
VIEW_TYPES = frozenset(
    cls.__name__
    for cls in (
        CoverageCell,
        CoverageBlocker,
        CoverageDay,
        CoverageMember,
        TeamCoverage,
        UpdateSummary,
        StaleGoalStory,
        OpenBlocker,
        StatusCounts,
        RollupGoal,
        GoalRollup,
    )
)

# Where the store's JSON names a field otherwise than GraphQL does: (type, GraphQL field) -> the JSON key.
STORE_KEYS = {("StatusCounts", camel(status)): status for status in GOAL_STORY_STATUSES}


@strawberry.type
class ViewQueries:
    @strawberry.field(
        description="Per day from `from` to `to` (both included, at most "
        f"{MAX_COVERAGE_DAYS} days): the team's members expected to check in, who did, who did not, and the "
        "blockers raised. A check-in counts for the day its `date` names; a member is expected on a day once "
        "that day has begun in their own timezone (as of `asOf`, default now). Null when the team does not "
        "exist or lies outside the caller's teams."
    )
    async def team_coverage(
        self,
        info: Info,
        team_id: strawberry.ID,
        from_: Annotated[dt.date, strawberry.argument(name="from")],
        to: dt.date,
        as_of: Annotated[
            dt.datetime | None, strawberry.argument(description="The moment to take the coverage at (default: now).")
        ] = None,
        weekdays_only: Annotated[
            bool, strawberry.argument(description="Expect check-ins on Monday to Friday only.")
        ] = False,
    ) -> TeamCoverage | None:
        text = await team_coverage_text(_views(info), team_id, from_, to, as_of, weekdays_only)
        return None if text is None else _coverage(json.loads(text))

    @strawberry.field(
        description="Goal stories without an update for at least `days` days (0 to "
        f"{MAX_STALE_DAYS}), the stalest first, with their latest update; completed ones only when asked."
    )
    async def stale_goal_stories(
        self,
        info: Info,
        days: int,
        team_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only goal stories this team is involved with.")
        ] = None,
        include_completed: bool = False,
        as_of: Annotated[
            dt.datetime | None, strawberry.argument(description="The moment to count from (default: now).")
        ] = None,
    ) -> list[StaleGoalStory]:
        text = await stale_goal_stories_text(_views(info), days, team_id, include_completed, as_of)
        return [_stale(row) for row in json.loads(text)]

    @strawberry.field(
        description="Each member's latest check-in to the team (every team when none is named) whose blockers "
        "are not empty, the oldest first, with its age in days of the member's own calendar."
    )
    async def open_blockers(
        self,
        info: Info,
        team_id: strawberry.ID | None = None,
        as_of: Annotated[
            dt.datetime | None, strawberry.argument(description="The moment to count ages at (default: now).")
        ] = None,
    ) -> list[OpenBlocker]:
        text = await open_blockers_text(_views(info), team_id, as_of)
        return [_blocker(row) for row in json.loads(text)]

    @strawberry.field(
        description="A goal story's whole subtree (every tree from its root when `id` is null) with each goal's "
        "latest status and progress, the goals by status and the average progress. Null when the goal story "
        "does not exist or lies outside the caller's teams."
    )
    async def goal_rollup(self, info: Info, id: strawberry.ID | None = None) -> GoalRollup | None:
        text = await goal_rollup_text(_views(info), id)
        return None if text is None else _rollup(json.loads(text))
