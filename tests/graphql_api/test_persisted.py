"""Persisted operations over real HTTP: Apollo's automatic persisted queries (kept in PostgreSQL, known to
every replica), trusted documents, and introspection turned off."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.graphql.compiled import Prepared
from api.graphql.persisted import load_manifest
from tests.conftest import RunningServer

GRAPHQL_RESPONSE = "application/graphql-response+json"
STORY = 'query PersistedStory { goalStory(id: "g-1") { title latestUpdate { status } children { totalCount } } }'
STORY_DATA = {"goalStory": {"title": "Launch", "latestUpdate": {"status": "AT_RISK"}, "children": {"totalCount": 2}}}


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(document)}}


async def registered(engine: AsyncEngine, hash: str) -> str | None:
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT document FROM graphql_documents WHERE sha256 = :h"), {"h": hash})
        ).scalar()


@pytest.fixture(scope="module")
def replica_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    """A second server on the same database: another replica."""
    with RunningServer(database_url) as url:
        yield url


async def test_automatic_persisted_queries_round_trip(
    served: tuple[str, Any], replica_url: str, world: AsyncEngine
) -> None:
    server_url, app = served
    document = STORY.replace("PersistedStory", f"PersistedStory{id(object())}")
    name = document.split()[1]
    hash = sha256(document)
    hashed = {"operationName": name, "extensions": persisted(document)}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        # Unknown: PERSISTED_QUERY_NOT_FOUND, as a GraphQL error of a request never executed, never cached.
        unknown = await client.post("/graphql", json=hashed)
        assert unknown.status_code == 200, unknown.text
        assert unknown.json() == {
            "data": None,
            "errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}],
        }
        assert unknown.headers["cache-control"] == "no-store"
        strict = await client.post("/graphql", json=hashed, headers={"Accept": GRAPHQL_RESPONSE})
        assert strict.status_code == 400 and "data" not in strict.json()
        assert strict.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert await registered(world, hash) is None

        # The retry with the document registers it, once answered.
        retry = await client.post("/graphql", json={**hashed, "query": document})
        assert retry.json() == {"data": STORY_DATA}
        assert await registered(world, hash) == document

        # From then on, the hash alone: by POST, and by GET with cache headers.
        again = await client.post("/graphql", json=hashed)
        assert again.json() == {"data": STORY_DATA}
        # Answered from the recorded plan of the compiled path (PostgreSQL's JSON text as the body).
        [recorded] = app.state.caches.named("graphql_requests")
        assert [type(entry) for key, entry in recorded.items() if key[1] == document] == [Prepared]
        assert b'"title" : ' in again.content
        params = {"operationName": name, "extensions": json.dumps(persisted(document))}
        got = await client.get("/graphql", params=params)
        assert got.status_code == 200 and got.json() == {"data": STORY_DATA}
        assert got.headers["cache-control"] == "public, no-cache"
        assert got.headers["vary"] == "Accept, Authorization"
        etag = got.headers["etag"]
        unchanged = await client.get("/graphql", params=params, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag

    # Another replica knows the hash from PostgreSQL.
    async with httpx.AsyncClient(base_url=replica_url, timeout=30) as client:
        elsewhere = await client.get("/graphql", params=params)
        assert elsewhere.json() == {"data": STORY_DATA}


async def test_what_persisted_queries_refuse(server_url: str, world: AsyncEngine) -> None:
    document = "query Refused { actors(first: 1) { totalCount } }"
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:

        async def refused(body: dict[str, Any]) -> tuple[int, str, str]:
            response = await client.post("/graphql", json=body)
            error = response.json()["errors"][0]
            return response.status_code, error["extensions"]["code"], error["message"]

        # The hash is checked against the document sent with it.
        wrong = {"query": document, "extensions": persisted(document + " ")}
        assert (await refused(wrong))[:2] == (400, "BAD_REQUEST")
        assert (await refused({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": sha256(document)}}}))[
            :2
        ] == (400, "BAD_REQUEST")
        assert (await refused({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}}))[:2] == (
            400,
            "BAD_REQUEST",
        )
        assert (await refused({"extensions": {"persistedQuery": "yes"}}))[:2] == (400, "BAD_REQUEST")
        # A document that does not validate is not registered.
        invalid = "query Invalid { actors { nope } }"
        assert (await refused({"query": invalid, "extensions": persisted(invalid)}))[1] == "BAD_USER_INPUT"
        assert await registered(world, sha256(invalid)) is None
        # An unknown documentId: not found (APQ hashes are documents' ids too).
        assert (await refused({"documentId": "sha256:" + "0" * 64}))[1] == "PERSISTED_QUERY_NOT_FOUND"
        assert (await refused({"documentId": "x", "query": document}))[:2] == (400, "BAD_REQUEST")
    assert await registered(world, sha256(document)) is None
    assert await registered(world, sha256(document + " ")) is None


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest as graphql-codegen's client preset writes it (sha256 ids) with one Relay-style id."""
    documents = {sha256(STORY): STORY, "relay-md5-like-id": "query Listed { actors(first: 1) { totalCount } }"}
    path = tmp_path_factory.mktemp("trusted") / "persisted-documents.json"
    path.write_text(json.dumps(documents))
    return path


@pytest.fixture(scope="module")
def trusted_url(database_url: str, engine: AsyncEngine, manifest: Path) -> Iterator[str]:
    with RunningServer(database_url, graphql_trusted_documents=str(manifest)) as url:
        yield url


async def test_trusted_documents_serve_listed_ones_only(trusted_url: str, world: AsyncEngine) -> None:
    async with httpx.AsyncClient(base_url=trusted_url, timeout=30) as client:

        async def post(body: dict[str, Any], accept: str = "application/json") -> httpx.Response:
            return await client.post("/graphql", json=body, headers={"Accept": accept})

        # Listed: by documentId (bare or sha256:-prefixed), by the APQ hash, by GET, or as the same text.
        for body in (
            {"documentId": sha256(STORY)},
            {"documentId": "sha256:" + sha256(STORY)},
            {"extensions": persisted(STORY)},
            {"query": STORY},
        ):
            assert (await post(body)).json() == {"data": STORY_DATA}, body
        listed = await post({"documentId": "relay-md5-like-id"})
        assert listed.json()["data"]["actors"]["totalCount"] == 4
        got = await client.get("/graphql", params={"documentId": sha256(STORY)})
        assert got.json() == {"data": STORY_DATA} and "etag" in got.headers

        # Anything else: refused before it is parsed, and nothing is registered.
        other = "{ actors { totalCount } }"
        for body in ({"query": other}, {"query": other, "extensions": persisted(other)}):
            refused = await post(body, GRAPHQL_RESPONSE)
            assert refused.status_code == 400, refused.text
            assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_ONLY"
        unknown = await post({"documentId": sha256(other)})
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        # A mutation not listed: refused, and nothing written.
        mutation = 'mutation { createActor(input: {actorType: PERSON, name: "Untrusted"}) { actor { id } } }'
        assert (await post({"query": mutation})).json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_ONLY"
    assert await registered(world, sha256(other)) is None
    async with world.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM actors WHERE name = 'Untrusted'"))).scalar() == 0


async def test_trusted_documents_guard_subscriptions_too(trusted_url: str, world: AsyncEngine) -> None:
    transport = WebsocketsTransport(url=trusted_url.replace("http", "ws") + "/graphql")
    async with Client(transport=transport) as session:
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(gql("subscription { coordinationEvents { id } }")):
                break
    assert refused.value.errors[0]["extensions"]["code"] == "PERSISTED_QUERY_ONLY"


@pytest.fixture(scope="module")
def closed_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, graphql_introspection=False) as url:
        yield url


async def test_introspection_can_be_turned_off(closed_url: str, server_url: str, world: AsyncEngine) -> None:
    introspection = '{ __schema { queryType { name } } __type(name: "Actor") { name } }'
    async with httpx.AsyncClient(base_url=closed_url, timeout=30) as client:
        refused = await client.post("/graphql", json={"query": introspection})
        assert refused.json()["data"] is None
        assert {e["extensions"]["code"] for e in refused.json()["errors"]} == {"BAD_USER_INPUT"}
        assert "introspection" in refused.json()["errors"][0]["message"].lower()
        served = await client.post("/graphql", json={"query": "{ __typename actors(first: 1) { totalCount } }"})
        assert served.json() == {"data": {"__typename": "Query", "actors": {"totalCount": 4}}}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        assert (await client.post("/graphql", json={"query": introspection})).json()["data"]["__schema"]


def test_a_manifest_that_is_not_one_stops_the_server(tmp_path: Path) -> None:
    for content, why in (
        ("{", "not JSON"),
        ('["query { __typename }"]', "must be a JSON object"),
        ('{"id": 1}', "must be a JSON object"),
        ("{}", "lists no document"),
    ):
        path = tmp_path / "manifest.json"
        path.write_text(content)
        load_manifest.cache_clear()
        with pytest.raises(SystemExit, match=why):
            load_manifest(str(path))
    with pytest.raises(SystemExit, match="cannot read it"):
        load_manifest(str(tmp_path / "missing.json"))
