"""The views answered through the compiled path (api/graphql/compiled_views.py) are byte for byte the resolvers'.

Documents are generated on the data of tests/test_views.py (members in time zones either side of UTC,
blockers empty, null and several, goal trees with and without updates): for each view field, subsets of its
fields at every level, aliases, inline and named fragments, __typename, @include/@skip, arguments inline or as
variables, several views in one operation, now and then a relation field (which the resolvers answer) or bad
arguments (which they refuse), each under a caller who sees every team or a few.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType, build_schema, get_named_type, parse
from graphql.execution.values import get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config import Settings
from api.edge.auth import READ, Caller, Principal, current_caller
from api.errors import InvalidInput
from api.graphql.compiled import NotPlannable, recent_plans
from api.graphql.compiled_views import PreparedViews, compile_views
from api.graphql.connections import Limits
from api.graphql.context import Context
from api.graphql.schema import make_schema
from api.graphql.strawberry_adapter import graphql_schema
from api.graphql.views import VIEW_READS, VIEW_TYPES
from api.store import Reader, WriteService
from tests.test_views import MOMENTS, SECRET, TEAMS, _token, scoped_url, world
from tests.viewer_documents import dashboard_query

DOCUMENTS = 160
SETTINGS = Settings()
SCHEMA = make_schema(SETTINGS)
GRAPHQL = build_schema(str(SCHEMA))
LIMITS = Limits(max_page_size=SETTINGS.graphql_max_page_size, default_page_size=SETTINGS.graphql_default_page_size)
SCOPES = [None, frozenset({"t-a"}), frozenset({"t-b", "t-empty"}), frozenset()]
# Timestamps as clients write them: other offsets, fractions of a second, none at all.
AS_OF = [
    *(m.isoformat() for m in MOMENTS),
    "2026-03-12T21:15:00.5+05:30",
    "2026-03-15T23:59:59.123456-11:00",
    "2026-03-11T08:00:00",
    "2026-03-14T00:00:00Z",
]
GOALS = ["g-00", "g-03", "g-07", "nope"]

assert SECRET and world and scoped_url  # fixtures of tests/test_views.py, used here by name


def _json(data: Any) -> str:
    """A response's `data` as the route writes it (api/graphql/route.py)."""
    return json.dumps(data, separators=(",", ":"))


class Generator:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.names = 0
        self.fragments: list[str] = []
        self.variables: dict[str, Any] = {}
        self.declared: list[str] = []
        self.relations = False

    def name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def literal(self, value: Any) -> str:
        return json.dumps(value)

    def argument(self, name: str, type_text: str, value: Any) -> str:
        if self.random.random() < 0.5:
            variable = self.name("v")
            self.declared.append(f"${variable}: {type_text}")
            self.variables[variable] = value
            return f"{name}: ${variable}"
        return f"{name}: {self.literal(value)}"

    def arguments(self, field: str) -> str:
        r = self.random
        query_type = GRAPHQL.query_type
        assert query_type is not None
        types = {name: str(arg.type) for name, arg in query_type.fields[field].args.items()}
        values: dict[str, Any] = {}
        match field:
            case "teamCoverage":
                start = r.randrange(1, 22)
                length = r.choice([1, 7, 14, 21, 28])
                if r.random() < 0.05:
                    length = r.choice([0, -3, 367])  # backwards or too long: refused
                values = {
                    "teamId": r.choice([*TEAMS, "nope"]),
                    "from": f"2026-03-{start:02d}",
                    "to": _plus(start, length - 1),
                }
                # Always a moment: the answer echoes it (the default, now, differs between two runs).
                values["asOf"] = r.choice(AS_OF)
                if r.random() < 0.5:
                    values["weekdaysOnly"] = r.random() < 0.5
            case "staleGoalStories":
                values = {"days": r.choice([0, 1, 14, 30, 60, -1] if r.random() < 0.1 else [0, 1, 14, 30, 60])}
                if r.random() < 0.4:
                    values["teamId"] = r.choice([*TEAMS, "nope"])
                if r.random() < 0.5:
                    values["includeCompleted"] = r.random() < 0.5
                if r.random() < 0.8:
                    values["asOf"] = r.choice(AS_OF)
            case "openBlockers":
                if r.random() < 0.6:
                    values["teamId"] = r.choice([*TEAMS, "nope"])
                if r.random() < 0.8:
                    values["asOf"] = r.choice(AS_OF)
            case "goalRollup":
                if r.random() < 0.6:
                    values["id"] = r.choice(GOALS)
        parts = [self.argument(name, types[name], value) for name, value in values.items()]
        return "(" + ", ".join(parts) + ")" if parts else ""

    def selection(self, object_type: GraphQLObjectType, depth: int = 0) -> str:
        r = self.random
        fields = list(object_type.fields)
        chosen = r.sample(fields, k=r.randint(1, len(fields)))
        items = []
        for name in chosen:
            inner = get_named_type(object_type.fields[name].type)
            if isinstance(inner, GraphQLObjectType) and inner.name not in VIEW_TYPES:
                if r.random() < 0.9:
                    continue
                self.relations = True
                items.append(f"{name} {{ id }}")
                continue
            alias = f"{self.name('k')}: " if r.random() < 0.2 else ""
            directive = ""
            if r.random() < 0.08:
                directive = f" @{r.choice(['include', 'skip'])}(if: {r.choice(['true', 'false'])})"
            sub = f" {self.selection(inner, depth + 1)}" if isinstance(inner, GraphQLObjectType) else ""
            items.append(f"{alias}{name}{directive}{sub}")
        if r.random() < 0.15:
            items.insert(r.randrange(len(items) + 1), "__typename")
        if not items:
            items = ["__typename"]
        body = " ".join(items)
        match r.choice(["plain", "plain", "inline", "named"]):
            case "inline":
                return f"{{ ... on {object_type.name} {{ {body} }} }}"
            case "named":
                fragment = self.name("F")
                self.fragments.append(f"fragment {fragment} on {object_type.name} {{ {body} }}")
                return f"{{ ...{fragment} }}"
        return f"{{ {body} }}"

    def document(self) -> tuple[str, dict[str, Any]]:
        self.fragments, self.variables, self.declared, self.relations = [], {}, [], False
        query_type = GRAPHQL.query_type
        assert query_type is not None
        roots = []
        for field in self.random.sample(sorted(VIEW_READS), k=self.random.choice([1, 1, 1, 2, 4])):
            alias = f"{self.name('r')}: " if self.random.random() < 0.25 else ""
            object_type = get_named_type(query_type.fields[field].type)
            assert isinstance(object_type, GraphQLObjectType)
            roots.append(f"{alias}{field}{self.arguments(field)} {self.selection(object_type)}")
        if self.random.random() < 0.1:
            roots.append("__typename")
        header = f"query Q({', '.join(self.declared)})" if self.declared else "query Q"
        return " ".join([f"{header} {{ {' '.join(roots)} }}", *self.fragments]), self.variables


def _plus(day: int, days: int) -> str:
    return (dt.date(2026, 3, day) + dt.timedelta(days=days)).isoformat()


def _context(engine: AsyncEngine, *, resolvers_only: bool) -> Context:
    return Context(reader=Reader(engine), writer=WriteService(engine), limits=LIMITS, resolvers_only=resolvers_only)


def _caller(teams: frozenset[str] | None) -> Caller | None:
    return None if teams is None else Caller(Principal(frozenset({READ}), authenticated=True, teams=teams))


async def _executed(engine: AsyncEngine, query: str, variables: dict[str, Any], *, resolvers_only: bool) -> Any:
    return await SCHEMA.execute(
        query, variable_values=variables, context_value=_context(engine, resolvers_only=resolvers_only)
    )


async def _planned(engine: AsyncEngine, query: str, variables: dict[str, Any]) -> str:
    """The data of the document through compile_views alone (NotPlannable, or the read's error, raised)."""
    [operation, *definitions] = parse(query).definitions
    fragments = {d.name.value: d for d in definitions}  # type: ignore[attr-defined]
    coerced = get_variable_values(graphql_schema(SCHEMA), operation.variable_definitions or (), variables)  # type: ignore[attr-defined]
    assert not isinstance(coerced, list), coerced
    planned = compile_views(SCHEMA, operation, fragments, coerced, LIMITS)  # type: ignore[arg-type]
    assert planned is not None
    return _json(await planned.data(Reader(engine)))


async def test_compiled_views_answer_as_the_resolvers(world: dict[str, Any], clean: AsyncEngine) -> None:
    generator = Generator(seed=11)
    compared = refused = relations = 0
    fields = dict.fromkeys(VIEW_READS, 0)
    for n in range(DOCUMENTS):
        query, variables = generator.document()
        token = current_caller.set(_caller(SCOPES[n % len(SCOPES)]))
        try:
            resolved = await _executed(clean, query, variables, resolvers_only=True)
            # The schema's own path: compiled when it can be, the resolvers otherwise.
            answered = await _executed(clean, query, variables, resolvers_only=False)
            assert _json(answered.data) == _json(resolved.data), query
            assert [e.formatted for e in answered.errors or ()] == [e.formatted for e in resolved.errors or ()]
            assert all(e.path is not None for e in resolved.errors or ()), (query, resolved.errors)
            if generator.relations:
                with pytest.raises(NotPlannable):
                    await _planned(clean, query, variables)
                relations += 1
            elif resolved.errors:
                # Bad arguments: the compiled read refuses them too, so the resolvers answer with their errors.
                with pytest.raises(InvalidInput):
                    await _planned(clean, query, variables)
                refused += 1
            else:
                assert await _planned(clean, query, variables) == _json(resolved.data), query
                # ... and the schema's own answer came through the compiled path, recorded for the route.
                recent = recent_plans(SCHEMA)
                assert isinstance(recent.get(recent.key(LIMITS, query, None, variables)), PreparedViews), query
                compared += 1
                for name in fields:
                    fields[name] += name in query
        finally:
            current_caller.reset(token)
    assert compared > DOCUMENTS * 0.6, compared
    assert refused >= 3 and relations >= 3, (refused, relations)
    assert min(fields.values()) >= 20, fields


DASHBOARD = dashboard_query()
DASHBOARD_VARIABLES = {
    "team": "t-a",
    "from": "2026-03-02",
    "to": "2026-03-22",
    "asOf": MOMENTS[1].isoformat(),
    "weekdays": False,
    "days": 14,
}


async def test_the_route_answers_a_recorded_view_with_the_callers_scope(
    world: dict[str, Any], clean: AsyncEngine, scoped_url: str
) -> None:
    """The dashboard's query, recorded under one token, answered again for others: each sees its own teams,
    byte for byte as the resolvers answer that caller."""
    body = {"query": DASHBOARD, "variables": DASHBOARD_VARIABLES, "operationName": "Dashboard"}
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30) as http:
        for round_ in range(2):
            for teams in (["t-a"], None, ["t-b"], []):
                response = await http.post("/graphql", json=body, headers=_token(teams))
                assert response.status_code == 200, response.text
                token = current_caller.set(_caller(None if teams is None else frozenset(teams)))
                try:
                    resolved = await _executed(clean, DASHBOARD, DASHBOARD_VARIABLES, resolvers_only=True)
                finally:
                    current_caller.reset(token)
                assert not resolved.errors
                assert response.content == ('{"data":' + _json(resolved.data) + "}").encode(), (round_, teams)


async def test_refusals_are_the_resolvers_and_are_not_recorded(world: dict[str, Any], clean: AsyncEngine) -> None:
    schema = make_schema(SETTINGS)
    too_long = (
        '{ teamCoverage(teamId: "t-a", from: "2025-01-01", to: "2026-03-01") { teamId } openBlockers { ageDays } }'
    )
    stale = "query($d: Int!) { x: staleGoalStories(days: $d) { id } }"
    for query, variables in ((too_long, {}), (stale, {"d": -2})):
        resolved = await _executed(clean, query, variables, resolvers_only=True)
        for _ in range(2):
            answered = await schema.execute(
                query, variable_values=variables, context_value=_context(clean, resolvers_only=False)
            )
            assert [e.formatted for e in answered.errors or ()] == [e.formatted for e in resolved.errors or ()]
            assert _json(answered.data) == _json(resolved.data)
        [error] = resolved.errors or ()
        assert ("at most 366 days" if query == too_long else "between 0 and") in error.message
        assert error.path == (["teamCoverage"] if query == too_long else ["x"])
    recorded = [entry for _, entry in recent_plans(schema).cache.items()]
    assert not any(isinstance(entry, PreparedViews) for entry in recorded), recorded
