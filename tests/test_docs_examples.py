"""Every example in README.md and docs/*.md, run exactly as printed against a real server on the demo data.

curl lines run with curl itself (told only to connect to the test server where they say localhost:2626,
and to print the status), GraphQL documents are posted to /graphql, MCP tool calls go to /mcp; what the
writes wrote is read back from the tables afterwards. A fenced block this test does not know how to run
fails it, so a new example is run too, or explicitly set aside here as a command (make, coco, docker)
or an assistant's configuration.
"""

from __future__ import annotations

import json
import queue
import re
import shlex
import shutil
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from graphql import parse, value_from_ast_untyped
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.demo import seed
from api.ops.embedded import EmbeddedPostgres
from api.ops.transfer import export_lines
from api.store.database import create_engine
from api.store.migrate import upgrade
from api.store.reads import Reader
from api.store.writes import WriteService
from tests.conftest import RunningServer, table_counts
from tests.live.helpers import until_subscribers

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PRINTED = "localhost:2626"
# Commands that are not requests to a running server: installing, serving, seeding, moving data, Docker.
COMMANDS = ("make ", ".venv/bin/coco ", "coco ", "docker ", "DATABASE_URL=")
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
# Client setups docs/graphql.md shows: copies of these files, which tests/graphql_api/test_clients.py runs.
NODE_FILES = {
    path.read_text().rstrip("\n")
    for pattern in ("clients/*.mjs", "*.json")
    for path in (ROOT / "tests" / "node").glob(pattern)
    if path.name not in ("package.json", "package-lock.json")
}

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@dataclass
class Block:
    path: Path
    line: int
    language: str
    text: str

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks() -> list[Block]:
    blocks = []
    for path in DOCUMENTS:
        lines = path.read_text().splitlines()
        start: int | None = None
        for number, line in enumerate(lines, 1):
            if line.startswith("```") and start is None:
                start, language = number, line[3:].strip()
            elif line.startswith("```"):
                assert start is not None
                blocks.append(Block(path, start, language, "\n".join(lines[start : number - 1])))
                start = None
        assert start is None, f"{path}: a fenced block is not closed"
    return blocks


def is_stream(command: str) -> bool:
    return "/coordination_events" in command and "text/event-stream" in command


def shell_commands(block: Block) -> list[str]:
    """The commands of a shell block, continuation lines joined."""
    return [c.strip() for c in re.sub(r"\\\n\s*", " ", block.text).splitlines() if c.strip()]


def tool_calls(block: Block) -> list[tuple[str, dict[str, Any], str]]:
    """`tool {arguments}` lines, each followed by `→ the answer`."""
    lines = [line for line in block.text.splitlines() if line.strip()]
    calls = []
    for call, answer in zip(lines[::2], lines[1::2], strict=True):
        name, _, arguments = call.partition(" ")
        assert answer.startswith("→ "), f"{block.where()}: {call!r} is not followed by its answer"
        calls.append((name, json.loads(arguments), answer.removeprefix("→ ")))
    return calls


@dataclass
class Demo:
    url: str
    engine: AsyncEngine

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def demo(postgres: EmbeddedPostgres) -> AsyncIterator[Demo]:
    """A server on a database of its own holding the demo data, as `make seed` writes it."""
    url = postgres.create_database(f"coco_docs_{uuid.uuid4().hex[:8]}")
    engine = create_engine(url, pool_size=2)
    await upgrade(engine)
    await seed(WriteService(engine))
    try:
        with RunningServer(url) as base:
            yield Demo(base, engine)
    finally:
        await engine.dispose()


def curl(command: str, demo: Demo, *extra: str) -> list[str]:
    """The printed command, told where the test server is (the request itself is left as printed)."""
    argv = shlex.split(command, comments=True)
    assert argv[0] == "curl" and any(PRINTED in a for a in argv), command
    return ["curl", "--connect-to", f"localhost:2626:127.0.0.1:{demo.port}", "--max-time", "60", *extra, *argv[1:]]


def run_curl(command: str, demo: Demo) -> tuple[int, str]:
    done = subprocess.run(curl(command, demo, "-w", "\n%{http_code}"), capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


class Stream:
    """A printed `curl -N` of the event stream, running; its lines are read as they come."""

    def __init__(self, command: str, demo: Demo) -> None:
        self.process = subprocess.Popen(
            curl(command, demo), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self.read_lines, daemon=True).start()

    def read_lines(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def events(self, wanted: int) -> list[tuple[str, dict[str, Any]]]:
        """The next `wanted` events, as (id line, document)."""
        found: list[tuple[str, dict[str, Any]]] = []
        ident = None
        while len(found) < wanted:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(f"only {len(found)} of {wanted} events arrived on the event stream") from None
            if line.startswith("id: "):
                ident = line.removeprefix("id: ")
            elif line.startswith("data: "):
                assert ident is not None
                found.append((ident, json.loads(line.removeprefix("data: "))))
        return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# What particular examples answer on the demo data, by a piece of the example's text. Each must be used.
def _newest_marketing(rows: list[dict[str, Any]]) -> None:
    assert len(rows) == 3
    quinns = {"date": "2026-05-22", "previously": ["Booked the webinar speakers"], "actor": {"name": "Quinn Reed"}}
    assert rows[0] == quinns


def _blocked(rows: list[dict[str, Any]]) -> None:
    assert len(rows) == 5 and all(r["blockers"] and r["team"]["name"] for r in rows)


def _backend_week(result: dict[str, Any]) -> None:
    week = result["structuredContent"]
    assert week["team"]["name"] == "Backend" and week["checkins"] and week["blockers"], week


def _goal_tree(data: dict[str, Any]) -> None:
    [root] = data["goalStories"]["nodes"]
    assert root["title"] == "Launch PSC 2.0" and len(root["children"]["nodes"]) == 3
    assert {t["name"] for t in root["teams"]} == {"Backend", "Frontend", "Marketing"}


def _agent_checkin(data: dict[str, Any]) -> None:
    event = data["createTeamCheckin"]["coordinationEvent"]
    assert event["eventType"] == "TEAM_CHECKIN" and isinstance(event["cursor"], str)


def _sub_goals(data: dict[str, Any]) -> None:
    children = data["goalStory"]["children"]
    progress = [n["latestUpdate"]["progressPercent"] for n in children["nodes"] if n["latestUpdate"]]
    assert children["aggregates"] == {"distinctCount": {"id": "3"}} and len(progress) == 3
    latest = children["latestUpdates"]
    assert float(latest["aggregates"]["average"]["progressPercent"]) == pytest.approx(sum(progress) / 3)
    assert latest["aggregates"]["min"]["progressPercent"] == min(progress)
    statuses = [n["latestUpdate"]["status"] for n in children["nodes"]]
    assert latest["groupedAggregates"] == [
        {"keys": [status], "distinctCount": {"goalStoryId": str(statuses.count(status))}}
        for status in sorted(set(statuses), key=str.lower)
    ]


EXPECTED: dict[str, Callable[[Any], None]] = {
    "team_id=eq.demo-t-marketing&order=created_at.desc": _newest_marketing,
    "blockers=not.is.null": _blocked,
    "member_ids=cs.{demo-p-quinn}": lambda rows: rows == [{"name": "Frontend"}, {"name": "Marketing"}],
    '"name":"get_team_checkins"': _backend_week,
    "goalStories(where: {parentId: {isNull: true}})": _goal_tree,
    "createTeamCheckin": _agent_checkin,
    'goalStory(id: "demo-g-launch")': _sub_goals,
}


def check(example: str, answer: Any, used: set[str]) -> None:
    for piece, expected in EXPECTED.items():
        if piece in example:
            used.add(piece)
            assert expected(answer) is not False, (example, answer)


async def test_every_example_in_the_docs_runs_as_printed(demo: Demo) -> None:
    blocks = fenced_blocks()
    before = await table_counts(demo.engine)
    # The live feed first, as a reader would leave it open: every write below arrives on it.
    streams = [
        Stream(command, demo)
        for block in blocks
        if block.language == "sh"
        for command in shell_commands(block)
        if is_stream(command)
    ]
    try:
        assert streams, "the docs show no event stream"
        await until_subscribers(demo.url, len(streams))
        written, used = await run_examples(blocks, demo)
        assert used == set(EXPECTED), f"checks of examples no longer in the docs: {set(EXPECTED) - used}"
        received = [stream.events(len(written)) for stream in streams]
    finally:
        for stream in streams:
            stream.stop()

    # The tables hold exactly what the examples wrote, and each write reached the open event stream.
    assert len(written) == 3, written  # REST, GraphQL and MCP each post a check-in
    after = await table_counts(demo.engine)
    assert after == {
        **before,
        "team_checkins": before["team_checkins"] + len(written),
        "coordination_events": before["coordination_events"] + len(written),
    }
    async with demo.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, actor_id, team_id, date::text AS date, previously, next, blockers "
                "FROM team_checkins WHERE id NOT LIKE 'demo-%'"
            )
        )
        stored = {row["id"]: dict(row) for row in rows.mappings()}
    assert set(stored) == {sent["id"] for sent in written}
    for sent in written:
        assert {key: stored[sent["id"]][key] for key in sent} == sent
    for events in received:
        assert {document["reference_id"] for _, document in events} == set(stored)
        assert all(document["cursor"] == ident for ident, document in events)


async def run_examples(blocks: list[Block], demo: Demo) -> tuple[list[dict[str, Any]], set[str]]:
    """Run every example but the event streams, in the order of the docs; the check-ins they wrote
    (as sent, with the ids the server gave) and the checks of EXPECTED they met."""
    written: list[dict[str, Any]] = []
    used: set[str] = set()
    async with httpx.AsyncClient(base_url=demo.url, timeout=60) as http:
        for block in blocks:
            if block.language == "graphql":
                answer = await http.post("/graphql", json={"query": block.text})
                assert answer.status_code == 200 and "errors" not in answer.json(), (block.where(), answer.text)
                data = answer.json()["data"]
                check(block.text, data, used)
                if "createTeamCheckin" in block.text:
                    written.append(
                        {"id": data["createTeamCheckin"]["teamCheckin"]["id"], **_mutation_input(block.text)}
                    )
            elif block.language == "sh":
                for command in shell_commands(block):
                    if command.startswith(COMMANDS) or is_stream(command):
                        continue
                    status, body = run_curl(command, demo)
                    assert 200 <= status < 300, (block.where(), command, status, body)
                    answer = json.loads(body)
                    if "/mcp" in command:
                        assert not answer["result"].get("isError"), (command, answer)
                        answer = answer["result"]
                    check(command, answer, used)
                    written += _checkins_written(command, answer)
            elif block.language == "text" and "→ " in block.text:
                for name, arguments, expected in tool_calls(block):
                    params = {"name": name, "arguments": arguments}
                    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
                    result = (await http.post("/mcp", json=call, headers=MCP_HEADERS)).json()["result"]
                    assert result["content"][0]["text"] == expected, (block.where(), name)
            elif block.language == "jsonl":
                exported = {line async for line in export_lines(Reader(demo.engine))}
                for line in block.text.splitlines():
                    assert line in exported, f"{block.where()}: not a line of the demo data's export: {line}"
            elif block.language in ("js", "json") and block.text in NODE_FILES:
                continue  # a client's setup, run from tests/node by tests/graphql_api/test_clients.py
            elif block.language == "json":  # an assistant's configuration, pointing at this server
                configured = json.loads(block.text)["mcpServers"]["coco"]
                assert configured.get("url", "http://localhost:2626/mcp") == "http://localhost:2626/mcp"
                assert configured.get("args", ["mcp"]) == ["mcp"]
            else:
                assert block.language == "text", f"{block.where()}: a ```{block.language} block this test cannot run"
    return written, used


def _checkins_written(command: str, answer: Any) -> list[dict[str, Any]]:
    """The check-ins a curl example posted, as it sent them (with the id the server gave)."""
    argv = shlex.split(command, comments=True)
    if "-d" not in argv:
        return []
    sent = json.loads(argv[argv.index("-d") + 1])
    if "/team_checkins" in command:
        [row] = answer
        return [{"id": row["id"], **sent}]
    if sent.get("params", {}).get("name") == "post_team_checkin":
        return [{"id": answer["structuredContent"]["team_checkin"]["id"], **sent["params"]["arguments"]}]
    return []


def _mutation_input(document: str) -> dict[str, Any]:
    """The `input` a printed create mutation sends, with the tables' column names."""
    [operation] = parse(document).definitions
    [field_] = operation.selection_set.selections  # type: ignore[attr-defined]
    [argument] = [a for a in field_.arguments if a.name.value == "input"]
    given = value_from_ast_untyped(argument.value)
    return {re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), key): value for key, value in given.items()}
