"""The coordination views as tools: who of a team checked in day by day, which goal stories went quiet,
what blocks whom, and how a goal's subtree stands. Each is one statement of the data layer
(api/store/views.py), asked with the caller's team scope."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from api.errors import InvalidInput, NotFound
from api.mcp.arguments import Arguments
from api.mcp.schemas import date_schema, id_schema, object_schema
from api.mcp.tools import Backend, Result, ToolSpec
from api.store import MAX_COVERAGE_DAYS, MAX_STALE_DAYS, Views, current_scope

DEFAULT_COVERAGE_DAYS = 7
DEFAULT_STALE_DAYS = 14


def _timestamp(args: Arguments, name: str) -> dt.datetime | None:
    value = args.text(name)
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a timestamp such as 2026-05-22T09:15:00Z, not {value!r}", field=name
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


AS_OF = {
    "type": "string",
    "format": "date-time",
    "description": "The moment to take the view at (RFC 3339, e.g. 2026-05-22T09:15:00Z); default: now.",
}


async def _team_coverage(backend: Backend, args: Arguments) -> Result:
    team_id = args.required_id("team_id")
    today = dt.datetime.now(dt.UTC).date()
    last = args.date("to") or today
    first = args.date("from") or last - dt.timedelta(days=DEFAULT_COVERAGE_DAYS - 1)
    text = await Views(backend.reader).team_coverage(
        team_id,
        first,
        last,
        scope=current_scope(),
        as_of=_timestamp(args, "as_of"),
        weekdays_only=args.boolean("weekdays_only"),
    )
    if text is None:
        # Whether it does not exist or lies outside the caller's teams is not told apart.
        raise NotFound("team", team_id)
    coverage: dict[str, Any] = json.loads(text)
    return coverage


TEAM_COVERAGE = ToolSpec(
    name="get_team_coverage",
    title="Who of a team checked in, day by day",
    description=(
        "For each day from `from` to `to` (default: the last 7 days, at most "
        f"{MAX_COVERAGE_DAYS}): the team's members expected to check in, who did (checkedIn), who did not "
        "(missing), and the blockers raised, plus each member's totals. A check-in counts for the day its date "
        "names; a member is expected once that day has begun in their own timezone, so members abroad are not "
        "counted missing before their day starts. Use it to see who has not checked in this week."
    ),
    input_schema=object_schema(
        {
            "team_id": id_schema("The team whose coverage to read.", "team"),
            "from": date_schema("First day (default: 6 days before `to`)."),
            "to": date_schema("Last day, included (default: today, UTC)."),
            "weekdays_only": {
                "type": "boolean",
                "default": False,
                "description": "Expect check-ins on Monday to Friday only.",
            },
            "as_of": AS_OF,
        },
        required=["team_id"],
    ),
    handler=_team_coverage,
    read_only=True,
    references={"team_id": "team"},
)


async def _stale_goal_stories(backend: Backend, args: Arguments) -> Result:
    days = args.integer("days", DEFAULT_STALE_DAYS)
    text = await Views(backend.reader).stale_goal_stories(
        days,
        scope=current_scope(),
        team_id=args.identifier("team_id"),
        as_of=_timestamp(args, "as_of"),
        include_completed=args.boolean("include_completed"),
    )
    return {"days": days, "goal_stories": json.loads(text)}


STALE_GOAL_STORIES = ToolSpec(
    name="get_stale_goal_stories",
    title="Goal stories without a recent update",
    description=(
        f"Goal stories without an update for at least `days` days (default {DEFAULT_STALE_DAYS}), the stalest "
        "first, each with its latest update's status, progress and date (or none: then counted from the goal's "
        "creation). Completed goals are left out unless include_completed. Use it to find goals to chase for an "
        "update."
    ),
    input_schema=object_schema(
        {
            "days": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_STALE_DAYS,
                "default": DEFAULT_STALE_DAYS,
                "description": "How many days without an update make a goal story stale.",
            },
            "team_id": id_schema("Only goal stories this team is involved with.", "team"),
            "include_completed": {
                "type": "boolean",
                "default": False,
                "description": "Include goal stories whose latest status is completed.",
            },
            "as_of": AS_OF,
        }
    ),
    handler=_stale_goal_stories,
    read_only=True,
    references={"team_id": "team"},
)


async def _open_blockers(backend: Backend, args: Arguments) -> Result:
    team_id = args.identifier("team_id")
    text = await Views(backend.reader).open_blockers(team_id, scope=current_scope(), as_of=_timestamp(args, "as_of"))
    return {"team_id": team_id, "open_blockers": json.loads(text)}


OPEN_BLOCKERS = ToolSpec(
    name="get_open_blockers",
    title="What blocks whom right now",
    description=(
        "Each team member's latest check-in whose blockers are not empty (a later check-in without blockers "
        "clears them), the oldest first, with its age in days of the member's own calendar. Give team_id for "
        "one team, or leave it out for every team. Use it to see what is blocking a team right now."
    ),
    input_schema=object_schema({"team_id": id_schema("Only this team (default: every team).", "team"), "as_of": AS_OF}),
    handler=_open_blockers,
    read_only=True,
    references={"team_id": "team"},
)


async def _goal_rollup(backend: Backend, args: Arguments) -> Result:
    goal_id = args.identifier("goal_story_id")
    text = await Views(backend.reader).goal_rollup(goal_id, scope=current_scope())
    if text is None:
        if goal_id is None:
            return {"id": None, "goals": [], "total": 0}
        raise NotFound("goal_story", goal_id)
    rollup: dict[str, Any] = json.loads(text)
    return rollup


GOAL_ROLLUP = ToolSpec(
    name="get_goal_rollup",
    title="A goal story's subtree with status counts and progress",
    description=(
        "A goal story and all its sub-goals (every goal tree when goal_story_id is left out), depth first, each "
        "with its latest status and progress, then the count of goals by status (statusCounts, 'none' for no "
        "status), the average progress and the average over leaf goals. Use it to report how a goal stands."
    ),
    input_schema=object_schema(
        {"goal_story_id": id_schema("The goal story at the root (default: every tree).", "goal_story")}
    ),
    handler=_goal_rollup,
    read_only=True,
    references={"goal_story_id": "goal_story"},
)

VIEW_TOOLS = (TEAM_COVERAGE, STALE_GOAL_STORIES, OPEN_BLOCKERS, GOAL_ROLLUP)
