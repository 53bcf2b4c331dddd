"""Hostile input: SQL injection in every part of a REST request, and random GraphQL documents.

Each attempt is refused with a 4xx or taken as a plain value; nothing answers
500, and the tables hold exactly what they held before.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import hypothesis_graphql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from sqlalchemy.ext.asyncio import AsyncEngine

from api.graphql.schema import make_schema
from api.store.writes import WriteService
from tests.conftest import table_counts

INJECTIONS = [
    "'; DROP TABLE actors; --",
    "1' OR '1'='1",
    'x") OR 1=1 --',
    "name; DELETE FROM actors",
    "id,(select pg_sleep(10))",
    "1); TRUNCATE actors CASCADE; --",
    "$$; DROP TABLE teams; $$",
    "\\x00'",
    "eq.1' UNION SELECT current_user --",
    "name->>'x'); DROP TABLE actors; --",
    "pg_catalog.pg_user",
    "*,actors!inner(*); --",
    "desc nullsfirst; DROP TABLE actors",
    "%27%3B%20DROP%20TABLE%20actors%3B",
    '" OR ""="',
    "1::text; SELECT 1",
]


def _requests(p: str) -> list[tuple[str, str, dict[str, str], object]]:
    q = quote(p, safe="")
    return [
        ("GET", f"/actors?name=eq.{q}", {}, None),
        ("GET", f"/actors?name=like.{q}", {}, None),
        ("GET", f"/actors?name=match.{q}", {}, None),
        ("GET", f"/actors?name=in.({q})", {}, None),
        ("GET", f"/actors?{q}=eq.1", {}, None),
        ("GET", f"/actors?order={q}", {}, None),
        ("GET", f"/actors?order=name.{q}", {}, None),
        ("GET", f"/actors?select={q}", {}, None),
        ("GET", f"/actors?select=id,{q}", {}, None),
        ("GET", f"/actors?or=(name.eq.{q},id.eq.{q})", {}, None),
        ("GET", f"/actors?limit={q}", {}, None),
        ("GET", f"/{q}", {}, None),
        ("GET", "/actors", {"Prefer": p}, None),
        ("GET", "/actors", {"Range": p}, None),
        ("GET", "/actors", {"Accept": p}, None),
        ("GET", "/actors", {"Accept-Profile": p}, None),
        ("GET", "/actors", {"Authorization": f"Bearer {p}"}, None),
        ("PATCH", f"/actors?name=eq.{q}", {}, {"name": "changed"}),
        ("PATCH", f"/actors?{q}=eq.1", {}, {"name": "changed"}),
        ("DELETE", f"/actors?id=eq.{q}", {}, None),
        ("DELETE", f"/actors?{q}=is.null", {}, None),
        ("POST", f"/actors?columns={q}", {}, {"actor_type": "agent", "name": "x"}),
        ("POST", "/actors", {}, {p: "x", "actor_type": "agent", "name": "x"}),
        ("POST", "/actors", {"Prefer": p}, {"actor_type": p, "name": "x"}),
    ]


async def test_sql_injection_over_rest_changes_nothing(
    server_url: str, writer: WriteService, clean: AsyncEngine
) -> None:
    await writer.create("actor", [{"id": "keep-1", "actor_type": "person", "name": "Keep Me"}])
    before = await table_counts(clean)
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        for p in INJECTIONS:
            for method, url, headers, body in _requests(p):
                answer = await client.request(
                    method, url, headers=headers, content=None if body is None else json.dumps(body)
                )
                assert answer.status_code < 500, (method, url, headers, answer.text)
                if method == "GET" and answer.status_code == 200 and "name=eq." in url:
                    assert answer.json() == []
        # Taken as a plain value: stored exactly, harming nothing.
        for p in INJECTIONS[:4]:
            stored = await client.post(
                "/actors", json={"actor_type": "agent", "name": p}, headers={"Prefer": "return=representation"}
            )
            assert stored.status_code == 201 and stored.json()[0]["name"] == p
            found = await client.get(f"/actors?name=eq.{quote(p, safe='')}&select=name")
            assert found.json() == [{"name": p}]
    after = await table_counts(clean)
    assert after == {**before, "actors": before["actors"] + 4}


SCHEMA = str(make_schema())
SCALARS = {
    "Date": st.dates().map(lambda d: nodes.String(d.isoformat())),
    "DateTime": st.datetimes().map(lambda d: nodes.String(d.isoformat() + "Z")),
}


def _check_graphql(client: httpx.Client, document: str, variables: object = None) -> None:
    answer = client.post("/graphql", json={"query": document, "variables": variables})
    assert answer.status_code < 500, (document, answer.text)
    if not answer.headers.get("content-type", "").startswith("application/json"):
        assert answer.status_code == 400, answer.text  # "No GraphQL query found in the request"
        return
    body = answer.json()
    for error in body.get("errors") or []:
        assert error.get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR", (document, error)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=hypothesis_graphql.queries(SCHEMA, custom_scalars=SCALARS))
def test_generated_queries_never_fail_the_server(server_url: str, document: str) -> None:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        _check_graphql(client, document)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=hypothesis_graphql.queries(SCHEMA, custom_scalars=SCALARS, mode=hypothesis_graphql.Mode.NEGATIVE))
def test_invalid_queries_are_client_errors(server_url: str, document: str) -> None:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        _check_graphql(client, document)


TOKENS = st.sampled_from(
    [
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "query",
        "mutation",
        "subscription",
        "fragment",
        "on",
        "...",
        "actors",
        "nodes",
        "id",
        "name",
        "filter:",
        "first:",
        "after:",
        "$v",
        ":",
        "@skip",
        '"',
        "'; DROP TABLE actors; --",
        "__schema",
        "__typename",
        "1e999",
        "-1",
        "null",
        "createActor",
        "input:",
        "\\u0000",
        "#",
        ",",
        "=",
        "!",
        "Int",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    document=st.one_of(st.text(max_size=200), st.lists(TOKENS, max_size=40).map(" ".join)),
    variables=st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3),
        st.integers(),
        st.text(max_size=10),
    ),
)
def test_hostile_documents_are_client_errors(server_url: str, document: str, variables: object) -> None:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        _check_graphql(client, document, variables)


KEYS = st.sampled_from(
    [
        "select",
        "order",
        "limit",
        "offset",
        "or",
        "and",
        "not.or",
        "name",
        "id",
        "actor_type",
        "teams.name",
        "teams.limit",
        "team_checkins.order",
        "columns",
        "on_conflict",
        "x",
    ]
)
PIECES = st.sampled_from(
    [
        "eq.",
        "neq.",
        "in.",
        "is.",
        "like.",
        "ilike.",
        "match.",
        "fts.",
        "cs.",
        "ov.",
        "not.",
        "any.",
        "all.",
        "(",
        ")",
        "{",
        "}",
        ",",
        ".",
        "*",
        "!inner",
        "::text",
        "->",
        "->>",
        "'",
        '"',
        "%",
        "desc",
        "nullsfirst",
        "null",
        "true",
        "1",
        "-1",
        "99999999999999999999",
        "name",
        "id",
        "teams(*)",
        "members:",
        "count()",
        "\\",
        " ",
        "[",
        "]",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=st.lists(st.tuples(KEYS, st.lists(PIECES, max_size=8).map("".join)), max_size=4))
def test_random_postgrest_query_strings_are_client_errors(server_url: str, query: list[tuple[str, str]]) -> None:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        for resource in ("actors", "goal_stories"):
            answer = client.get(f"/{resource}", params=query)
            assert answer.status_code < 500, (query, answer.text)
            patch = client.patch(f"/{resource}", params=[*query, ("id", "eq.no-such-row")], json={})
            assert patch.status_code < 500, (query, patch.text)
