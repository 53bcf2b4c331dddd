"""The tools that read: list and search actors, teams and goal stories; a team's
recent check-ins; a goal story with its sub-goals and latest updates; the
coordination events after a cursor.

Each builds one `ReadPlan` (nested reads are embeds in it), so PostgreSQL
answers each call with one statement and the JSON it builds; only small
reshaping (a limit-1 embed to an object) happens here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from api.entities import EVENT_TYPES
from api.entities import entity as entity_named
from api.errors import NotFound
from api.mcp.arguments import Arguments
from api.mcp.schemas import Schema, date_schema, field_schema, id_schema, object_schema
from api.mcp.tools import Backend, Result, ToolSpec, columns, first, search
from api.plan import Column, Condition, Embed, OrderTerm, ReadPlan, all_of

ACTOR = entity_named("actor")
ACTOR_TYPE = ACTOR.field("actor_type")
assert ACTOR_TYPE is not None

# The cursor as text, as GraphQL, the event stream and webhooks give it (a bigint outgrows a JSON number's
# safe range in many clients).
EVENT_COLUMNS = (
    *columns("id"),
    Column("cursor", "cursor", cast="text"),
    *columns("event_type", "actor_id", "reference_id", "occurred_at"),
)
RECENT_DAYS = 7
# What PostgreSQL's OFFSET and the bigint event cursor can hold, so a larger number is refused by name.
MAX_OFFSET = 2**31 - 1
MAX_CURSOR = 2**63 - 1
NAMED = columns("id", "name")
LATEST_FIRST = (OrderTerm("date", descending=True), OrderTerm("created_at", descending=True))
LATEST_UPDATE = ReadPlan(
    "goal_story_update",
    order=LATEST_FIRST,
    limit=1,
    columns=columns("id", "date", "title", "status", "progress_percent", "actor_id"),
)


def _paging(default: int, most: int) -> dict[str, Schema]:
    return {
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": most,
            "default": default,
            "description": f"How many to return at most (default {default}, at most {most}).",
        },
        "offset": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_OFFSET,
            "default": 0,
            "description": "How many to skip, to read the next page (use next_offset from the last answer).",
        },
    }


def _search(what: str) -> Schema:
    return {"type": "string", "description": f"Optional text to look for, case-insensitively, in {what}."}


def _page(rows: list[dict[str, Any]], total: int, limit: int, offset: int, key: str) -> Result:
    more = offset + len(rows) < total
    return {key: rows, "total": total, "offset": offset, "next_offset": offset + len(rows) if more else None}


# ---------------------------------------------------------------- actors


async def _list_actors(backend: Backend, args: Arguments) -> Result:
    limit, offset = args.integer("limit", 50), args.integer("offset", 0)
    actor_type = args.choice("actor_type")
    plan = ReadPlan(
        "actor",
        where=all_of(
            search(args.text("search"), "name", "role", "id"),
            Condition("actor_type", "eq", actor_type) if actor_type else None,
        ),
        order=(OrderTerm("name"), OrderTerm("id")),
        limit=limit,
        offset=offset,
    )
    rows, total = await backend.page(plan)
    return _page(rows, total, limit, offset, "actors")


LIST_ACTORS = ToolSpec(
    name="list_actors",
    title="List actors",
    description=(
        "List the actors (people and agents) who give input to coordination loops, by name, with their ids, "
        "roles and timezones. Use it to find the actor_id to post as, or who someone is. Filter with search "
        "(matches name, role or id) and actor_type. Paged: returns total and next_offset."
    ),
    input_schema=object_schema(
        {
            "search": _search("the name, role or id"),
            "actor_type": field_schema(ACTOR_TYPE, "Only people or only agents."),
            **_paging(50, 500),
        }
    ),
    handler=_list_actors,
    read_only=True,
)


# ---------------------------------------------------------------- teams


async def _list_teams(backend: Backend, args: Arguments) -> Result:
    limit, offset = args.integer("limit", 50), args.integer("offset", 0)
    member = args.identifier("member_id")
    plan = ReadPlan(
        "team",
        where=all_of(
            search(args.text("search"), "name", "description", "id"),
            Condition("member_ids", "cs", [member]) if member else None,
        ),
        order=(OrderTerm("name"), OrderTerm("id")),
        limit=limit,
        offset=offset,
        embeds=(Embed("members", "members", ReadPlan("actor", columns=columns("id", "name", "actor_type"))),),
    )
    rows, total = await backend.page(plan)
    return _page(rows, total, limit, offset, "teams")


LIST_TEAMS = ToolSpec(
    name="list_teams",
    title="List teams",
    description=(
        "List teams with their ids, descriptions and members (id, name, person or agent). Use it to find the "
        "team_id for a check-in. Filter with search (matches name, description or id) and member_id (only "
        "the teams that actor belongs to). Paged: returns total and next_offset."
    ),
    input_schema=object_schema(
        {
            "search": _search("the name, description or id"),
            "member_id": id_schema("Only teams this actor is a member of.", "actor"),
            **_paging(50, 500),
        }
    ),
    handler=_list_teams,
    read_only=True,
    references={"member_id": "actor"},
)


# ---------------------------------------------------------------- goal stories


async def _list_goal_stories(backend: Backend, args: Arguments) -> Result:
    limit, offset = args.integer("limit", 50), args.integer("offset", 0)
    team, actor, parent = args.identifier("team_id"), args.identifier("actor_id"), args.identifier("parent_id")
    plan = ReadPlan(
        "goal_story",
        where=all_of(
            search(args.text("search"), "title", "description", "id"),
            Condition("team_ids", "cs", [team]) if team else None,
            Condition("actor_ids", "cs", [actor]) if actor else None,
            Condition("parent_id", "eq", parent) if parent else None,
            Condition("parent_id", "is", "null") if args.boolean("roots_only") else None,
        ),
        order=(OrderTerm("title"), OrderTerm("id")),
        limit=limit,
        offset=offset,
        embeds=(Embed("latest_update", "goal_story_updates", LATEST_UPDATE),),
    )
    rows, total = await backend.page(plan)
    for row in rows:
        row["latest_update"] = first(row.get("latest_update"))
    return _page(rows, total, limit, offset, "goal_stories")


LIST_GOAL_STORIES = ToolSpec(
    name="list_goal_stories",
    title="List and search goal stories",
    description=(
        "List goal stories (projects, objectives, initiatives; they nest through parent_id) with their ids, "
        "timeframes, teams, actors and latest update (status, progress). Use it to find the goal_story_id for "
        "an update. Filter with search (matches title, description or id), team_id, actor_id, parent_id (the "
        "sub-goals of one goal story) or roots_only. Paged: returns total and next_offset."
    ),
    input_schema=object_schema(
        {
            "search": _search("the title, description or id"),
            "team_id": id_schema("Only goal stories this team is involved in.", "team"),
            "actor_id": id_schema("Only goal stories this actor is involved in.", "actor"),
            "parent_id": id_schema("Only the direct sub-goals of this goal story.", "goal_story"),
            "roots_only": {
                "type": "boolean",
                "default": False,
                "description": "Only top-level goal stories (those without a parent).",
            },
            **_paging(50, 500),
        }
    ),
    handler=_list_goal_stories,
    read_only=True,
    references={"team_id": "team", "actor_id": "actor", "parent_id": "goal_story"},
)


async def _get_goal_story(backend: Backend, args: Arguments) -> Result:
    goal_id = args.required_id("goal_story_id")
    updates = args.integer("updates", 5)
    plan = ReadPlan(
        "goal_story",
        where=Condition("id", "eq", goal_id),
        embeds=(
            Embed("parent", "parent", ReadPlan("goal_story", columns=columns("id", "title"))),
            Embed("teams", "teams", ReadPlan("team", columns=NAMED)),
            Embed("actors", "actors", ReadPlan("actor", columns=columns("id", "name", "actor_type"))),
            Embed(
                "sub_goals",
                "children",
                ReadPlan(
                    "goal_story",
                    order=(OrderTerm("title"), OrderTerm("id")),
                    columns=columns("id", "title", "timeframe"),
                    embeds=(Embed("latest_update", "goal_story_updates", LATEST_UPDATE),),
                ),
            ),
            Embed(
                "latest_updates",
                "goal_story_updates",
                ReadPlan(
                    "goal_story_update",
                    order=LATEST_FIRST,
                    limit=updates,
                    embeds=(Embed("actor", "actor", ReadPlan("actor", columns=NAMED)),),
                ),
            ),
        ),
    )
    rows = await backend.rows(plan)
    if not rows:
        raise NotFound("goal_story", goal_id)
    story = rows[0]
    for sub_goal in story.get("sub_goals") or []:
        sub_goal["latest_update"] = first(sub_goal.get("latest_update"))
    return {"goal_story": story}


GET_GOAL_STORY = ToolSpec(
    name="get_goal_story",
    title="Read a goal story",
    description=(
        "Read one goal story in full: its description, timeframe, parent, teams and actors (with names), its "
        "sub-goals (each with its latest update) and its latest updates (newest first, with who wrote them). "
        "Read it before posting an update, to continue where the last update left off."
    ),
    input_schema=object_schema(
        {
            "goal_story_id": id_schema("The goal story to read.", "goal_story"),
            "updates": {
                "type": "integer",
                "minimum": 0,
                "maximum": 50,
                "default": 5,
                "description": "How many of the latest updates to include (default 5).",
            },
        },
        required=["goal_story_id"],
    ),
    handler=_get_goal_story,
    read_only=True,
    references={"goal_story_id": "goal_story"},
)


# ---------------------------------------------------------------- check-ins


def recent_checkins(
    team_id: str,
    since: dt.date,
    until: dt.date | None = None,
    *,
    actor_id: str | None = None,
    only_with_blockers: bool = False,
    limit: int | None = None,
) -> ReadPlan:
    """A team's check-ins dated from `since` (through `until`), newest first, with the actor's name."""
    return ReadPlan(
        "team_checkin",
        where=all_of(
            Condition("team_id", "eq", team_id),
            Condition("date", "gte", since.isoformat()),
            Condition("date", "lte", until.isoformat()) if until else None,
            Condition("actor_id", "eq", actor_id) if actor_id else None,
            Condition("blockers", "neq", []) if only_with_blockers else None,
        ),
        order=LATEST_FIRST,
        limit=limit,
        embeds=(Embed("actor", "actor", ReadPlan("actor", columns=NAMED)),),
    )


async def find_team(backend: Backend, team_id: str) -> dict[str, Any]:
    rows = await backend.rows(
        ReadPlan("team", where=Condition("id", "eq", team_id), columns=columns("id", "name", "description"))
    )
    if not rows:
        raise NotFound("team", team_id)
    return rows[0]


def first_day_of_recent(today: dt.date | None = None) -> dt.date:
    """The first of the last RECENT_DAYS days, today (UTC) included."""
    return (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=RECENT_DAYS - 1)


def blockers_of(checkins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every blocker bullet of the check-ins, with who raised it and when."""
    return [
        {
            "blocker": text,
            "date": c["date"],
            "actor_id": c["actor_id"],
            "actor_name": (c.get("actor") or {}).get("name"),
            "team_checkin_id": c["id"],
        }
        for c in checkins
        for text in c.get("blockers") or []
    ]


async def _get_team_checkins(backend: Backend, args: Arguments) -> Result:
    team_id = args.required_id("team_id")
    since = args.date("since") or first_day_of_recent()
    until = args.date("until")
    limit = args.integer("limit", 100)
    plan = recent_checkins(
        team_id,
        since,
        until,
        actor_id=args.identifier("actor_id"),
        only_with_blockers=args.boolean("only_with_blockers"),
        limit=limit,
    )
    team = await find_team(backend, team_id)
    checkins = await backend.rows(plan)
    return {
        "team": team,
        "since": since.isoformat(),
        "until": until.isoformat() if until else None,
        "checkins": checkins,
        "blockers": blockers_of(checkins),
    }


GET_TEAM_CHECKINS = ToolSpec(
    name="get_team_checkins",
    title="Read a team's recent check-ins",
    description=(
        f"Read a team's check-ins since a date (default: the last {RECENT_DAYS} days), newest first, each with "
        "who posted it and their previously / next / blockers bullets, plus every blocker gathered in one list "
        "(blockers) with who raised it and when. Use it to catch up before a check-in or to spot what blocks "
        "the team. Filter with actor_id, until, or only_with_blockers."
    ),
    input_schema=object_schema(
        {
            "team_id": id_schema("The team whose check-ins to read.", "team"),
            "since": date_schema(f"Earliest check-in date to include (default: {RECENT_DAYS - 1} days before today)."),
            "until": date_schema("Latest check-in date to include (default: no limit)."),
            "actor_id": id_schema("Only this actor's check-ins.", "actor"),
            "only_with_blockers": {
                "type": "boolean",
                "default": False,
                "description": "Only check-ins that list at least one blocker.",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 500,
                "default": 100,
                "description": "How many check-ins to return at most (default 100).",
            },
        },
        required=["team_id"],
    ),
    handler=_get_team_checkins,
    read_only=True,
    references={"team_id": "team", "actor_id": "actor"},
)


# ---------------------------------------------------------------- coordination events


async def _get_coordination_events(backend: Backend, args: Arguments) -> Result:
    after = args.integer("after", 0)
    limit = args.integer("limit", 100)
    event_type = args.choice("event_type")
    plan = ReadPlan(
        "coordination_event",
        where=all_of(
            Condition("cursor", "gt", after),
            Condition("actor_id", "eq", args.identifier("actor_id")) if args.given("actor_id") else None,
            Condition("event_type", "eq", event_type) if event_type else None,
            Condition("reference_id", "eq", args.identifier("reference_id")) if args.given("reference_id") else None,
        ),
        order=(OrderTerm("cursor"),),
        # One more than asked tells whether more are waiting.
        limit=limit + 1,
        columns=EVENT_COLUMNS,
        embeds=(Embed("actor", "actor", ReadPlan("actor", columns=NAMED)),),
    )
    events = await backend.rows(plan)
    more = len(events) > limit
    events = events[:limit]
    return {"events": events, "next_cursor": events[-1]["cursor"] if events else str(after), "has_more": more}


GET_COORDINATION_EVENTS = ToolSpec(
    name="get_coordination_events",
    title="Read coordination events after a cursor",
    description=(
        "Read coordination events (who posted a team check-in or a goal story update, and when) in commit "
        "order, after a cursor. Start with after=0 (or leave it out) for the oldest; every answer has "
        "next_cursor: pass it as after next time to get only what came since, missing nothing. has_more says "
        "whether more events are waiting right now. reference_id is the id of the check-in or update."
    ),
    input_schema=object_schema(
        {
            "after": {
                "type": ["string", "integer"],
                "pattern": "^[0-9]+$",
                "minimum": 0,
                "maximum": MAX_CURSOR,
                "default": 0,
                "description": "Return events whose cursor is greater than this: the next_cursor of your last "
                "call, or 0 to start from the beginning.",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": 100,
                "description": "How many events to return at most (default 100).",
            },
            "actor_id": id_schema("Only events of this actor.", "actor"),
            "event_type": {
                "type": "string",
                "enum": list(EVENT_TYPES),
                "description": f"Only events of this kind. One of: {', '.join(EVENT_TYPES)}.",
            },
            "reference_id": id_schema("Only the events of this check-in or goal story update."),
        }
    ),
    handler=_get_coordination_events,
    read_only=True,
    references={"actor_id": "actor"},
)

READ_TOOLS = (LIST_ACTORS, LIST_TEAMS, LIST_GOAL_STORIES, GET_GOAL_STORY, GET_TEAM_CHECKINS, GET_COORDINATION_EVENTS)
