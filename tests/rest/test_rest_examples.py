"""Each upstream CoCo example, POSTed over REST (its references created first), reads back equal and valid."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.entities import ENTITIES, Kind
from api.ops.schemas import validator
from tests.conftest import SHARED

EXAMPLES = SHARED / "coco-schema-1.0.0" / "examples"
FILES = {
    "actor": "actor.json",
    "team": "team.json",
    "team_checkin": "team-checkin.json",
    "goal_story": "goal-story.json",
    "goal_story_update": "goal-story-update.json",
}
JSON = {"Content-Type": "application/json", "Prefer": "return=representation"}

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/coco-schema-1.0.0 is not present")


def load(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def same(entity_name: str, stored: dict[str, Any], example: dict[str, Any]) -> bool:
    """Equal as documents, timestamps compared as instants (the server may return another offset)."""
    ent = ENTITIES[entity_name]
    if set(stored) != set(example):
        return False
    for f in ent.fields:
        if f.name not in example:
            continue
        if f.kind is Kind.TIMESTAMP:
            if dt.datetime.fromisoformat(stored[f.name]) != dt.datetime.fromisoformat(example[f.name]):
                return False
        elif stored[f.name] != example[f.name]:
            return False
    return True


async def create_references(http: httpx.AsyncClient, entity_name: str, example: dict[str, Any]) -> None:
    ent = ENTITIES[entity_name]
    for f in ent.fields:
        if not f.references or f.name not in example or example[f.name] is None:
            continue
        ids = example[f.name] if f.is_list else [example[f.name]]
        for ref in ids:
            stub = {
                "actor": {"actor_type": "person", "name": f"Stub {ref}"},
                "team": {"name": f"Stub {ref}"},
                "goal_story": {"title": f"Stub {ref}"},
            }[f.references]
            resource = ENTITIES[f.references].resource
            r = await http.post(
                f"/{resource}", json={"id": ref, **stub}, headers={**JSON, "Prefer": "resolution=ignore-duplicates"}
            )
            assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize("entity_name", list(FILES))
async def test_example_round_trips(clean: AsyncEngine, http: httpx.AsyncClient, entity_name: str) -> None:
    example = load(FILES[entity_name])
    validator(entity_name).validate(example)
    await create_references(http, entity_name, example)
    resource = ENTITIES[entity_name].resource
    r = await http.post(f"/{resource}", json=example, headers=JSON)
    assert r.status_code == 201, r.text
    [returned] = r.json()
    r = await http.get(f"/{resource}", params={"id": f"eq.{example['id']}"})
    [read_back] = r.json()
    for document in (returned, read_back):
        validator(entity_name).validate(document)
        assert same(entity_name, document, example), (document, example)
    one = await http.get(
        f"/{resource}", params={"id": f"eq.{example['id']}"}, headers={"Accept": "application/vnd.pgrst.object+json"}
    )
    assert one.json() == read_back


async def test_the_event_example_is_what_a_checkin_records(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    event = load("coordination-event.json")
    validator("coordination_event").validate(event)
    checkin = load("team-checkin.json")
    assert checkin["id"] == event["reference_id"]
    await create_references(http, "team_checkin", checkin)
    r = await http.post("/team_checkins", json=checkin, headers={"Content-Type": "application/json"})
    assert r.status_code == 201
    [stored] = (await http.get("/coordination_events", params={"reference_id": f"eq.{checkin['id']}"})).json()
    validator("coordination_event").validate(stored)
    assert {k: v for k, v in stored.items() if k not in ("id", "occurred_at")} == {
        k: v for k, v in event.items() if k not in ("id", "occurred_at")
    }
    assert dt.datetime.fromisoformat(stored["occurred_at"]) == dt.datetime.fromisoformat(event["occurred_at"])
    # and it cannot be written back
    r = await http.post("/coordination_events", json=event, headers={"Content-Type": "application/json"})
    assert r.status_code == 405
