"""An event's reference_id names a check-in or an update, and ids are unique per table only: an id that a
check-in and an update share must never join one to the other's events."""

from __future__ import annotations

from typing import Any

import httpx

from tests.rest.conftest import post


async def shared_id(http: httpx.AsyncClient) -> None:
    await post(
        http,
        "team_checkins",
        {"id": "same-1", "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-25", "next": ["A check-in"]},
    )
    await post(
        http,
        "goal_story_updates",
        {
            "id": "same-1",
            "goal_story_id": "g-1",
            "actor_id": "p-1",
            "date": "2026-05-25",
            "title": "An update",
            "content": "Going well.",
            "status": "on_track",
        },
    )


async def test_embedded_events_are_the_resources_own(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    await shared_id(http)
    checkin = (await http.get("/team_checkins?id=eq.same-1&select=id,coordination_events(event_type)")).json()
    update = (await http.get("/goal_story_updates?id=eq.same-1&select=id,coordination_events(event_type)")).json()
    assert checkin == [{"id": "same-1", "coordination_events": [{"event_type": "team_checkin"}]}]
    assert update == [{"id": "same-1", "coordination_events": [{"event_type": "goal_story_update"}]}]


async def test_an_event_embeds_only_the_row_of_its_type(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    await shared_id(http)
    events = (
        await http.get(
            "/coordination_events?reference_id=eq.same-1&order=event_type"
            "&select=event_type,team_checkin(next),goal_story_update(title)"
        )
    ).json()
    assert events == [
        {"event_type": "goal_story_update", "team_checkin": None, "goal_story_update": {"title": "An update"}},
        {"event_type": "team_checkin", "team_checkin": {"next": ["A check-in"]}, "goal_story_update": None},
    ]
    inner = (
        await http.get("/coordination_events?reference_id=eq.same-1&select=event_type,team_checkin!inner(id)")
    ).json()
    assert inner == [{"event_type": "team_checkin", "team_checkin": {"id": "same-1"}}]
