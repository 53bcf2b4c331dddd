"""The tools that write: a team check-in and a goal story update.

Each is one `WriteService.create`, so it follows the same rules and records the
same coordination event, in the same transaction, as every other path. The
row and its event are read back inside that transaction through the query
plan, so the agent sees exactly the representation other readers see.
"""

from __future__ import annotations

import json
from typing import Any

from api.entities import Entity
from api.entities import entity as entity_named
from api.mcp.arguments import Arguments
from api.mcp.read_tools import EVENT_COLUMNS
from api.mcp.schemas import document_schema
from api.mcp.tools import Backend, Result, ToolSpec
from api.plan import Condition, OrderTerm, ReadPlan
from api.store import Returning, Written

BULLETS = "One string per bullet, without a leading dash; an empty list or leaving it out means none."


def _write_tool(ent: Entity, *, name: str, title: str, description: str, descriptions: dict[str, str]) -> ToolSpec:
    async def handler(backend: Backend, args: Arguments) -> Result:
        result = await backend.writer.create(ent.name, [args.document()], returning=_read_back(ent.name))
        row, event = result.returned
        return {ent.name: row, "coordination_event": event}

    return ToolSpec(
        name=name,
        title=title,
        description=description,
        # created_at is for imports of history; an agent posts now.
        input_schema=document_schema(ent, leave_out=("created_at",), descriptions=descriptions),
        handler=handler,
        read_only=False,
        references={f.name: f.references for f in ent.fields if f.references},
    )


def _read_back(entity_name: str) -> Returning:
    async def returning(written: Written) -> tuple[dict[str, Any], dict[str, Any] | None]:
        rows = json.loads(await written.rows(ReadPlan(entity_name)))
        latest_event = ReadPlan(
            "coordination_event",
            where=Condition("reference_id", "in", written.ids),
            order=(OrderTerm("cursor", descending=True),),
            limit=1,
            columns=EVENT_COLUMNS,
        )
        events = json.loads(await written.json_array(latest_event))
        return rows[0], (events[0] if events else None)

    return returning


POST_TEAM_CHECKIN = _write_tool(
    entity_named("team_checkin"),
    name="post_team_checkin",
    title="Post a team check-in",
    description=(
        "Post a check-in for an actor (a person, or you as an agent) to one of their teams: what was done since "
        "the last check-in (previously), what comes next (next) and what blocks progress (blockers), each a list "
        "of short bullet strings. Records a coordination event. Pass actor_id, team_id and date (YYYY-MM-DD, "
        "usually today); find ids with list_actors and list_teams. Returns the stored check-in and its "
        'coordination event. Example arguments: {"actor_id": "p-1", "team_id": "t-1", '
        '"date": "2026-05-22", "previously": ["Shipped the signup form"], "next": ["Write the '
        'onboarding emails"], "blockers": ["Waiting for legal review of the emails"]}'
    ),
    descriptions={
        "id": "Optional id for the new check-in; leave it out and the server generates one.",
        "date": "The day this check-in covers, usually today.",
        "previously": f"Progress since the last check-in. {BULLETS}",
        "next": f"What this actor plans to work on next. {BULLETS}",
        "blockers": f"Anything preventing progress. {BULLETS}",
    },
)

POST_GOAL_STORY_UPDATE = _write_tool(
    entity_named("goal_story_update"),
    name="post_goal_story_update",
    title="Post a goal story update",
    description=(
        "Post a progress update on a goal story (a project, objective or initiative): a one-line headline "
        "(title), a narrative (content) of where things stand and why, and optionally a status and a "
        "progress_percent from 0 to 100. Records a coordination event. Pass actor_id (who reports), "
        "goal_story_id (find it with list_goal_stories, and read it first with get_goal_story), date "
        "(YYYY-MM-DD), title and content. Returns the stored update and its coordination event. Example "
        'arguments: {"actor_id": "p-1", "goal_story_id": "g-1", "date": "2026-05-22", "title": '
        '"Onboarding emails are live", "content": "All five emails ship next week; time-to-value is down '
        'to 4 days.", "status": "on_track", "progress_percent": 70}'
    ),
    descriptions={
        "id": "Optional id for the new update; leave it out and the server generates one.",
        "date": "The date of this update, usually today.",
        "status": "Where the goal story stands as of this update.",
        "progress_percent": "How far along the goal story is, as a whole number from 0 to 100.",
    },
)

WRITE_TOOLS = (POST_TEAM_CHECKIN, POST_GOAL_STORY_UPDATE)
