"""The clients frontends use, against the real server: Apollo Client (persisted queries, normalized cache,
a subscription over GraphQLWsLink), urql with graphql-ws, graphql-codegen's client preset (types that
compile, a trusted-documents manifest), and relay-compiler (queries and refetchable fragments through
node(nodeId:), its persisted output as a manifest). The Node packages are pinned in tests/node."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RunningServer
from tests.node_clients import NODE_DIR, node

GENERATED = NODE_DIR / ".generated"


def run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node(), *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout)


def report(*args: str) -> dict[str, Any]:
    done = run(*args)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def live_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    """A server of this module's own: its live feed has seen only this module's events."""
    with RunningServer(database_url) as url:
        yield url


async def registered(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return {row[0] for row in await conn.execute(text("SELECT document FROM graphql_documents"))}


async def test_apollo_client(live_url: str, fresh_world: AsyncEngine) -> None:
    got = report("apollo_client.mjs", live_url + "/graphql")
    tree = got["first"]["goalStory"]
    assert tree["title"] == "Launch" and tree["latestUpdate"]["status"] == "AT_RISK"
    assert tree["latestUpdate"]["actor"] == {"__typename": "Actor", "id": "a-1", "name": "Ada"}
    assert [child["id"] for child in tree["children"]["nodes"]] == ["g-2", "g-3"]
    # The normalized cache: the second read sent nothing, and each object is kept once by type and id.
    assert got["againFromCache"] is True and got["again"] == got["first"]
    assert {"GoalStory:g-1", "GoalStory:g-2", "GoalStoryUpdate:u-2", "Actor:a-1", "Team:t-1"} <= set(got["cached"])

    by_client: dict[str, list[dict[str, Any]]] = {}
    for request in got["requests"]:
        by_client.setdefault(request["client"], []).append(request)
    hash = by_client["first"][0]["hash"]
    # Unknown hash by GET, then the document by POST (registered); nothing for the read from the cache.
    assert [(r["method"], r["withDocument"], r["code"]) for r in by_client["first"]] == [
        ("GET", False, "PERSISTED_QUERY_NOT_FOUND"),
        ("POST", True, None),
    ]
    assert by_client["first"][0]["cacheControl"] == "no-store"
    # The hash alone, by GET (a cacheable response) and by POST.
    assert [(r["method"], r["withDocument"], r["status"], r["hash"]) for r in by_client["second"]] == [
        ("GET", False, 200, hash)
    ]
    assert by_client["second"][0]["cacheControl"] == "public, no-cache"
    assert (by_client["third"][0]["method"], by_client["third"][0]["withDocument"]) == ("POST", False)
    assert got["second"] == got["third"] == got["first"]
    # Registered where every replica finds it.
    assert any("query GoalTree" in document for document in await registered(fresh_world))

    # The subscription: a replayed event, then the event of the check-in its mutation wrote, live.
    events = got["events"]
    assert len(events["seen"]) >= 2
    assert events["seen"][-1] == {
        "__typename": "CoordinationEvent",
        "cursor": events["seen"][-1]["cursor"],
        "eventType": "TEAM_CHECKIN",
        "referenceId": events["written"],
    }


async def test_urql_with_graphql_ws(live_url: str, fresh_world: AsyncEngine) -> None:
    got = report("urql_client.mjs", live_url + "/graphql")
    assert [(story["id"], story["latestUpdate"]) for story in got["roots"]] == [
        ("g-1", {"__typename": "GoalStoryUpdate", "status": "AT_RISK"}),
        ("g-4", None),
    ]
    events = got["events"]
    assert events["seen"][-1]["referenceId"] == events["written"]
    assert events["seen"][-1]["eventType"] == "GOAL_STORY_UPDATE"


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


async def test_graphql_codegen_types_compile_and_its_manifest_is_served(database_url: str, world: AsyncEngine) -> None:
    fresh(GENERATED / "codegen")
    generated = run("node_modules/.bin/graphql-codegen", "--config", "codegen.json")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    checked = run("node_modules/typescript/bin/tsc", "-p", "tsconfig.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The same check fails where the app misreads a type: it is a check.
    (GENERATED / "wrong.ts").write_text(
        "import { GoalTree } from '../apps/codegen/goals';\n"
        "import type { ResultOf } from '@graphql-typed-document-node/core';\n"
        "export const title: number = ({} as ResultOf<typeof GoalTree>).goalStory!.title;\n"
    )
    (GENERATED / "tsconfig.json").write_text(
        json.dumps(
            {"extends": "../tsconfig.json", "include": ["../apps/codegen/**/*.ts", "codegen/**/*.ts", "wrong.ts"]}
        )
    )
    wrong = run("node_modules/typescript/bin/tsc", "-p", ".generated/tsconfig.json")
    assert wrong.returncode != 0 and "wrong.ts" in wrong.stdout and "not assignable" in wrong.stdout, wrong.stdout

    manifest = GENERATED / "codegen" / "persisted-documents.json"
    documents = json.loads(manifest.read_text())
    [(tree_id, tree)] = [(id, document) for id, document in documents.items() if "query GoalTree" in document]
    with RunningServer(database_url, graphql_trusted_documents=str(manifest)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            by_id = await client.post("/graphql", json={"documentId": tree_id, "variables": {"id": "g-1"}})
            assert by_id.json()["data"]["goalStory"]["children"]["totalCount"] == 0
            assert by_id.json()["data"]["goalStory"]["title"] == "Launch"
            hashed = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": tree_id.removeprefix("sha256:")}}}
            assert (await client.post("/graphql", json={**hashed, "variables": {"id": "g-2"}})).json()["data"][
                "goalStory"
            ]["title"] == "API"
            other = await client.post("/graphql", json={"query": tree.replace("title", "description")})
            assert other.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_ONLY"


async def test_relay_compiler_and_its_persisted_queries(database_url: str, world: AsyncEngine) -> None:
    fresh(GENERATED / "relay")
    persisted = GENERATED / "relay-persisted.json"
    persisted.write_text("{}")
    compiled = run("node_modules/relay-compiler/cli.js", "relay.config.json")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    artifacts = {path.name for path in (GENERATED / "relay").iterdir()}
    assert {
        "GoalsRootsQuery.graphql.ts",
        "GoalsStory_story.graphql.ts",
        "GoalsStoryRefetchQuery.graphql.ts",
    } <= artifacts
    documents = json.loads(persisted.read_text())
    ids = {document.split("(")[0].removeprefix("query "): id for id, document in documents.items()}
    assert "node(nodeId: $nodeId)" in documents[ids["GoalsStoryRefetchQuery"]]

    with RunningServer(database_url, graphql_trusted_documents=str(persisted)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def operation(name: str, variables: dict[str, Any]) -> dict[str, Any]:
                response = await client.post("/graphql", json={"documentId": ids[name], "variables": variables})
                body = response.json()
                assert "errors" not in body, body
                return body["data"]

            roots = await operation("GoalsRootsQuery", {"status": "AT_RISK"})
            [story] = roots["goalStories"]["nodes"]
            assert story["title"] == "Launch" and story["latestUpdate"]["actor"]["name"] == "Ada"
            # Relay refetches the fragment through node(nodeId:), with the id it normalized the story by.
            again = await operation("GoalsStoryRefetchQuery", {"nodeId": story["nodeId"]})
            assert again["node"] == {"__typename": "GoalStory", **story}
            page = await operation("GoalsUpdatesPaginationQuery", {"nodeId": story["nodeId"], "count": 1})
            edges = page["node"]["updates"]["edges"]
            assert [edge["node"]["title"] for edge in edges] == ["Slip"]
            following = await operation(
                "GoalsUpdatesPaginationQuery",
                {"nodeId": story["nodeId"], "count": 1, "cursor": page["node"]["updates"]["pageInfo"]["endCursor"]},
            )
            assert [edge["node"]["title"] for edge in following["node"]["updates"]["edges"]] == ["Kickoff"]


def test_the_docs_show_the_setups_the_tests_run() -> None:
    docs = (NODE_DIR.parents[1] / "docs" / "graphql.md").read_text()
    for name in ("clients/apollo.mjs", "clients/urql.mjs", "codegen.json", "relay.config.json"):
        assert (NODE_DIR / name).read_text().rstrip("\n") in docs, f"docs/graphql.md no longer shows tests/node/{name}"
