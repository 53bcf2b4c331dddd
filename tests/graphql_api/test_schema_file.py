"""The committed SDL matches the code, and the schema has the names the brief fixes."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLNonNull, GraphQLObjectType, GraphQLUnionType, build_schema, get_named_type

from api.graphql import make_schema
from api.graphql.sdl import sdl

SDL_FILE = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"
# As graphql-core objects, rebuilt from the printed schema (Strawberry keeps its own private).
SCHEMA = build_schema(str(make_schema()))

ENTITY_TYPES = ["Actor", "Team", "TeamCheckin", "GoalStory", "GoalStoryUpdate", "CoordinationEvent"]


def test_committed_sdl_matches_the_code() -> None:
    assert SDL_FILE.read_text() == sdl(), (
        "schema/schema.graphql is out of date; regenerate it with "
        "`.venv/bin/python -m api.graphql.sdl > schema/schema.graphql` and commit it"
    )


@pytest.mark.parametrize(
    ("single", "plural", "type_name"),
    [
        ("actor", "actors", "Actor"),
        ("team", "teams", "Team"),
        ("teamCheckin", "teamCheckins", "TeamCheckin"),
        ("goalStory", "goalStories", "GoalStory"),
        ("goalStoryUpdate", "goalStoryUpdates", "GoalStoryUpdate"),
        ("coordinationEvent", "coordinationEvents", "CoordinationEvent"),
    ],
)
def test_query_fields(single: str, plural: str, type_name: str) -> None:
    query = SCHEMA.query_type.fields
    assert list(query[single].args) == ["id"] and isinstance(query[single].args["id"].type, GraphQLNonNull)
    assert get_named_type(query[single].type).name == type_name
    assert list(query[plural].args) == ["where", "orderBy", "first", "after", "last", "before"]
    connection = get_named_type(query[plural].type)
    assert set(connection.fields) == {"nodes", "edges", "pageInfo", "totalCount", "aggregates", "groupedAggregates"} | (
        {"latestUpdates"} if type_name == "GoalStory" else set()
    )
    assert set(get_named_type(connection.fields["edges"].type).fields) == {"cursor", "node"}
    assert set(get_named_type(connection.fields["pageInfo"].type).fields) == {
        "hasNextPage",
        "hasPreviousPage",
        "startCursor",
        "endCursor",
    }


@pytest.mark.parametrize(
    ("type_name", "field", "target", "connection"),
    [
        ("GoalStory", "parent", "GoalStory", False),
        ("GoalStory", "children", "GoalStory", True),
        ("GoalStory", "updates", "GoalStoryUpdate", True),
        ("GoalStory", "latestUpdate", "GoalStoryUpdate", False),
        ("GoalStory", "teams", "Team", False),
        ("GoalStory", "actors", "Actor", False),
        ("Team", "members", "Actor", False),
        ("Team", "checkins", "TeamCheckin", True),
        ("Team", "goalStories", "GoalStory", True),
        ("Actor", "teams", "Team", True),
        ("Actor", "checkins", "TeamCheckin", True),
        ("Actor", "goalStoryUpdates", "GoalStoryUpdate", True),
        ("Actor", "goalStories", "GoalStory", True),
        ("Actor", "coordinationEvents", "CoordinationEvent", True),
        ("TeamCheckin", "actor", "Actor", False),
        ("TeamCheckin", "team", "Team", False),
        ("TeamCheckin", "coordinationEvents", "CoordinationEvent", True),
        ("GoalStoryUpdate", "actor", "Actor", False),
        ("GoalStoryUpdate", "goalStory", "GoalStory", False),
        ("GoalStoryUpdate", "coordinationEvents", "CoordinationEvent", True),
        ("CoordinationEvent", "actor", "Actor", False),
    ],
)
def test_nested_fields(type_name: str, field: str, target: str, connection: bool) -> None:
    found = SCHEMA.type_map[type_name].fields[field]
    named = get_named_type(found.type)
    if connection:
        assert named.name == f"{target}Connection"
        assert list(found.args) == ["where", "orderBy", "first", "after", "last", "before"]
    else:
        assert named.name == target and not found.args


def test_event_reference_cursor_and_enums() -> None:
    event = SCHEMA.type_map["CoordinationEvent"]
    reference = get_named_type(event.fields["reference"].type)
    assert isinstance(reference, GraphQLUnionType)
    assert {t.name for t in reference.types} == {"TeamCheckin", "GoalStoryUpdate"}
    assert not isinstance(event.fields["reference"].type, GraphQLNonNull)
    assert str(event.fields["cursor"].type) == "String!"
    assert set(SCHEMA.type_map["ActorType"].values) == {"PERSON", "AGENT"}
    assert set(SCHEMA.type_map["GoalStoryStatus"].values) == {"ON_TRACK", "AT_RISK", "OFF_TRACK", "COMPLETED", "PAUSED"}
    assert set(SCHEMA.type_map["CoordinationEventType"].values) == {"TEAM_CHECKIN", "GOAL_STORY_UPDATE"}
    assert str(SCHEMA.type_map["GoalStory"].fields["timeframe"].type) == "Timeframe"
    assert set(SCHEMA.type_map["Timeframe"].fields) == {"start", "end"}
    assert str(SCHEMA.type_map["TeamCheckin"].fields["date"].type) == "Date!"
    assert str(SCHEMA.type_map["TeamCheckin"].fields["createdAt"].type) == "DateTime"


@pytest.mark.parametrize(
    ("type_name", "single", "plural", "event"),
    [
        ("Actor", "actor", "actors", False),
        ("Team", "team", "teams", False),
        ("TeamCheckin", "teamCheckin", "teamCheckins", True),
        ("GoalStory", "goalStory", "goalStories", False),
        ("GoalStoryUpdate", "goalStoryUpdate", "goalStoryUpdates", True),
    ],
)
def test_mutation_fields(type_name: str, single: str, plural: str, event: bool) -> None:
    mutation = SCHEMA.mutation_type.fields
    create, update = mutation[f"create{type_name}"], mutation[f"update{type_name}"]
    delete, bulk = mutation[f"delete{type_name}"], mutation[f"create{plural[0].upper()}{plural[1:]}"]
    assert list(create.args) == ["input"] and list(update.args) == ["id", "input"]
    assert list(delete.args) == ["id"] and list(bulk.args) == ["input"]
    assert str(bulk.args["input"].type) == f"[Create{type_name}Input!]!"
    for field, key in ((create, single), (update, single), (delete, single), (bulk, plural)):
        payload = get_named_type(field.type)
        assert key in payload.fields
        if field is not delete:
            assert ("coordinationEvent" in payload.fields or "coordinationEvents" in payload.fields) is event
    if event:
        assert str(get_named_type(update.type).fields["coordinationEvent"].type) == "CoordinationEvent"
    # Nobody writes coordination events through any API.
    assert not [name for name in mutation if "CoordinationEvent" in name]


def test_types_and_fields_are_described() -> None:
    for name in ENTITY_TYPES:
        described = SCHEMA.type_map[name]
        assert isinstance(described, GraphQLObjectType) and described.description
        assert all(f.description for f in described.fields.values()), name


def test_order_by_and_where_inputs() -> None:
    order = SCHEMA.type_map["GoalStoryUpdateOrderBy"]
    assert set(order.fields) == {"field", "direction", "nulls"}
    assert "DATE" in SCHEMA.type_map["GoalStoryUpdateOrderField"].values
    assert set(SCHEMA.type_map["OrderDirection"].values) == {"ASC", "DESC"}
    assert set(SCHEMA.type_map["NullsOrder"].values) == {"FIRST", "LAST"}
    where = SCHEMA.type_map["TeamWhere"]
    assert {"and", "or", "not", "id", "name", "description", "memberIds"} <= set(where.fields)
    assert set(SCHEMA.type_map["StringFilter"].fields) == {
        "eq",
        "neq",
        "in",
        "notIn",
        "gt",
        "gte",
        "lt",
        "lte",
        "like",
        "ilike",
        "isNull",
    }
    assert {"contains", "containedBy", "overlaps"} <= set(SCHEMA.type_map["StringListFilter"].fields)


def test_aggregate_types_have_pg_aggregates_names() -> None:
    aggregates = SCHEMA.type_map["GoalStoryUpdateAggregates"]
    assert list(aggregates.fields) == [
        "keys",
        "sum",
        "distinctCount",
        "min",
        "max",
        "average",
        "stddevSample",
        "stddevPopulation",
        "varianceSample",
        "variancePopulation",
    ]
    assert str(SCHEMA.type_map["GoalStoryUpdateSumAggregates"].fields["progressPercent"].type) == "BigInt!"
    assert str(SCHEMA.type_map["GoalStoryUpdateAverageAggregates"].fields["progressPercent"].type) == "BigFloat"
    assert str(SCHEMA.type_map["GoalStoryUpdateMaxAggregates"].fields["date"].type) == "Date"
    assert "title" in SCHEMA.type_map["GoalStoryUpdateDistinctCountAggregates"].fields
    # Without a number to add up, an entity has no sum (nor average, deviations, variances).
    assert list(SCHEMA.type_map["ActorAggregates"].fields) == ["keys", "distinctCount"]
    grouped = SCHEMA.type_map["GoalStoryUpdateConnection"].fields["groupedAggregates"]
    assert str(grouped.type) == "[GoalStoryUpdateAggregates!]"
    assert str(grouped.args["groupBy"].type) == "[GoalStoryUpdateGroupBy!]!"
    assert str(grouped.args["having"].type) == "GoalStoryUpdateHavingInput"
    assert {
        "STATUS",
        "ACTOR_ID",
        "GOAL_STORY_ID",
        "DATE",
        "DATE_TRUNCATED_TO_WEEK",
        "CREATED_AT_TRUNCATED_TO_DAY",
    } <= set(SCHEMA.type_map["GoalStoryUpdateGroupBy"].values)
    assert "ID" not in SCHEMA.type_map["GoalStoryUpdateGroupBy"].values
    assert {"TEAM_ID", "ACTOR_ID", "DATE"} <= set(SCHEMA.type_map["TeamCheckinGroupBy"].values)
    having = SCHEMA.type_map["GoalStoryUpdateHavingInput"]
    assert {"AND", "OR", "sum", "average", "distinctCount"} <= set(having.fields)
    assert set(SCHEMA.type_map["HavingIntFilter"].fields) == {
        "equalTo",
        "notEqualTo",
        "greaterThan",
        "greaterThanOrEqualTo",
        "lessThan",
        "lessThanOrEqualTo",
    }
    latest = SCHEMA.type_map["GoalStoryConnection"].fields["latestUpdates"]
    assert set(get_named_type(latest.type).fields) == {"aggregates", "groupedAggregates"}
