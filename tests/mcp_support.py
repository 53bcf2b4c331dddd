"""Connecting the SDK's own client to the server, over each transport, and seed data for the MCP tests."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import CallToolResult

from api.store.writes import WriteService

ROOT = Path(__file__).resolve().parents[1]
# Streamable HTTP and stdio (`coco mcp` launched as a desktop assistant does), each with the
# per-request protocol (2026-07-28) the client prefers and with the initialize handshake of the
# 2025 revisions, which assistants built on older SDKs speak.
TRANSPORTS = ("http", "http-handshake", "stdio", "stdio-handshake")


@asynccontextmanager
async def connect(transport: str, server_url: str, database_url: str) -> AsyncIterator[Client]:
    mode = "legacy" if transport.endswith("-handshake") else "auto"
    if transport.startswith("stdio"):
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "api", "mcp"],
            cwd=str(ROOT),
            env={"DATABASE_URL": database_url, "COCO_LOG_LEVEL": "warning"},
        )
        with tempfile.TemporaryFile("w+") as errlog:
            try:
                async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
                    yield client
            except BaseException:
                errlog.seek(0)
                sys.stderr.write(f"--- coco mcp stderr ---\n{errlog.read()}\n")
                raise
        return
    async with Client(f"{server_url}/mcp", mode=mode) as client:
        yield client


def structured(result: CallToolResult) -> dict[str, Any]:
    """The tool's JSON result, checked to be the same in the text content and in structuredContent."""
    assert not result.is_error, result.content
    text = json.loads(result.content[0].text)
    assert text == result.structured_content
    return text


def tool_error(result: CallToolResult) -> tuple[str, dict[str, Any]]:
    assert result.is_error, result.structured_content
    return result.content[0].text, result.structured_content["error"]


async def seed(writer: WriteService) -> None:
    """Two people and an agent, two teams, a goal story with two sub-goals and a grandchild."""
    await writer.create(
        "actor",
        [
            {
                "id": "p-1",
                "actor_type": "person",
                "name": "Quinn Reed",
                "role": "Product Manager",
                "timezone": "America/Chicago",
            },
            {"id": "p-2", "actor_type": "person", "name": "Ada Obi", "role": "Engineer"},
            {"id": "a-1", "actor_type": "agent", "name": "Research Bot", "role": "Compiles market research"},
        ],
    )
    await writer.create(
        "team",
        [
            {"id": "t-1", "name": "Product", "description": "Shape the core product", "member_ids": ["p-1", "a-1"]},
            {"id": "t-2", "name": "Backend", "member_ids": ["p-2"]},
        ],
    )
    await writer.create(
        "goal_story",
        [
            {
                "id": "g-1",
                "title": "Improve onboarding",
                "description": "Time-to-value under 3 days.",
                "team_ids": ["t-1"],
                "actor_ids": ["p-1", "a-1"],
                "timeframe": {"start": "2026-01-06", "end": "2026-03-31"},
            },
            {"id": "g-1a", "title": "Onboarding emails", "parent_id": "g-1", "team_ids": ["t-1"]},
            {"id": "g-1b", "title": "Setup wizard", "parent_id": "g-1", "team_ids": ["t-2"]},
            {"id": "g-1a-i", "title": "Welcome email copy", "parent_id": "g-1a"},
            {"id": "g-2", "title": "Cut infrastructure cost", "team_ids": ["t-2"]},
        ],
    )
