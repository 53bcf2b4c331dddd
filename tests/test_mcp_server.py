"""The MCP server around its tools: HTTP guard rails, `coco mcp` as a process, the generated reference."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR

from api.entities import ENTITIES
from api.mcp.reference import field_reference
from api.mcp.server import TOOLS, create_server
from api.mcp.write_tools import WRITE_TOOLS
from api.ops.embedded import EmbeddedPostgres
from api.store.database import create_engine
from api.store.reads import Reader
from api.store.writes import WriteService

from .conftest import table_counts
from .mcp_support import ROOT, seed

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}
CALL = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "post_team_checkin", "arguments": {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_a_foreign_host_or_origin_is_refused_on_loopback(server_url: str, writer: WriteService) -> None:
    """DNS rebinding: a web page must not reach the local server through a name it controls."""
    await seed(writer)
    before = await table_counts(writer.engine)
    async with httpx.AsyncClient(base_url=server_url) as client:
        ok = await client.post("/mcp", json=INITIALIZE, headers=ACCEPT)
        assert ok.status_code == 200, ok.text
        assert ok.json()["result"]["serverInfo"]["name"] == "coco"
        foreign_host = await client.post("/mcp", json=CALL, headers={**ACCEPT, "Host": "evil.example"})
        assert foreign_host.status_code == 421
        foreign_origin = await client.post("/mcp", json=CALL, headers={**ACCEPT, "Origin": "http://evil.example"})
        assert foreign_origin.status_code == 403
    assert await table_counts(writer.engine) == before


async def test_the_endpoint_keeps_no_session_so_any_worker_can_answer(server_url: str, writer: WriteService) -> None:
    """Stateless: a tools/call without any session id is answered, as by a worker that never saw the client."""
    await seed(writer)
    async with httpx.AsyncClient(base_url=server_url) as client:
        response = await client.post("/mcp", json=CALL, headers={**ACCEPT, "MCP-Protocol-Version": "2025-06-18"})
    assert response.status_code == 200, response.text
    assert "mcp-session-id" not in response.headers
    result = response.json()["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["coordination_event"]["event_type"] == "team_checkin"


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("COCO_")}
    return {**env, **extra}


async def _list_tools_over_stdio(env: dict[str, str], errlog_path: Path) -> set[str]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "api", "mcp"], cwd=str(ROOT), env=env)
    with errlog_path.open("w+") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            return {tool.name for tool in (await client.list_tools()).tools}


async def test_coco_mcp_without_database_url_uses_the_embedded_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "coco"
    env = _environment(COCO_DATA_DIR=str(data_dir))
    pg = EmbeddedPostgres(data_dir / "pgdata")
    # Already running (say, under `coco serve`): reused, and left running afterwards.
    pg.start()
    try:
        assert await _list_tools_over_stdio(env, tmp_path / "first.log") == set(TOOLS)
        assert pg.running
    finally:
        pg.stop()
    # Not running: started for the session and stopped after it.
    assert await _list_tools_over_stdio(env, tmp_path / "second.log") == set(TOOLS)
    assert not EmbeddedPostgres(data_dir / "pgdata").running, (tmp_path / "second.log").read_text()


def test_coco_mcp_stops_cleanly_on_sigterm_and_keeps_stdout_for_the_protocol(database_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "mcp"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(DATABASE_URL=database_url, COCO_LOG_LEVEL="debug"),
    )
    try:
        process.stdin.write(b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}\n')
        process.stdin.flush()
        # The answer proves the server is up (and that it answers a ping before initialize).
        line = process.stdout.readline()
        assert b'"id":1' in line.replace(b" ", b""), line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        rest = process.stdout.read()
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    # Debug logging was on, yet nothing but protocol messages reached stdout.
    assert rest == b"", rest
    assert stderr, "the logs go to stderr"


def test_the_field_reference_names_every_field_of_every_entity() -> None:
    reference = field_reference()
    for ent in ENTITIES.values():
        assert f"## {ent.title} (`{ent.resource}`)" in reference
        for f in ent.fields:
            assert f"| `{f.name}` |" in reference, (ent.name, f.name)


def test_write_tool_arguments_are_the_entity_fields() -> None:
    """The write tools' schemas are generated from api.entities, so they cannot drift from the write service."""
    written = {"post_team_checkin": "team_checkin", "post_goal_story_update": "goal_story_update"}
    assert {tool.name for tool in WRITE_TOOLS} == set(written)
    for tool in WRITE_TOOLS:
        ent = ENTITIES[written[tool.name]]
        assert set(tool.input_schema["properties"]) == {f.name for f in ent.fields} - {"created_at"}
        assert set(tool.input_schema["required"]) == {f.name for f in ent.fields if f.required} - {"id"}


async def test_an_unreachable_database_is_a_tool_error_not_a_broken_session(tmp_path: Path) -> None:
    engine = create_engine(f"postgresql://postgres@/postgres?host={tmp_path}&port=1", pool_size=1)
    try:
        async with Client(create_server(Reader(engine), WriteService(engine))) as client:
            for tool, arguments in (
                ("list_actors", {}),
                ("post_team_checkin", {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22"}),
            ):
                result = await client.call_tool(tool, arguments)
                assert result.is_error
                assert result.structured_content["error"]["kind"] == "unavailable"
                assert "try again" in result.content[0].text
            with pytest.raises(MCPError, match=r"database is unavailable.*try again") as raised:
                await client.read_resource("coco://goal-stories/tree")
            assert raised.value.error.code == INTERNAL_ERROR
            assert len((await client.list_tools()).tools) == len(TOOLS)
    finally:
        await engine.dispose()
