"""Filters over coordination events that the live feed adds to the client's own."""

from __future__ import annotations

from api.plan import And, Condition, Filter, Or, Related


def after_cursor(after: int) -> Condition:
    return Condition("cursor", "gt", after)


def up_to_cursor(last: int) -> Condition:
    return Condition("cursor", "lte", last)


def teams_filter(team_ids: list[str]) -> Filter:
    """Events whose reference belongs to one of the teams: a check-in's team_id, or a goal story
    update's goal story's team_ids. An event whose check-in or update has been deleted no longer
    belongs to any team."""
    ids = list(team_ids)
    return Or(
        (
            And(
                (
                    Condition("event_type", "eq", "team_checkin"),
                    Related("team_checkin", Condition("team_id", "in", ids)),
                )
            ),
            And(
                (
                    Condition("event_type", "eq", "goal_story_update"),
                    Related("goal_story_update", Related("goal_story", Condition("team_ids", "ov", ids))),
                )
            ),
        )
    )
