"""GraphQL over HTTP, rule by rule, against the real server: media types, status codes, request parameters.

The specification's own audit runs in test_http_audit.py; these say which rule broke when it fails.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from graphql_helpers import snapshot
from sqlalchemy.ext.asyncio import AsyncEngine

from api.graphql.compiled import Prepared
from api.graphql.http import negotiate

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
STRICT = {"Accept": GRAPHQL_RESPONSE}
LEGACY = {"Accept": JSON}
TYPENAME = {"query": "{ __typename }"}
PARSE_ERROR = {"query": "{"}
VALIDATION_ERROR = {"query": "{ noSuchField }"}
COERCION_ERROR = {"query": "query($id: ID!) { actor(id: $id) { id } }", "variables": {"id": None}}
UNKNOWN_OPERATION = {"query": "query A { __typename }", "operationName": "B"}
CREATE = 'mutation { createActor(input: {actorType: PERSON, name: "Over GET"}) { actor { id } } }'


@pytest.fixture
async def http(server_url: str):
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        yield client


def _media(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def _codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


# ---------------------------------------------------------------- content negotiation


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        ("application/json; charset=utf-8", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("Application/GraphQL-Response+JSON", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON}", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.4, {JSON};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE}, */*", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0, */*", JSON),
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE),
        ("text/html, application/xhtml+xml, */*;q=0.8", JSON),
        (f"{GRAPHQL_RESPONSE};q=abc, {JSON}", JSON),
        ("text/plain", None),
        ("text/*", None),
        (f"{JSON};q=0", None),
        (f"{GRAPHQL_RESPONSE};q=0, {JSON};q=0, text/html", None),
    ],
)
def test_accept_chooses_the_media_type(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


async def test_each_media_type_is_answered_as_negotiated(http: httpx.AsyncClient) -> None:
    for accept, media in [
        (None, JSON),
        ("*/*", JSON),
        (JSON, JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
    ]:
        headers = {} if accept is None else {"Accept": accept}
        response = await http.post("/graphql", json=TYPENAME, headers=headers)
        assert (response.status_code, _media(response)) == (200, media), accept
        assert response.json() == {"data": {"__typename": "Query"}}
    # application/json keeps its bare header; the new type says its charset.
    assert (await http.post("/graphql", json=TYPENAME)).headers["content-type"] == JSON
    strict = await http.post("/graphql", json=TYPENAME, headers=STRICT)
    assert strict.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"


async def test_nothing_acceptable_is_406(http: httpx.AsyncClient, world: AsyncEngine) -> None:
    before = await snapshot(world)
    for accept in ("text/plain", "text/html", f"{JSON};q=0"):
        response = await http.post("/graphql", json={"query": CREATE}, headers={"Accept": accept})
        assert response.status_code == 406, (accept, response.text)
        assert _media(response) == JSON and _codes(response) == ["NOT_ACCEPTABLE"]
    response = await http.get("/graphql", params=TYPENAME, headers={"Accept": "text/plain"})
    assert response.status_code == 406
    assert await snapshot(world) == before


# ---------------------------------------------------------------- status codes by media type


@pytest.mark.parametrize("body", [PARSE_ERROR, VALIDATION_ERROR, COERCION_ERROR, UNKNOWN_OPERATION])
async def test_errors_before_execution_are_400_without_data(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    strict = await http.post("/graphql", json=body, headers=STRICT)
    assert strict.status_code == 400, strict.text
    assert _media(strict) == GRAPHQL_RESPONSE
    assert "data" not in strict.json() and _codes(strict) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("body", [PARSE_ERROR, VALIDATION_ERROR, COERCION_ERROR, UNKNOWN_OPERATION])
async def test_legacy_json_keeps_200_with_null_data(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    for headers in (LEGACY, {}):
        legacy = await http.post("/graphql", json=body, headers=headers)
        assert legacy.status_code == 200, legacy.text
        assert _media(legacy) == JSON
        assert legacy.json()["data"] is None and _codes(legacy) == ["BAD_USER_INPUT"]


async def test_once_execution_starts_the_answer_is_200(http: httpx.AsyncClient, world: AsyncEngine) -> None:
    # A field error (the page size limit, raised by the resolver) nulls the whole data, yet execution ran.
    response = await http.post("/graphql", json={"query": "{ actors(first: 1000) { nodes { id } } }"}, headers=STRICT)
    assert response.status_code == 200, response.text
    assert response.json()["data"] is None and response.json()["errors"][0]["path"] == ["actors"]
    # A partial result: data and errors side by side.
    response = await http.post(
        "/graphql",
        json={"query": '{ a: actor(id: "a-1") { name } b: actor(id: "a-1") { teams(first: 1000) { nodes { id } } } }'},
        headers=STRICT,
    )
    assert response.status_code == 200 and _media(response) == GRAPHQL_RESPONSE
    assert response.json()["data"] == {"a": {"name": "Ada"}, "b": None}
    assert response.json()["errors"][0]["path"] == ["b", "teams"]
    # A domain error in a mutation: executed, so 200 with the error's code.
    response = await http.post(
        "/graphql", json={"query": 'mutation { deleteActor(id: "a-404") { deletedId } }'}, headers=STRICT
    )
    assert response.status_code == 200 and "data" in response.json() and _codes(response) == ["NOT_FOUND"]


# ---------------------------------------------------------------- POST bodies


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
@pytest.mark.parametrize(
    "body",
    [
        {"notquery": "{ __typename }"},
        {"query": None},
        {"query": ""},
        *({"query": bad} for bad in ({"obj": "ect"}, 0, False, ["array"])),
        *({"query": "{ __typename }", "operationName": bad} for bad in ({"obj": "ect"}, 0, False, ["array"])),
        *({"query": "{ __typename }", "variables": bad} for bad in ("string", 0, False, ["array"])),
        *({"query": "{ __typename }", "extensions": bad} for bad in ("string", 0, False, ["array"])),
    ],
)
async def test_parameters_of_the_wrong_type_are_400(http: httpx.AsyncClient, body: dict[str, Any], accept: str) -> None:
    response = await http.post("/graphql", json=body, headers={"Accept": accept})
    assert response.status_code == 400, (body, response.text)
    assert _media(response) == accept and "data" not in response.json()
    assert _codes(response) == ["BAD_REQUEST"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_parameters_may_be_null_and_maps(http: httpx.AsyncClient, accept: str) -> None:
    for extra in (
        {"variables": None},
        {"operationName": None},
        {"extensions": None},
        {"extensions": {"some": "value"}},
        {"variables": {}},
        {"unknownKey": [1, 2]},
    ):
        response = await http.post("/graphql", json={**TYPENAME, **extra}, headers={"Accept": accept})
        assert response.status_code == 200, (extra, response.text)
        assert response.json() == {"data": {"__typename": "Query"}}
    named = {"query": "query Named { __typename }", "operationName": "Named"}
    assert (await http.post("/graphql", json=named, headers={"Accept": accept})).status_code == 200


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b'{ "not a JSON', "JSON"),
        (b"[]", "object"),
        (b'"{ __typename }"', "object"),
        (b'{"query": "{ __typename }", "variables": {"x": NaN}}', "JSON"),
        ('{"query": "{ __typename }"}'.encode("utf-16"), "UTF-8"),
    ],
)
async def test_malformed_bodies_are_400(http: httpx.AsyncClient, content: bytes, why: str) -> None:
    for accept in (GRAPHQL_RESPONSE, JSON):
        response = await http.post("/graphql", content=content, headers={"Content-Type": JSON, "Accept": accept})
        assert response.status_code == 400, (content, response.text)
        assert _media(response) == accept and why in response.json()["errors"][0]["message"]


async def test_post_bodies_must_be_json(http: httpx.AsyncClient) -> None:
    body = json.dumps(TYPENAME).encode()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"):
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = await http.post("/graphql", content=body, headers=headers)
        assert response.status_code == 415, (content_type, response.text)
        assert _codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]
    for content_type in ("application/json; charset=utf-8", "application/graphql+json", "Application/JSON"):
        response = await http.post("/graphql", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 200, (content_type, response.text)
    unicode = {"query": '{ __type(name: "Run🏃Swim🏊") { name } }'}
    response = await http.post(
        "/graphql", content=json.dumps(unicode, ensure_ascii=False).encode(), headers={"Content-Type": JSON}
    )
    assert response.status_code == 200 and response.json() == {"data": {"__type": None}}


# ---------------------------------------------------------------- GET


async def test_get_runs_queries_with_encoded_variables(http: httpx.AsyncClient, world: AsyncEngine) -> None:
    query = "query Named($id: ID!) { actor(id: $id) { name } }"
    for accept in (GRAPHQL_RESPONSE, JSON):
        response = await http.get(
            "/graphql",
            params={"query": query, "variables": json.dumps({"id": "a-1"}), "operationName": "Named"},
            headers={"Accept": accept},
        )
        assert (response.status_code, _media(response)) == (200, accept), response.text
        assert response.json() == {"data": {"actor": {"name": "Ada"}}}
    # Empty optional parameters count as absent, as browsers' forms send them.
    response = await http.get("/graphql", params={"query": "{ __typename }", "variables": "", "operationName": ""})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"operationName": "x"},
        {"query": ""},
        {"query": "{ __typename }", "variables": "{not json"},
        {"query": "{ __typename }", "variables": "[1]"},
        {"query": "{ __typename }", "variables": "5"},
        {"query": "{ __typename }", "extensions": '"string"'},
        {"query": "{ __typename }", "extensions": "false"},
        [("query", "{ __typename }"), ("query", "{ __typename }")],
    ],
)
async def test_malformed_get_parameters_are_400(http: httpx.AsyncClient, params: Any) -> None:
    for accept in (GRAPHQL_RESPONSE, JSON):
        response = await http.get("/graphql", params=params, headers={"Accept": accept})
        assert response.status_code == 400, (params, response.text)
        assert _media(response) == accept and "data" not in response.json()


async def test_get_never_runs_a_mutation(http: httpx.AsyncClient, world: AsyncEngine) -> None:
    before = await snapshot(world)
    for accept in (GRAPHQL_RESPONSE, JSON, None):
        headers = {} if accept is None else {"Accept": accept}
        for query in (CREATE, "mutation { __typename }"):
            response = await http.get("/graphql", params={"query": query}, headers=headers)
            assert response.status_code == 405, response.text
            assert response.headers["allow"] == "POST" and _codes(response) == ["METHOD_NOT_ALLOWED"]
    # The same document's query is still served over GET, when it is the one named.
    both = f"query Q {{ __typename }} {CREATE.replace('mutation', 'mutation M')}"
    assert (await http.get("/graphql", params={"query": both, "operationName": "Q"})).status_code == 200
    response = await http.get("/graphql", params={"query": both, "operationName": "M"})
    assert response.status_code == 405
    assert await snapshot(world) == before


async def test_other_methods_and_subscriptions(http: httpx.AsyncClient) -> None:
    for method in ("PUT", "PATCH", "DELETE", "HEAD"):
        response = await http.request(method, "/graphql", json=TYPENAME)
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET, POST"
    for response in (
        await http.post("/graphql", json={"query": "subscription { coordinationEvents { id } }"}, headers=STRICT),
        await http.get("/graphql", params={"query": "subscription { coordinationEvents { id } }"}),
    ):
        assert response.status_code == 400 and "WebSocket" in response.json()["errors"][0]["message"]
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


# ---------------------------------------------------------------- the compiled fast path


async def test_recorded_queries_negotiate_as_the_full_path(
    http: httpx.AsyncClient, world: AsyncEngine, served: tuple[str, Any]
) -> None:
    query = "query HttpRecorded { actors(first: 2) { totalCount nodes { id } } }"
    first = await http.post("/graphql", json={"query": query})
    assert first.status_code == 200
    [recent] = served[1].state.caches.named("graphql_requests")
    recorded = [e for k, e in recent.items() if k[1] == query]
    assert [type(e) for e in recorded] == [Prepared]
    for accept, media in ((None, JSON), (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE), (f"{GRAPHQL_RESPONSE};q=0.1, */*", JSON)):
        headers = {} if accept is None else {"Accept": accept}
        for response in (
            await http.post("/graphql", json={"query": query}, headers=headers),
            await http.get("/graphql", params={"query": query}, headers=headers),
        ):
            assert (response.status_code, _media(response)) == (200, media), (accept, response.text)
            # PostgreSQL's spelling of the JSON: the recorded plan answered, before Strawberry.
            assert b'"totalCount" : ' in response.content
            assert response.json() == first.json()
    refused = await http.post("/graphql", json={"query": query}, headers={"Accept": "text/plain"})
    assert refused.status_code == 406
    for bad in ({"extensions": "x"}, {"variables": []}, {"operationName": 1}):
        response = await http.post("/graphql", json={"query": query, **bad}, headers=STRICT)
        assert response.status_code == 400, bad
    response = await http.post("/graphql", content=json.dumps({"query": query}), headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
