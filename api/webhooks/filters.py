"""A webhook's filters as a filter over coordination events (the live feed's vocabulary)."""

from __future__ import annotations

from api.live import teams_filter
from api.plan import Condition, Filter, all_of
from api.store import Webhook


def webhook_filter(hook: Webhook) -> Filter | None:
    """Events of the chosen types, by the chosen actors, whose check-in or update belongs to one of the
    chosen teams; a filter left out (null) does not narrow."""
    return all_of(
        Condition("event_type", "in", list(hook.event_types)) if hook.event_types else None,
        Condition("actor_id", "in", list(hook.actor_ids)) if hook.actor_ids else None,
        teams_filter(hook.team_ids) if hook.team_ids else None,
    )
