"""Resources: context an agent reads before it writes.

- `coco://goal-stories/tree`: every goal story, nested under its parent, with its latest update;
- `coco://teams/{team_id}/last-week`: a team's members, its check-ins and blockers of the last
  seven days, and the updates on its goal stories in that time;
- `coco://reference/fields`: the CoCo field reference, generated from `api.entities`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import mcp_types as types
from mcp.shared.uri_template import UriTemplate

from api.errors import NotFound
from api.mcp.read_tools import LATEST_FIRST, LATEST_UPDATE, NAMED, RECENT_DAYS, blockers_of, first_day_of_recent
from api.mcp.reference import field_reference
from api.mcp.tools import Backend, columns, first
from api.plan import Condition, Embed, OrderTerm, ReadPlan

TREE_URI = "coco://goal-stories/tree"
REFERENCE_URI = "coco://reference/fields"
LAST_WEEK = UriTemplate.parse("coco://teams/{team_id}/last-week")
# Teams listed as concrete last-week resources (the template covers every team).
TEAMS_LISTED = 100
JSON_TYPE = "application/json"

STATIC = (
    types.Resource(
        uri=TREE_URI,
        name="goal-story-tree",
        title="Goal story tree",
        mime_type=JSON_TYPE,
        description="Every goal story nested under its parent (roots first), each with its timeframe, teams "
        "and latest update (status, progress). Read it to see the big picture before an update.",
    ),
    types.Resource(
        uri=REFERENCE_URI,
        name="field-reference",
        title="CoCo field reference",
        mime_type="text/markdown",
        description="What every field of the six CoCo entities means, its format and allowed values.",
    ),
)

TEMPLATES = (
    types.ResourceTemplate(
        uri_template=str(LAST_WEEK),
        name="team-last-week",
        title="A team's last week",
        mime_type=JSON_TYPE,
        description=f"One team's last {RECENT_DAYS} days: members, check-ins (newest first) with every blocker, "
        "members who have not checked in, and updates on the team's goal stories. Read it before a "
        "check-in. team_id comes from the list_teams tool.",
    ),
)


class UnknownResource(Exception):
    """No resource has this URI (the message says which do)."""


async def list_resources(backend: Backend) -> list[types.Resource]:
    teams = await backend.rows(
        ReadPlan("team", order=(OrderTerm("name"), OrderTerm("id")), limit=TEAMS_LISTED, columns=NAMED)
    )
    per_team = [
        types.Resource(
            uri=LAST_WEEK.expand({"team_id": t["id"]}),
            name=f"team-last-week-{t['id']}",
            title=f"{t['name']}: last week",
            mime_type=JSON_TYPE,
            description=f"The last {RECENT_DAYS} days of the team {t['name']}.",
        )
        for t in teams
    ]
    return [*STATIC, *per_team]


async def read_resource(backend: Backend, uri: str) -> types.TextResourceContents:
    if uri == TREE_URI:
        return _json(uri, {"roots": await goal_story_tree(backend)})
    if uri == REFERENCE_URI:
        return types.TextResourceContents(uri=uri, mime_type="text/markdown", text=field_reference())
    matched = LAST_WEEK.match(uri)
    team_id = matched.get("team_id") if matched is not None else None
    if isinstance(team_id, str) and team_id:
        return _json(uri, await team_last_week(backend, team_id))
    known = ", ".join([TREE_URI, REFERENCE_URI, str(LAST_WEEK)])
    raise UnknownResource(f"There is no resource {uri!r}; the resources are {known}")


def _json(uri: str, value: Any) -> types.TextResourceContents:
    return types.TextResourceContents(uri=uri, mime_type=JSON_TYPE, text=json.dumps(value, ensure_ascii=False))


async def goal_story_tree(backend: Backend) -> list[dict[str, Any]]:
    rows = await backend.rows(
        ReadPlan(
            "goal_story",
            order=(OrderTerm("title"), OrderTerm("id")),
            columns=columns("id", "title", "parent_id", "timeframe", "team_ids"),
            embeds=(Embed("latest_update", "goal_story_updates", LATEST_UPDATE),),
        )
    )
    nodes = {row["id"]: {**row, "latest_update": first(row["latest_update"]), "children": []} for row in rows}
    roots: list[dict[str, Any]] = []
    for node in nodes.values():
        parent = nodes.get(node["parent_id"]) if node["parent_id"] else None
        # The write service keeps parents existing and acyclic, so every node hangs under a root.
        (parent["children"] if parent is not None else roots).append(node)
    return roots


async def team_last_week(backend: Backend, team_id: str) -> dict[str, Any]:
    until = dt.datetime.now(dt.UTC).date()
    since = first_day_of_recent(until)
    in_week = Condition("date", "gte", since.isoformat())
    with_actor = (Embed("actor", "actor", ReadPlan("actor", columns=NAMED)),)
    rows = await backend.rows(
        ReadPlan(
            "team",
            where=Condition("id", "eq", team_id),
            columns=columns("id", "name", "description"),
            embeds=(
                Embed("members", "members", ReadPlan("actor", columns=columns("id", "name", "actor_type", "role"))),
                Embed(
                    "checkins",
                    "team_checkins",
                    ReadPlan("team_checkin", where=in_week, order=LATEST_FIRST, embeds=with_actor),
                ),
                Embed(
                    "goal_stories",
                    "goal_stories",
                    ReadPlan(
                        "goal_story",
                        order=(OrderTerm("title"), OrderTerm("id")),
                        columns=columns("id", "title"),
                        embeds=(
                            Embed(
                                "updates",
                                "goal_story_updates",
                                ReadPlan("goal_story_update", where=in_week, order=LATEST_FIRST, embeds=with_actor),
                            ),
                        ),
                    ),
                ),
            ),
        )
    )
    if not rows:
        raise NotFound("team", team_id)
    team = rows[0]
    checkins = team.pop("checkins") or []
    members = team.pop("members") or []
    goal_stories = team.pop("goal_stories") or []
    posted = {c["actor_id"] for c in checkins}
    return {
        "team": team,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "members": members,
        "checkins": checkins,
        "blockers": blockers_of(checkins),
        "members_without_checkin": [m for m in members if m["id"] not in posted],
        "goal_stories": goal_stories,
    }
