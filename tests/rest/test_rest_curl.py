"""The documented requests sent with curl itself, as an agent or a script would type them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(*args: str) -> tuple[int, str]:
    """Run curl; return the status and the body."""
    result = subprocess.run(
        ["curl", "-s", "-g", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60, check=True
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


async def test_curl_examples(clean: AsyncEngine, server_url: str) -> None:
    base = server_url
    json_header = ["-H", "Content-Type: application/json"]
    representation = [*json_header, "-H", "Prefer: return=representation"]

    status, body = curl(
        "-X",
        "POST",
        f"{base}/actors",
        *representation,
        "-d",
        '{"id":"p-1","actor_type":"person","name":"Quinn Reed","role":"Product Manager","timezone":"America/Chicago"}',
    )
    assert status == 201 and json.loads(body)[0]["id"] == "p-1"
    status, body = curl(
        "-X",
        "POST",
        f"{base}/actors",
        *representation,
        "-d",
        '{"actor_type":"agent","name":"Research Bot","role":"Compiles ongoing market research"}',
    )
    agent = json.loads(body)[0]["id"]
    status, _ = curl(
        "-X",
        "POST",
        f"{base}/teams",
        *representation,
        "-d",
        json.dumps(
            {
                "id": "t-1",
                "name": "Product",
                "description": "Shape and maintain the core product",
                "member_ids": ["p-1", agent],
            }
        ),
    )
    assert status == 201
    status, body = curl(
        "-X",
        "POST",
        f"{base}/goal_stories",
        *representation,
        "-d",
        json.dumps(
            {
                "id": "g-1",
                "title": "Improve new customer onboarding experience",
                "description": "Reduce time-to-value from 10 days to under 3.",
                "team_ids": ["t-1"],
                "actor_ids": ["p-1", agent],
                "timeframe": {"start": "2026-01-06", "end": "2026-03-31"},
            }
        ),
    )
    assert status == 201 and json.loads(body)[0]["timeframe"] == {"start": "2026-01-06", "end": "2026-03-31"}
    status, body = curl(
        "-X",
        "POST",
        f"{base}/team_checkins",
        *json_header,
        "-d",
        '{"actor_id":"p-1","team_id":"t-1","date":"2026-05-22","previously":["..."],"next":["..."],"blockers":["..."]}',
    )
    assert (status, body) == (201, "")
    status, _ = curl(
        "-X",
        "POST",
        f"{base}/goal_story_updates",
        *json_header,
        "-d",
        '{"actor_id":"p-1","goal_story_id":"g-1","date":"2026-05-22","title":"...","content":"...",'
        '"status":"on_track","progress_percent":70}',
    )
    assert status == 201
    assert await count_rows(clean, "coordination_events") == 2

    status, body = curl(f"{base}/team_checkins?team_id=eq.t-1&date=gte.2026-01-01")
    assert status == 200 and len(json.loads(body)) == 1
    status, body = curl(f"{base}/team_checkins?team_id=eq.t-1&date=gte.2026-05-18&date=lte.2026-05-22&order=date.desc")
    assert len(json.loads(body)) == 1
    status, body = curl(f"{base}/goal_stories?order=created_at.desc&limit=20&offset=20")
    assert (status, json.loads(body)) == (200, [])
    status, body = curl(f"{base}/goal_story_updates?goal_story_id=eq.g-1&order=date.desc")
    assert len(json.loads(body)) == 1
    status, body = curl(f"{base}/actors?id=eq.p-1")
    assert [a["id"] for a in json.loads(body)] == ["p-1"]
    status, body = curl("-X", "PATCH", f"{base}/actors?id=eq.p-1", *json_header, "-d", '{"role":"Head of Product"}')
    assert (status, body) == (204, "")
    status, body = curl(f"{base}/teams?member_ids=cs.{{p-1}}")
    assert [t["id"] for t in json.loads(body)] == ["t-1"]
    status, body = curl(f"{base}/coordination_events?order=occurred_at.desc&limit=50")
    assert len(json.loads(body)) == 2
    status, _ = curl(
        "-X",
        "POST",
        f"{base}/team_checkins",
        *json_header,
        "-d",
        '[{"actor_id":"p-1","team_id":"t-1","date":"2026-05-23"},'
        '{"actor_id":"p-1","team_id":"t-1","date":"2026-05-24"}]',
    )
    assert status == 201
    assert await count_rows(clean, "coordination_events") == 4
    status, body = curl("-X", "POST", f"{base}/coordination_events", *json_header, "-d", '{"actor_id":"p-1"}')
    assert 400 <= status < 500 and json.loads(body)["code"]
    assert await count_rows(clean, "coordination_events") == 4
    status, body = curl("-X", "DELETE", f"{base}/actors?id=eq.p-1")
    assert status == 409
    status, body = curl("-X", "DELETE", f"{base}/goal_story_updates?goal_story_id=eq.g-1")
    assert status == 204
