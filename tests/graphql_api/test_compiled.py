"""Compiled execution answers exactly what the resolvers answer, on many generated queries."""

from __future__ import annotations

import random
from typing import Any

import pytest
from graphql import (
    FragmentDefinitionNode,
    OperationDefinitionNode,
    build_schema,
    get_named_type,
    is_leaf_type,
    parse,
)
from graphql.execution.values import get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config import Settings
from api.entities import ENTITIES, Kind
from api.errors import InvalidInput
from api.graphql.compiled import NotPlannable, run
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.names import camel
from api.graphql.relations import FIELDS, ROOTS, Related, Shape
from api.graphql.schema import make_schema
from api.store.reads import Reader
from api.store.writes import WriteService

QUERIES = 200
SETTINGS = Settings()
SCHEMA = make_schema(SETTINGS)
# The schema's types as graphql-core objects, rebuilt from its printed SDL (Strawberry keeps its own private).
GRAPHQL = build_schema(str(SCHEMA))
TYPES = GRAPHQL.type_map
LIMITS = Limits(max_page_size=SETTINGS.graphql_max_page_size, default_page_size=SETTINGS.graphql_default_page_size)
IDS = {
    "actor": ["a-1", "a-2", "a-4", "zz"],
    "team": ["t-1", "t-3"],
    "goal_story": ["g-1", "g-2", "g-4"],
    "team_checkin": ["c-1", "c-3"],
    "goal_story_update": ["u-2", "u-3"],
    "coordination_event": ["nope"],
}


class Generator:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.fragments: list[str] = []
        self.aliases = 0

    def where(self, entity_name: str, depth: int = 0) -> str:
        r = self.random
        conditions = []
        for f in r.sample(ENTITIES[entity_name].fields, k=min(2, len(ENTITIES[entity_name].fields))):
            name = camel(f.name)
            if f.kind in (Kind.TEXT, Kind.ID):
                conditions.append(
                    r.choice(
                        [
                            f'{name}: {{ilike: "%{r.choice("aeinot")}%"}}',
                            f"{name}: {{isNull: {r.choice(['true', 'false'])}}}",
                        ]
                    )
                )
            elif f.kind is Kind.DATE:
                conditions.append(f'{name}: {{{r.choice(["gte", "lt"])}: "2026-05-{r.randint(1, 21):02d}"}}')
            elif f.kind is Kind.INTEGER and not f.internal:
                conditions.append(f"{name}: {{gte: {r.choice([0, 30, 100])}}}")
            elif f.kind is Kind.ENUM:
                conditions.append(f"{name}: {{eq: {r.choice(f.choices).upper()}}}")
            elif not f.required and f.kind is not Kind.TIMEFRAME:
                conditions.append(f"{name}: {{isNull: {r.choice(['true', 'false'])}}}")
        if depth < 2 and r.random() < 0.4:
            conditions.append(self.relation_condition(entity_name, depth))
        return "{" + ", ".join(conditions) + "}"

    def relation_condition(self, entity_name: str, depth: int) -> str:
        """A condition on a relation: its one row (or pick), or some, every or none of its rows."""
        related = [f for f in FIELDS[entity_name].values() if isinstance(f, Related)]
        field = self.random.choice(related)
        inner = self.where(field.target, depth + 1)
        if field.shape in (Shape.ONE, Shape.PICK):
            return f"{field.key}: {inner}"
        return f"{field.key}: {{{self.random.choice(['some', 'every', 'none'])}: {inner}}}"

    def order(self, type_name: str) -> str:
        fields = list(TYPES[f"{type_name}OrderField"].values)
        terms = []
        for field in self.random.sample(fields, k=self.random.randint(1, 2)):
            nulls = self.random.choice(["", ", nulls: FIRST", ", nulls: LAST"])
            terms.append(f"{{field: {field}, direction: {self.random.choice(['ASC', 'DESC'])}{nulls}}}")
        return "[" + ", ".join(terms) + "]"

    def connection_arguments(self, entity_name: str, type_name: str, cursor: str | None = None) -> str:
        r = self.random
        arguments = []
        if r.random() < 0.5:
            arguments.append(f"where: {self.where(entity_name)}")
        if r.random() < 0.6:
            arguments.append(f"orderBy: {self.order(type_name)}")
        size = r.randint(0, 4)
        match r.choice(["first", "last", "both", "none"]):
            case "first":
                arguments.append(f"first: {size}")
            case "last":
                arguments.append(f"last: {size}")
            case "both":
                arguments.append(f"first: {size + 1}, last: {size}")
        if cursor is not None:
            arguments.append(f"{r.choice(['after', 'before'])}: $cursor")
        return "(" + ", ".join(arguments) + ")" if arguments else ""

    def alias(self) -> str:
        """Now and then an alias (distinct across the query, so that none clashes)."""
        self.aliases += 1
        return f"k{self.aliases}: " if self.random.random() < 0.2 else ""

    def connection(self, entity_name: str, connection_type: Any, depth: int) -> str:
        r = self.random
        node_type = get_named_type(connection_type.fields["nodes"].type)
        parts = []
        if r.random() < 0.6:
            parts.append(f"{self.alias()}nodes {self.selection(entity_name, node_type, depth)}")
        if r.random() < 0.4:
            entry = [f"{self.alias()}cursor", f"{self.alias()}node {self.selection(entity_name, node_type, depth)}"]
            if r.random() < 0.2:
                entry.append(f"{self.alias()}__typename")
            r.shuffle(entry)
            parts.append(f"{self.alias()}edges {{ {' '.join(entry)} }}")
        if r.random() < 0.4:
            parts.append(f"{self.alias()}totalCount")
        if r.random() < 0.4:
            info = [
                f"{self.alias()}{name}"
                for name in r.sample(
                    ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"], k=r.randint(1, 5)
                )
            ]
            parts.append(f"{self.alias()}pageInfo {{ {' '.join(info)} }}")
        if r.random() < 0.1:
            parts.append("__typename")
        parts.extend(self.aggregate_fields(entity_name, connection_type))
        if "latestUpdates" in connection_type.fields and r.random() < 0.3:
            latest_type = get_named_type(connection_type.fields["latestUpdates"].type)
            inner = self.aggregate_fields("goal_story_update", latest_type) or ["__typename"]
            parts.append(f"{self.alias()}latestUpdates {{ {' '.join(inner)} }}")
        r.shuffle(parts)
        return "{ " + " ".join(parts or ["totalCount"]) + " }"

    def aggregate_fields(self, entity_name: str, holder: Any) -> list[str]:
        """Now and then `aggregates`, `groupedAggregates` (with a having condition at times), or both."""
        r = self.random
        parts = []
        aggregates_type = get_named_type(holder.fields["aggregates"].type)
        if r.random() < 0.3:
            parts.append(f"{self.alias()}aggregates {self.aggregates_selection(aggregates_type)}")
        if r.random() < 0.3:
            type_name = aggregates_type.name.removesuffix("Aggregates")
            keys = r.sample(list(TYPES[f"{type_name}GroupBy"].values), k=r.randint(0, 2))
            arguments = [f"groupBy: [{', '.join(keys)}]"]
            if keys and r.random() < 0.5:
                arguments.append(f"having: {self.having(TYPES[f'{type_name}HavingInput'])}")
            selection = self.aggregates_selection(aggregates_type)
            parts.append(f"{self.alias()}groupedAggregates({', '.join(arguments)}) {selection}")
        return parts

    def aggregates_selection(self, aggregates_type: Any) -> str:
        r = self.random
        parts = [f"{self.alias()}keys"] if r.random() < 0.5 else []
        specs = [name for name in aggregates_type.fields if name != "keys"]
        for spec in r.sample(specs, k=r.randint(1, min(3, len(specs)))):
            spec_type = get_named_type(aggregates_type.fields[spec].type)
            leaves = [
                f"{self.alias()}{leaf}"
                for leaf in r.sample(list(spec_type.fields), k=r.randint(1, 3) % (len(spec_type.fields) + 1) or 1)
            ]
            if r.random() < 0.1:
                leaves.append("__typename")
            parts.append(f"{self.alias()}{spec} {{ {' '.join(leaves)} }}")
        if r.random() < 0.1:
            parts.append("__typename")
        return "{ " + " ".join(parts) + " }"

    def having(self, having_type: Any) -> str:
        r = self.random
        values = {
            "HavingBigintFilter": ['"1"', "2", "0"],
            "HavingBigfloatFilter": ['"30"', "45.5", "0"],
            "HavingIntFilter": ["30", "100"],
            "HavingDatetimeFilter": ['"2026-05-08T10:30:00Z"'],
            "HavingDateFilter": ['"2026-05-08"'],
        }
        specs = [name for name in having_type.fields if name not in ("AND", "OR")]
        spec = r.choice(specs)
        spec_type = get_named_type(having_type.fields[spec].type)
        column = r.choice(list(spec_type.fields))
        filter_type = get_named_type(spec_type.fields[column].type)
        operator = r.choice(list(filter_type.fields))
        condition = f"{{{spec}: {{{column}: {{{operator}: {r.choice(values[filter_type.name])}}}}}}}"
        if r.random() < 0.2:
            return f"{{OR: [{condition}, {{distinctCount: {{id: {{lessThan: 2}}}}}}]}}"
        return condition

    def selection(self, entity_name: str, object_type: Any, depth: int) -> str:
        r = self.random
        leaves = [name for name, f in object_type.fields.items() if is_leaf_type(get_named_type(f.type))]
        parts = [
            (f"x{i}: " if r.random() < 0.2 else "") + name
            for i, name in enumerate(r.sample(leaves, k=r.randint(1, len(leaves))))
        ]
        if "timeframe" in object_type.fields and r.random() < 0.5:
            parts.append("timeframe { start end }")
        if r.random() < 0.1:
            parts.append("__typename")
        if entity_name == "coordination_event" and r.random() < 0.5:
            checkin = self.selection("team_checkin", TYPES["TeamCheckin"], 3)
            update = self.selection("goal_story_update", TYPES["GoalStoryUpdate"], 3)
            name = f"U{len(self.fragments)}"
            parts.append(f"reference {{ __typename ... on TeamCheckin {checkin} ...{name} }}")
            self.fragments.append(f"fragment {name} on GoalStoryUpdate {update}")
        if depth < 3:
            related = {name: f for name, f in FIELDS[entity_name].items() if isinstance(f, Related)}
            for name in r.sample(sorted(related), k=min(len(related), r.randint(0, 2))):
                target = related[name].target
                field_type = get_named_type(object_type.fields[name].type)
                if related[name].shape is Shape.CONNECTION:
                    node_type = get_named_type(field_type.fields["nodes"].type)
                    arguments = self.connection_arguments(target, node_type.name)
                    parts.append(f"{self.alias()}{name}{arguments} {self.connection(target, field_type, depth + 1)}")
                else:
                    parts.append(f"{self.alias()}{name} {self.selection(target, field_type, depth + 1)}")
        if r.random() < 0.15:
            # The same selection through a fragment and an @include/@skip pair.
            return "{ ...on " + object_type.name + " { " + " ".join(parts) + " } __typename @skip(if: true) }"
        return "{ " + " ".join(parts) + " }"

    def query(self, cursor: str | None) -> tuple[str, str]:
        """A query and the root field's name."""
        self.fragments = []
        query, root = self.query_and_root(cursor)
        return " ".join([query, *self.fragments]), root

    def query_and_root(self, cursor: str | None) -> tuple[str, str]:
        query_type = GRAPHQL.query_type
        root = self.random.choice(sorted(ROOTS))
        entity_name = ROOTS[root].entity
        field_type = get_named_type(query_type.fields[root].type)
        if ROOTS[root].shape is Shape.ONE:
            body = f'{root}(id: "{self.random.choice(IDS[entity_name])}") {self.selection(entity_name, field_type, 1)}'
            return "query Q { " + body + " }", root
        node_type = get_named_type(field_type.fields["nodes"].type)
        arguments = self.connection_arguments(entity_name, node_type.name, cursor)
        header = "query Q($cursor: String)" if cursor is not None else "query Q"
        return f"{header} {{ {root}{arguments} {self.connection(entity_name, field_type, 1)} }}", root


async def _resolved(engine: AsyncEngine, query: str, variables: dict[str, Any]) -> Any:
    context = Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS, resolvers_only=True)
    result = await SCHEMA.execute(query, variable_values=variables, context_value=context)
    return result


async def _compiled(engine: AsyncEngine, query: str, variables: dict[str, Any]) -> Any:
    context = Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS)
    document = parse(query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    coerced = get_variable_values(GRAPHQL, operation.variable_definitions or (), variables)
    assert not isinstance(coerced, list), coerced
    return await run(SCHEMA, operation, fragments, coerced, context)


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two JSON values first differ (key order included), for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            found = _first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b and type(a) is type(b) else f"{path}: {a!r} != {b!r}"


async def test_compiled_and_resolved_answers_are_identical(world: AsyncEngine) -> None:
    generator = Generator(seed=7)
    compared = 0
    aggregated = dict.fromkeys(("aggregates", "groupedAggregates", "having", "latestUpdates"), 0)
    for n in range(QUERIES):
        # Every other connection query pages from a cursor the resolvers handed out.
        cursor = None
        if n % 2:
            query, root = generator.query(None)
            if ROOTS[root].shape is Shape.CONNECTION:
                start = await _resolved(world, f"{{ {root}(first: 2) {{ pageInfo {{ endCursor }} }} }}", {})
                cursor = start.data[root]["pageInfo"]["endCursor"]
        query, root = generator.query(cursor)
        variables = {"cursor": cursor} if cursor is not None else {}
        resolved = await _resolved(world, query, variables)
        if resolved.errors:
            if any(e.path is None for e in resolved.errors):
                continue  # a document validation refuses (aliases the generator made clash): never executed
            # Bad input (e.g. a cursor of another order): the compiled path must refuse it too, and fall back.
            with pytest.raises(InvalidInput):
                await _compiled(world, query, variables)
            continue
        compiled = await _compiled(world, query, variables)
        # The JSON as the client receives it: values, nulls, key order.
        assert _first_difference(compiled, resolved.data) is None, (query, _first_difference(compiled, resolved.data))
        compared += 1
        for name in aggregated:
            aggregated[name] += name in query
    assert compared > QUERIES * 0.6
    # Aggregates were compared too: whole connections, groups (with having), latest updates.
    assert min(aggregated.values()) >= 5, aggregated


async def test_the_schema_answers_through_the_compiled_path(world: AsyncEngine) -> None:
    query = """query Q($first: Int, $withTitle: Boolean!) { goalStories(first: $first, orderBy: [{field: TITLE}]) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ...Story } } } }
        fragment Story on GoalStory { id title @include(if: $withTitle) timeframe { start }
          latestUpdate { status progressPercent createdAt actor { actorType name } }
          children(first: 1) { nodes { id teams { name members { id } } } } }"""
    variables = {"first": 2, "withTitle": True}
    compiled = await SCHEMA.execute(
        query,
        variable_values=variables,
        context_value=Context(reader=Reader(world), writer=WriteService(world), limits=LIMITS),
    )
    resolved = await _resolved(world, query, variables)
    assert compiled.errors is None and compiled.data == resolved.data
    assert compiled.data["goalStories"]["totalCount"] == 4
    assert [e["node"]["title"] for e in compiled.data["goalStories"]["edges"]] == ["API", "Launch"]
    launch = compiled.data["goalStories"]["edges"][1]["node"]
    assert launch["latestUpdate"] == {
        "status": "AT_RISK",
        "progressPercent": 30,
        "createdAt": "2026-05-08T10:00:00+00:00",
        "actor": {"actorType": "PERSON", "name": "Ada"},
    }


async def test_what_is_not_compiled_falls_back(world: AsyncEngine) -> None:
    for query in (
        "{ actors { nodes { teams { totalCount } teams { totalCount } } } }",
        'mutation { deleteActor(id: "none") { id } }',
    ):
        with pytest.raises(NotPlannable):
            await _compiled(world, query, {})


async def test_timestamps_are_spelled_as_the_resolvers_spell_them(fresh_world: AsyncEngine) -> None:
    await WriteService(fresh_world).create(
        "team_checkin",
        [
            {
                "id": "c-9",
                "actor_id": "a-1",
                "team_id": "t-1",
                "date": "2026-05-22",
                "created_at": "2026-05-22T10:00:00.5Z",
            }
        ],
    )
    query = '{ teamCheckin(id: "c-9") { createdAt } teamCheckins(last: 1) { nodes { createdAt } } }'
    expected = {"createdAt": "2026-05-22T10:00:00.500000+00:00"}
    assert (
        (await _resolved(fresh_world, query, {})).data
        == await _compiled(fresh_world, query, {})
        == {"teamCheckin": expected, "teamCheckins": {"nodes": [expected]}}
    )


TRICKY_TITLES = [
    "Ünïcode",
    "emoji \U0001f600 astral",
    'quote " and \\ backslash',
    "tab\tand\nnewline",
    "del \x7f char",
    "日本語",
    "plain",
]


async def test_cursors_of_any_text_are_the_resolvers_cursors(fresh_world: AsyncEngine) -> None:
    """Cursors are built in SQL: non-ASCII (astral too), quotes, backslashes and control characters in the
    order keys must come out byte for byte as the resolvers' json.dumps + base64 spells them."""
    await WriteService(fresh_world).create(
        "goal_story",
        [
            {"id": f"g-t{i}", "title": title, "parent_id": "g-1", "created_at": f"2026-02-0{i + 1}T09:00:00.25Z"}
            for i, title in enumerate(TRICKY_TITLES)
        ],
    )
    query = """query Q($after: String) {
      goalStories(orderBy: [{field: TITLE, direction: DESC}, {field: CREATED_AT}], first: 20, after: $after) {
        edges { cursor node { title createdAt } } pageInfo { startCursor endCursor hasNextPage hasPreviousPage } }
      goalStory(id: "g-1") { children(orderBy: [{field: TITLE}], last: 5, after: $after) {
        pageInfo { startCursor endCursor } e: edges { c: cursor } } } }"""
    resolved = await _resolved(fresh_world, query, {})
    assert resolved.errors is None
    compiled = await _compiled(fresh_world, query, {})
    assert _first_difference(compiled, resolved.data) is None, _first_difference(compiled, resolved.data)
    titles = [e["node"]["title"] for e in compiled["goalStories"]["edges"]]
    assert set(TRICKY_TITLES) <= set(titles)
    for edge in compiled["goalStories"]["edges"]:
        variables = {"after": edge["cursor"]}
        paged = await _resolved(fresh_world, query, variables)
        if paged.errors:  # the children's order is another: that cursor is refused, by both paths
            with pytest.raises(InvalidInput):
                await _compiled(fresh_world, query, variables)
            continue
        again = await _compiled(fresh_world, query, variables)
        assert _first_difference(again, paged.data) is None, _first_difference(again, paged.data)


async def test_empty_pages_and_nulls(world: AsyncEngine) -> None:
    query = """{ none: goalStories(first: 0) { totalCount nodes { id } pageInfo { hasNextPage hasPreviousPage
                 startCursor endCursor } edges { cursor } }
               last0: goalStories(first: 3, last: 0) { pageInfo { hasPreviousPage startCursor } nodes { id } }
               missing: goalStory(id: "nope") { id }
               g3: goalStory(id: "g-3") { timeframe { start end } parent { id } latestUpdate { id }
                 updates { totalCount edges { node { id } } pageInfo { endCursor } } teams { id } } }"""
    resolved = await _resolved(world, query, {})
    compiled = await _compiled(world, query, {})
    assert resolved.errors is None and _first_difference(compiled, resolved.data) is None, _first_difference(
        compiled, resolved.data
    )
    assert compiled["none"] == {
        "totalCount": 4,
        "nodes": [],
        "pageInfo": {"hasNextPage": True, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
        "edges": [],
    }
    assert compiled["missing"] is None and compiled["g3"]["timeframe"] is None
