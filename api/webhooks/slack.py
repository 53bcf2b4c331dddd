"""`format: SLACK`: a readable message per check-in or goal story update, for a Slack incoming webhook.

Blockers are called out on a line of their own, so a team can pipe them into a
channel without writing code. Names come from the reference's actor and team
(or goal story), read with it; a deleted check-in or update is still announced,
by ids.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# What the deliverer reads along with a reference for this format: key -> (relation, field).
NAMES = {
    "team_checkin": {"actor": ("actor", "name"), "team": ("team", "name")},
    "goal_story_update": {"actor": ("actor", "name"), "goal_story": ("goal_story", "title")},
}
STATUS = {
    "on_track": "on track",
    "at_risk": ":warning: at risk",
    "off_track": ":rotating_light: off track",
    "completed": ":white_check_mark: completed",
    "paused": "paused",
}
MAX_CONTENT = 500


def message(event: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, Any]:
    """Slack's incoming-webhook body: `text` in Slack's mrkdwn."""
    kind = event["event_type"]
    if reference is None:
        what = "a team check-in" if kind == "team_checkin" else "a goal story update"
        return {
            "text": f"*{_escape(event['actor_id'])}* posted {what} ({_escape(event['reference_id'])}), since deleted."
        }
    actor = _name(reference, "actor", "name") or event["actor_id"]
    edited = _edited(event, reference)
    if kind == "team_checkin":
        team = _name(reference, "team", "name") or reference.get("team_id", "")
        verb = "edited their check-in" if edited else "checked in"
        lines = [f"*{_escape(actor)}* {verb} for *{_escape(team)}* ({_escape(str(reference.get('date', '')))})"]
        for label, key in (("Done", "previously"), ("Next", "next")):
            if reference.get(key):
                lines.append(f"{label}: {_items(reference[key])}")
        if reference.get("blockers"):
            lines.append(f":no_entry: *Blocked:* {_items(reference['blockers'])}")
        return {"text": "\n".join(lines)}
    goal = _name(reference, "goal_story", "title") or reference.get("goal_story_id", "")
    verb = "edited their update on" if edited else "posted an update on"
    headline = f"*{_escape(actor)}* {verb} *{_escape(goal)}*: {_escape(reference.get('title', ''))}"
    details = [STATUS[reference["status"]]] if reference.get("status") in STATUS else []
    if reference.get("progress_percent") is not None:
        details.append(f"{reference['progress_percent']}%")
    lines = [headline + (f" ({', '.join(details)})" if details else "")]
    content = str(reference.get("content") or "")
    if content:
        clipped = content if len(content) <= MAX_CONTENT else content[:MAX_CONTENT].rstrip() + "…"
        lines.append("> " + _escape(clipped).replace("\n", "\n> "))
    return {"text": "\n".join(lines)}


def _name(reference: dict[str, Any], key: str, field: str) -> str | None:
    related = reference.get(key)
    return related.get(field) if isinstance(related, dict) else None


def _edited(event: dict[str, Any], reference: dict[str, Any]) -> bool:
    """An edit's event occurs at the time of the edit; a creation's at the row's created_at."""
    created = reference.get("created_at")
    if not created:
        return False
    try:
        return dt.datetime.fromisoformat(event["occurred_at"]) != dt.datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return False


def _items(values: list[str]) -> str:
    return "; ".join(_escape(str(v)) for v in values)


def _escape(text: str) -> str:
    # The three characters Slack's mrkdwn wants escaped.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
