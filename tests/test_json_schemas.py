"""The project's JSON Schemas (schema/*.schema.json) against the CoCo 1.0.0 contract.

Tests that compare with the upstream schemas and examples need
../shared/coco-schema-1.0.0 next to the repository; without it they skip and
the tests that only need schema/ still run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from api.ops.schemas import (
    ENTITY_NAMES,
    SCHEMA_DIR,
    SCHEMA_FILES,
    format_checker,
    is_date,
    is_date_time,
    load_schema,
    validator,
)

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://coco-server.local/schema/"
UPSTREAM = Path(__file__).resolve().parents[1].parent / "shared" / "coco-schema-1.0.0"

needs_upstream = pytest.mark.skipif(
    not (UPSTREAM / "schemas").is_dir(),
    reason=f"upstream CoCo 1.0.0 schemas not found at {UPSTREAM} (a plain clone has no ../shared)",
)

ENUMS = {
    ("actor", "actor_type"): ["person", "agent"],
    ("goal_story_update", "status"): ["on_track", "at_risk", "off_track", "completed", "paused"],
    ("coordination_event", "event_type"): ["team_checkin", "goal_story_update"],
}


def _stem(entity: str) -> str:
    return SCHEMA_FILES[entity].removesuffix(".schema.json")


def _upstream_schema(entity: str) -> dict[str, Any]:
    return json.loads((UPSTREAM / "schemas" / SCHEMA_FILES[entity]).read_text(encoding="utf-8"))


def _upstream_example(entity: str) -> dict[str, Any]:
    return json.loads((UPSTREAM / "examples" / f"{_stem(entity)}.json").read_text(encoding="utf-8"))


def _errors(entity: str, doc: Any) -> list[str]:
    return [e.message for e in validator(entity).iter_errors(doc)]


# Full and minimal documents of each entity, valid under our schemas.
FULL: dict[str, dict[str, Any]] = {
    "actor": {"id": "p-1", "actor_type": "agent", "name": "Research Bot", "role": "Research", "timezone": "UTC"},
    "team": {"id": "t-1", "name": "Product", "description": "Core product", "member_ids": ["p-1", "p-2"]},
    "team_checkin": {
        "id": "ci-1",
        "actor_id": "p-1",
        "team_id": "t-1",
        "date": "2026-05-22",
        "next": ["a", "b"],
        "previously": [],
        "blockers": ["c"],
        "created_at": "2026-05-22T09:15:00.123456+00:00",
    },
    "goal_story": {
        "id": "g-2",
        "title": "Sub-goal",
        "description": "Why",
        "actor_ids": ["p-1"],
        "team_ids": [],
        "parent_id": "g-1",
        "timeframe": {"start": "2026-01-06", "end": "2026-03-31"},
        "created_at": "2026-01-06T10:00:00Z",
    },
    "goal_story_update": {
        "id": "gu-1",
        "actor_id": "p-1",
        "goal_story_id": "g-1",
        "date": "2026-05-22",
        "status": "paused",
        "title": "Headline",
        "content": "Narrative",
        "progress_percent": 100,
        "created_at": "2026-05-22T14:30:00-06:00",
    },
    "coordination_event": {
        "id": "5f0c6b8e-8d7a-4a4e-9a0e-0d6f3c2b1a00",
        "actor_id": "p-1",
        "event_type": "goal_story_update",
        "reference_id": "gu-1",
        "occurred_at": "2026-05-22T20:30:00Z",
    },
}

MINIMAL: dict[str, dict[str, Any]] = {
    entity: {k: v for k, v in doc.items() if k in load_schema(entity)["required"]} for entity, doc in FULL.items()
}


def _with(entity: str, **changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(FULL[entity]))
    doc.update(changes)
    return doc


def _without(entity: str, name: str) -> dict[str, Any]:
    return {k: v for k, v in FULL[entity].items() if k != name}


def _walk_properties(schema: dict[str, Any], prefix: str = ""):
    """(path, subschema) of every property, nested object properties included."""
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path, sub
        yield from _walk_properties(sub, f"{path}.")


# --- our schemas on their own ------------------------------------------------


def test_every_entity_has_a_schema_file():
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json")) == sorted(SCHEMA_FILES.values())
    assert set(ENTITY_NAMES) == set(FULL)


@pytest.mark.parametrize("entity", ENTITY_NAMES)
def test_schema_is_valid_draft_2020_12(entity):
    schema = load_schema(entity)
    assert schema["$schema"] == DRAFT_2020_12
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == ID_BASE + SCHEMA_FILES[entity]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema.get("title") and schema.get("description")


@pytest.mark.parametrize("entity", ENTITY_NAMES)
def test_every_property_is_described(entity):
    for path, sub in _walk_properties(load_schema(entity)):
        assert isinstance(sub.get("description"), str) and len(sub["description"]) > 10, path


@pytest.mark.parametrize("entity", ENTITY_NAMES)
def test_shape_rules_stated_in_the_brief(entity):
    props = dict(_walk_properties(load_schema(entity)))
    for path, sub in props.items():
        name = path.rsplit(".", 1)[-1]
        if name == "id" or name.endswith("_id"):
            assert sub["minLength"] == 1, path
            assert sub["type"] == (["string", "null"] if name == "parent_id" else "string"), path
        elif name.endswith("_ids") or name in ("next", "previously", "blockers"):
            assert sub["type"] == "array" and sub["items"]["type"] == "string", path
            if name.endswith("_ids"):
                assert sub["items"]["minLength"] == 1, path
        elif name in ("date", "start", "end"):
            assert (sub["type"], sub["format"]) == ("string", "date"), path
        elif name in ("created_at", "occurred_at"):
            assert (sub["type"], sub["format"]) == ("string", "date-time"), path
        elif name == "progress_percent":
            assert (sub["type"], sub["minimum"], sub["maximum"]) == ("integer", 0, 100)
        elif name == "timeframe":
            assert sub["type"] == "object" and sub["additionalProperties"] is False
            assert "required" not in sub
    for (ent, name), values in ENUMS.items():
        if ent == entity:
            assert props[name]["enum"] == values


@pytest.mark.parametrize("entity", ENTITY_NAMES)
def test_embedded_examples_validate(entity):
    schema = load_schema(entity)
    assert schema.get("examples"), "each schema carries an example for API users"
    for example in schema["examples"]:
        assert _errors(entity, example) == []


@pytest.mark.parametrize("entity", ENTITY_NAMES)
def test_full_and_minimal_documents_validate(entity):
    assert _errors(entity, FULL[entity]) == []
    assert _errors(entity, MINIMAL[entity]) == []


@pytest.mark.parametrize(
    ("entity", "doc"),
    [
        ("goal_story", _with("goal_story", parent_id=None)),
        ("goal_story", _with("goal_story", timeframe={})),
        ("goal_story", _with("goal_story", timeframe={"start": "2026-01-06"})),
        ("goal_story", _with("goal_story", timeframe={"end": "2026-03-31"})),
        ("goal_story_update", _with("goal_story_update", progress_percent=0)),
        ("goal_story_update", _with("goal_story_update", status="on_track")),
        ("goal_story_update", _with("goal_story_update", created_at="2024-02-29T23:59:59.5z")),
        ("coordination_event", _with("coordination_event", occurred_at="2026-05-22t20:30:00+05:45")),
        ("actor", _with("actor", actor_type="person")),
        ("team", _with("team", member_ids=[])),
        ("team_checkin", _with("team_checkin", next=[""])),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_edge_values_accepted(entity, doc):
    assert _errors(entity, doc) == []


def _invalid_cases():
    for entity in ENTITY_NAMES:
        for name in load_schema(entity)["required"]:
            yield pytest.param(entity, _without(entity, name), id=f"{entity}-missing-{name}")
        yield pytest.param(entity, _with(entity, extra="x"), id=f"{entity}-unknown-property")
        yield pytest.param(entity, _with(entity, id=""), id=f"{entity}-empty-id")
        yield pytest.param(entity, _with(entity, id=7), id=f"{entity}-numeric-id")
        yield pytest.param(entity, [FULL[entity]], id=f"{entity}-array-not-object")
    bad = {
        "actor-bad-enum": ("actor", {"actor_type": "robot"}),
        "actor-enum-wrong-case": ("actor", {"actor_type": "PERSON"}),
        "actor-null-optional": ("actor", {"role": None}),
        "team-member-ids-not-array": ("team", {"member_ids": "p-1"}),
        "team-member-ids-non-string": ("team", {"member_ids": ["p-1", 2]}),
        "team-member-ids-empty-string": ("team", {"member_ids": [""]}),
        "checkin-bad-date-feb-30": ("team_checkin", {"date": "2026-02-30"}),
        "checkin-bad-date-slashes": ("team_checkin", {"date": "2026/05/22"}),
        "checkin-bad-date-basic-format": ("team_checkin", {"date": "20260522"}),
        "checkin-date-is-timestamp": ("team_checkin", {"date": "2026-05-22T00:00:00Z"}),
        "checkin-next-not-list": ("team_checkin", {"next": "do things"}),
        "checkin-blockers-non-string": ("team_checkin", {"blockers": [{"text": "x"}]}),
        "checkin-empty-actor-id": ("team_checkin", {"actor_id": ""}),
        "checkin-created-at-no-offset": ("team_checkin", {"created_at": "2026-05-22T09:15:00"}),
        "checkin-created-at-space": ("team_checkin", {"created_at": "2026-05-22 09:15:00Z"}),
        "checkin-created-at-garbage": ("team_checkin", {"created_at": "yesterday"}),
        "checkin-created-at-date-only": ("team_checkin", {"created_at": "2026-05-22"}),
        "checkin-created-at-hour-25": ("team_checkin", {"created_at": "2026-05-22T25:00:00Z"}),
        "checkin-created-at-bad-offset": ("team_checkin", {"created_at": "2026-05-22T09:15:00+05:60"}),
        "goal-parent-id-number": ("goal_story", {"parent_id": 5}),
        "goal-parent-id-empty": ("goal_story", {"parent_id": ""}),
        "goal-timeframe-unknown-key": ("goal_story", {"timeframe": {"start": "2026-01-06", "until": "2026-03-31"}}),
        "goal-timeframe-bad-date": ("goal_story", {"timeframe": {"start": "2026-13-01"}}),
        "goal-timeframe-null-bound": ("goal_story", {"timeframe": {"start": None}}),
        "goal-timeframe-string": ("goal_story", {"timeframe": "2026-01-06/2026-03-31"}),
        "goal-team-ids-non-string": ("goal_story", {"team_ids": [1]}),
        "update-bad-enum": ("goal_story_update", {"status": "done"}),
        "update-progress-101": ("goal_story_update", {"progress_percent": 101}),
        "update-progress-negative": ("goal_story_update", {"progress_percent": -1}),
        "update-progress-5.5": ("goal_story_update", {"progress_percent": 5.5}),
        "update-progress-string": ("goal_story_update", {"progress_percent": "50"}),
        "update-progress-bool": ("goal_story_update", {"progress_percent": True}),
        "update-progress-null": ("goal_story_update", {"progress_percent": None}),
        "update-bad-date": ("goal_story_update", {"date": "22.05.2026"}),
        "event-bad-enum": ("coordination_event", {"event_type": "goal_story"}),
        "event-occurred-at-bad": ("coordination_event", {"occurred_at": "2026-05-22T20:30Z"}),
    }
    for case_id, (entity, changes) in bad.items():
        yield pytest.param(entity, _with(entity, **changes), id=case_id)


@pytest.mark.parametrize(("entity", "doc"), list(_invalid_cases()))
def test_invalid_documents_rejected(entity, doc):
    assert _errors(entity, doc), f"accepted: {doc!r}"


# --- the format checks themselves --------------------------------------------


def test_format_checker_checks_dates_and_timestamps():
    """date-time must be checked even without the optional rfc3339-validator package."""
    checker = format_checker()
    assert {"date", "date-time"} <= set(checker.checkers)
    assert checker.conforms("2026-03-05", "date")
    assert not checker.conforms("2026-02-29", "date")
    assert checker.conforms("2026-03-05T09:15:00-06:00", "date-time")
    assert not checker.conforms("2026-03-05T09:15:00", "date-time")
    assert not checker.conforms("not a timestamp", "date-time")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-03-05T09:15:00-06:00", True),
        ("2026-03-05T09:15:00Z", True),
        ("2026-03-05T09:15:00.1234567+14:00", True),
        ("2026-03-05t09:15:00z", True),
        ("2026-03-05T09:15:00", False),
        ("2026-03-05T09:15Z", False),
        ("2026-03-05 09:15:00Z", False),
        ("2026-03-05T09:15:00+0600", False),
        ("2026-03-05T09:15:00+24:00", False),
        ("2026-02-29T09:15:00Z", False),
        ("2026-03-05T09:15:60Z", False),
        ("٢٠٢٦-03-05T09:15:00Z", False),
        ("", False),
    ],
)
def test_is_date_time(value, ok):
    assert is_date_time(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-03-05", True),
        ("2024-02-29", True),
        ("2026-02-29", False),
        ("2026-3-5", False),
        ("20260305", False),
        ("2026-W10-4", False),
        ("٢٠٢٦-03-05", False),
        ("", False),
    ],
)
def test_is_date(value, ok):
    assert is_date(value) is ok


def test_load_schema_returns_a_copy_and_rejects_unknown_names():
    load_schema("actor")["properties"].clear()
    assert "name" in load_schema("actor")["properties"]
    assert _errors("actor", FULL["actor"]) == []
    with pytest.raises(ValueError, match="unknown entity"):
        load_schema("actors")
    with pytest.raises(ValueError, match="unknown entity"):
        validator("goal-story")


# --- against upstream CoCo 1.0.0 ----------------------------------------------


@needs_upstream
@pytest.mark.parametrize("entity", ENTITY_NAMES)
def test_upstream_example_validates_against_upstream_and_ours(entity):
    example = _upstream_example(entity)
    upstream = _upstream_schema(entity)
    Draft202012Validator.check_schema(upstream)
    upstream_validator = Draft202012Validator(upstream, format_checker=format_checker())
    assert [e.message for e in upstream_validator.iter_errors(example)] == []
    assert _errors(entity, example) == []


@needs_upstream
@pytest.mark.parametrize("entity", ENTITY_NAMES)
def test_our_documents_validate_against_upstream(entity):
    """Ours is at least as strict: whatever we accept, upstream accepts too."""
    upstream = Draft202012Validator(_upstream_schema(entity), format_checker=format_checker())
    docs = [FULL[entity], MINIMAL[entity], *load_schema(entity)["examples"]]
    for doc in docs:
        assert [e.message for e in upstream.iter_errors(doc)] == []


@needs_upstream
@pytest.mark.parametrize("entity", ENTITY_NAMES)
def test_agrees_with_upstream(entity):
    ours, theirs = load_schema(entity), _upstream_schema(entity)
    assert ours["title"] == theirs["title"]
    assert set(ours["properties"]) == set(theirs["properties"])
    assert sorted(ours["required"]) == sorted(theirs["required"])
    our_props, their_props = dict(_walk_properties(ours)), dict(_walk_properties(theirs))
    assert set(our_props) == set(their_props)
    for path, theirs_sub in their_props.items():
        ours_sub = our_props[path]
        assert ours_sub.get("enum") == theirs_sub.get("enum"), path
        assert ours_sub.get("type") == theirs_sub.get("type"), path
        assert ours_sub.get("format") == theirs_sub.get("format"), path
        for key in ("minimum", "maximum"):
            assert ours_sub.get(key) == theirs_sub.get(key), (path, key)
        if "items" in theirs_sub:
            assert ours_sub["items"]["type"] == theirs_sub["items"]["type"], path
        assert sorted(ours_sub.get("required", [])) == sorted(theirs_sub.get("required", [])), path
