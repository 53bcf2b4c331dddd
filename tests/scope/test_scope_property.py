"""The property of team-scoped reads: for many generated queries, what a scoped token reads equals what an
unlimited reader reads once every row the scope may not see is gone, counts, pages and totals included.

The oracle is independent of the server's SQL: the rows a scope may see are worked out in Python
(`seen_by`), the others deleted, and the same queries asked again without a scope. GraphQL's queries come
from the differential test of the compiled path (its generator), run in process through both the compiled
path and the resolvers; REST's are generated here and sent over HTTP with minted tokens."""

from __future__ import annotations

import json
import random
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.edge.auth import Caller, current_caller
from api.entities import ENTITIES, Kind, RelationKind
from tests.graphql_api.test_compiled import Generator, _compiled, _first_difference, _resolved

from .conftest import ACCESS, UNLIMITED, bearer, keep_only, seed_world, seen_by, token

SCOPES: list[tuple[set[str], str | None]] = [
    ({"t-1"}, "a-4"),
    ({"t-2", "t-9"}, None),
    ({"t-3"}, "a-5"),
    (set(), "a-2"),
    ({"t-9"}, "a-1"),
]
GRAPHQL_QUERIES = 40
REST_QUERIES = 50
POOL = {
    "actor": ["a-1", "a-2", "a-3", "a-5", "zz"],
    "team": ["t-1", "t-2", "t-9"],
    "goal_story": ["g-1", "g-2", "g-4"],
    "team_checkin": ["c-1", "c-4", "c-5"],
    "goal_story_update": ["u-1", "u-2", "u-3"],
}


@contextmanager
def as_token(value: str | None) -> Any:
    """Run in process as a request carrying the token would (None: a trusted caller, as the CLI)."""
    handle = current_caller.set(None if value is None else Caller(ACCESS.authenticate(f"Bearer {value}")))
    try:
        yield
    finally:
        current_caller.reset(handle)


# ---------------------------------------------------------------- GraphQL


async def graphql_answers(engine: AsyncEngine, queries: list[str]) -> list[Any]:
    answers: list[Any] = []
    for query in queries:
        resolved = await _resolved(engine, query, {})
        try:
            compiled: Any = await _compiled(engine, query, {})
        except Exception as error:  # the compiled path refuses or declines: it must do so on both sides
            compiled = type(error).__name__
        answers.append((resolved.data, [e.message for e in resolved.errors or ()], compiled))
    return answers


# ---------------------------------------------------------------- REST

RESOURCES = {e.resource: e for e in ENTITIES.values()}


class RestGenerator:
    """PostgREST requests: filters of every kind of field, embeds both ways (some !inner, filtered, limited),
    orders, pages and exact counts."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def condition(self, entity_name: str) -> tuple[str, str] | None:
        r = self.random
        ent = ENTITIES[entity_name]
        f = r.choice(ent.fields)
        if f.internal:
            return None
        if f.kind is Kind.ID:
            pool = POOL.get(f.references or entity_name, ["nope"])
            return f.name, r.choice([f"eq.{r.choice(pool)}", f"neq.{r.choice(pool)}", f"in.({','.join(pool[:2])})"])
        if f.kind is Kind.TEXT:
            return f.name, r.choice([f"ilike.*{r.choice('aeiot')}*", "is.null", "not.is.null"])
        if f.kind is Kind.DATE:
            return f.name, f"{r.choice(['gte', 'lt'])}.2026-05-{r.randint(1, 22):02d}"
        if f.kind is Kind.ENUM:
            return f.name, f"eq.{r.choice(f.choices)}"
        if f.kind is Kind.INTEGER:
            return f.name, f"gte.{r.choice([0, 30])}"
        if f.kind is Kind.TEXT_LIST:
            pool = POOL.get(f.references or "", ["ship", "review", "secret work", "the vault"])
            return f.name, r.choice([f"cs.{{{r.choice(pool)}}}", f"ov.{{{','.join(r.sample(pool, 2))}}}", "is.null"])
        return None

    def select(self, entity_name: str, params: list[tuple[str, str]], prefix: str, depth: int) -> str:
        r = self.random
        ent = ENTITIES[entity_name]
        parts = ["*"] if r.random() < 0.3 else [f.name for f in r.sample(ent.fields, k=r.randint(1, 3))]
        if "id" not in parts and "*" not in parts:
            parts.append("id")
        if depth < 2:
            for relation in r.sample(ent.relations, k=min(len(ent.relations), r.randint(0, 2))):
                path = f"{prefix}{relation.name}"
                inner = self.select(relation.target, params, f"{path}.", depth + 1)
                hint = "!inner" if r.random() < 0.25 else ""
                parts.append(f"{relation.name}{hint}({inner})")
                if r.random() < 0.3:
                    found = self.condition(relation.target)
                    if found is not None:
                        params.append((f"{path}.{found[0]}", found[1]))
                if relation.kind is not RelationKind.TO_ONE and r.random() < 0.3:
                    params.append((f"{path}.order", f"{self.order_field(relation.target)},id"))
                    params.append((f"{path}.limit", str(r.randint(1, 2))))
        return ",".join(parts)

    def order_field(self, entity_name: str) -> str:
        names = [f.name for f in ENTITIES[entity_name].fields if f.kind not in (Kind.TIMEFRAME, Kind.TEXT_LIST)]
        return f"{self.random.choice(names)}.{self.random.choice(['asc', 'desc'])}"

    def request(self) -> tuple[str, list[tuple[str, str]]]:
        r = self.random
        resource = r.choice(sorted(RESOURCES))
        ent = RESOURCES[resource]
        params: list[tuple[str, str]] = []
        params.insert(0, ("select", self.select(ent.name, params, "", 0)))
        for _ in range(r.randint(0, 2)):
            found = self.condition(ent.name)
            if found is not None:
                params.append(found)
        if r.random() < 0.5:
            params.append(("order", f"{self.order_field(ent.name)},id"))
            if r.random() < 0.6:
                params.append(("limit", str(r.randint(1, 3))))
                params.append(("offset", str(r.randint(0, 2))))
        return resource, params


def normalized(value: Any) -> Any:
    """Arrays without an order asked for come in the order PostgreSQL reads the rows: compare them as sets."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((normalized(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


async def rest_answers(url: str, credential: str, requests: list[tuple[str, list[tuple[str, str]]]]) -> list[Any]:
    answers: list[Any] = []
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(credential)) as client:
        for resource, params in requests:
            answer = await client.get(f"/{resource}", params=params, headers={"Prefer": "count=exact"})
            body = answer.json()
            answers.append((answer.status_code, normalized(body), answer.headers.get("content-range")))
    return answers


# ---------------------------------------------------------------- the property


@pytest.mark.parametrize(("teams", "actor"), SCOPES, ids=[f"{sorted(t)}-{a}" for t, a in SCOPES])
async def test_a_scoped_answer_is_the_unlimited_answer_over_what_the_scope_sees(
    scoped_url: str, clean: AsyncEngine, teams: set[str], actor: str | None
) -> None:
    await seed_world(clean)
    credential = token(sorted(teams), actor=actor)
    seed = len(teams) * 31 + sum(map(ord, actor or ""))
    graphql = Generator(seed)
    queries = [graphql.query(None)[0] for _ in range(GRAPHQL_QUERIES)]
    rest = RestGenerator(seed)
    requests = [rest.request() for _ in range(REST_QUERIES)]

    with as_token(credential):
        scoped_graphql = await graphql_answers(clean, queries)
    scoped_rest = await rest_answers(scoped_url, credential, requests)

    await keep_only(clean, await seen_by(clean, teams, actor))
    with as_token(None):
        oracle_graphql = await graphql_answers(clean, queries)
    oracle_rest = await rest_answers(scoped_url, UNLIMITED, requests)

    compared = 0
    for query, got, want in zip(queries, scoped_graphql, oracle_graphql, strict=True):
        assert _first_difference(got, want) is None, (query, _first_difference(got, want))
        compared += got[0] is not None
    assert compared > GRAPHQL_QUERIES * 0.6
    answered = 0
    for request, got, want in zip(requests, scoped_rest, oracle_rest, strict=True):
        assert got == want, request
        answered += got[0] in (200, 206)
    assert answered > REST_QUERIES * 0.6, answered
