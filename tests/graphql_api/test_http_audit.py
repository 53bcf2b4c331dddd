"""The GraphQL-over-HTTP specification's own audit (`serverAudits` of graphql-http, pinned in tests/node)
against the real server, with access control off and on: every MUST, SHOULD and MAY item must be ok."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RunningServer
from tests.node_clients import NODE_DIR, node

SECRET = "an-audit-secret-of-at-least-32-characters"
READ_TOKEN = "audit-read-token-0123456789"
SCRIPT = NODE_DIR / "graphql_http_audit.mjs"


def audit(url: str, token: str | None = None) -> list[dict]:
    """Every audit's result, as graphql_http_audit.mjs prints them."""
    env = {name: value for name, value in os.environ.items() if name != "COCO_AUDIT_TOKEN"}
    if token is not None:
        env["COCO_AUDIT_TOKEN"] = token
    done = subprocess.run(
        [node(), str(SCRIPT), url + "/graphql"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"the audit did not run:\n{done.stdout}\n{done.stderr}"
    results = json.loads(done.stdout)
    assert len(results) >= 60, f"fewer audits than graphql-http 1.23.1 has: {len(results)}"
    return results


def failures(results: list[dict]) -> str:
    failed = [r for r in results if r["status"] != "ok"]
    return "\n".join(
        f"{r['status']} {r['id']} {r['name']}: {r.get('reason')} "
        f"(HTTP {r.get('httpStatus')}, {r.get('contentType')}: {(r.get('body') or '')[:300]})"
        for r in failed
    )


@pytest.fixture(scope="module")
def secured_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, tokens=f"read:{READ_TOKEN}", jwt_secret=SECRET) as url:
        yield url


def test_the_audit_passes_every_item(server_url: str) -> None:
    results = audit(server_url)
    assert all(r["status"] == "ok" for r in results), failures(results)


def test_the_audit_passes_every_item_with_access_control(secured_url: str) -> None:
    # The token the audit sends is a JWT granting read only, as an identity provider would mint it.
    token = jwt.encode({"role": "read", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    results = audit(secured_url, token)
    assert all(r["status"] == "ok" for r in results), failures(results)
    # Access control was on: without the token, the same request is refused.
    anonymous = httpx.post(secured_url + "/graphql", json={"query": "{ __typename }"}, timeout=30)
    assert anonymous.status_code == 401
