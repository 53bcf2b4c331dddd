"""The MCP tools and resources through the SDK's own client, over Streamable HTTP and over stdio.

Every test runs once per transport: the real app under uvicorn at /mcp (with the
per-request protocol and with the initialize handshake), and `python -m api mcp`
spawned as a desktop assistant would, both against the test database.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp.shared.exceptions import MCPError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.entities import GOAL_STORY_STATUSES
from api.ops.schemas import validator
from api.store.writes import WriteService

from .conftest import table_counts
from .mcp_support import TRANSPORTS, connect, seed, structured, tool_error

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
EXPECTED_TOOLS = {
    "post_team_checkin",
    "post_goal_story_update",
    "list_actors",
    "list_teams",
    "list_goal_stories",
    "get_goal_story",
    "get_team_checkins",
    "get_coordination_events",
    "get_team_coverage",
    "get_stale_goal_stories",
    "get_open_blockers",
    "get_goal_rollup",
}


async def _events_of(engine: AsyncEngine, reference_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT actor_id, event_type, reference_id FROM coordination_events WHERE reference_id = :id"),
            {"id": reference_id},
        )
        return [dict(r) for r in rows.mappings()]


async def _row(engine: AsyncEngine, table: str, id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(text(f"SELECT * FROM {table} WHERE id = :id"), {"id": id})).mappings().first()
        return dict(row) if row else None


async def test_tools_are_listed_with_valid_input_schemas(transport: str, server_url: str, database_url: str) -> None:
    async with connect(transport, server_url, database_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object"
        assert len(tool.description or "") > 80, f"{tool.name} needs a description a model can act on"
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    checkin = tools["post_team_checkin"].input_schema
    assert set(checkin["required"]) == {"actor_id", "team_id", "date"}
    assert checkin["properties"]["blockers"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": checkin["properties"]["blockers"]["description"],
    }
    assert "created_at" not in checkin["properties"]
    update = tools["post_goal_story_update"].input_schema
    assert set(update["required"]) == {"actor_id", "goal_story_id", "date", "title", "content"}
    assert update["properties"]["status"]["enum"] == list(GOAL_STORY_STATUSES)
    assert (
        update["properties"]["progress_percent"]["minimum"],
        update["properties"]["progress_percent"]["maximum"],
    ) == (0, 100)
    assert "list_goal_stories" in update["properties"]["goal_story_id"]["description"]
    assert tools["get_team_checkins"].input_schema["required"] == ["team_id"]
    assert tools["list_actors"].annotations.read_only_hint is True
    assert tools["post_team_checkin"].annotations.read_only_hint is False


async def test_posting_writes_the_row_and_exactly_one_event_then_reads_back(
    transport: str, server_url: str, database_url: str, writer: WriteService
) -> None:
    await seed(writer)
    engine = writer.engine
    async with connect(transport, server_url, database_url) as client:
        posted = structured(
            await client.call_tool(
                "post_team_checkin",
                {
                    "actor_id": "a-1",
                    "team_id": "t-1",
                    "date": TODAY,
                    "previously": ["Compiled the competitor pricing table"],
                    "next": ["Summarise churn interviews"],
                    "blockers": ["No access to the interview recordings"],
                },
            )
        )
        checkin = posted["team_checkin"]
        validator("team_checkin").validate(checkin)
        assert checkin["blockers"] == ["No access to the interview recordings"]
        event = posted["coordination_event"]
        assert (event["event_type"], event["reference_id"], event["actor_id"]) == ("team_checkin", checkin["id"], "a-1")
        assert event["occurred_at"] == checkin["created_at"]

        updated = structured(
            await client.call_tool(
                "post_goal_story_update",
                {
                    "actor_id": "p-1",
                    "goal_story_id": "g-1a",
                    "date": TODAY,
                    "title": "Emails drafted",
                    "content": "All five drafted; legal review next.",
                    "status": "at_risk",
                    "progress_percent": 40,
                },
            )
        )
        update = updated["goal_story_update"]
        validator("goal_story_update").validate(update)
        assert (update["status"], update["progress_percent"]) == ("at_risk", 40)
        assert updated["coordination_event"]["reference_id"] == update["id"]
        assert int(updated["coordination_event"]["cursor"]) > int(event["cursor"])

        # In the database: the rows, and exactly one event each, naming the row and its actor.
        assert (await _row(engine, "team_checkins", checkin["id"]))["next"] == ["Summarise churn interviews"]
        assert (await _row(engine, "goal_story_updates", update["id"]))["progress_percent"] == 40
        assert await _events_of(engine, checkin["id"]) == [
            {"actor_id": "a-1", "event_type": "team_checkin", "reference_id": checkin["id"]}
        ]
        assert await _events_of(engine, update["id"]) == [
            {"actor_id": "p-1", "event_type": "goal_story_update", "reference_id": update["id"]}
        ]
        assert (await table_counts(engine))["coordination_events"] == 2

        # Read back through the read tools.
        recent = structured(await client.call_tool("get_team_checkins", {"team_id": "t-1"}))
        assert recent["team"]["name"] == "Product"
        assert [c["id"] for c in recent["checkins"]] == [checkin["id"]]
        assert recent["checkins"][0]["actor"] == {"id": "a-1", "name": "Research Bot"}
        assert recent["blockers"] == [
            {
                "blocker": "No access to the interview recordings",
                "date": TODAY,
                "actor_id": "a-1",
                "actor_name": "Research Bot",
                "team_checkin_id": checkin["id"],
            }
        ]
        later = (dt.date.fromisoformat(TODAY) + dt.timedelta(days=1)).isoformat()
        assert (
            structured(await client.call_tool("get_team_checkins", {"team_id": "t-1", "since": later}))["checkins"]
            == []
        )
        assert structured(await client.call_tool("get_team_checkins", {"team_id": "t-2"}))["checkins"] == []

        story = structured(await client.call_tool("get_goal_story", {"goal_story_id": "g-1a"}))["goal_story"]
        assert story["parent"] == {"id": "g-1", "title": "Improve onboarding"}
        assert [u["id"] for u in story["latest_updates"]] == [update["id"]]
        assert story["latest_updates"][0]["actor"] == {"id": "p-1", "name": "Quinn Reed"}
        assert [s["id"] for s in story["sub_goals"]] == ["g-1a-i"]
        root = structured(await client.call_tool("get_goal_story", {"goal_story_id": "g-1"}))["goal_story"]
        assert [(s["id"], (s["latest_update"] or {}).get("status")) for s in root["sub_goals"]] == [
            ("g-1a", "at_risk"),
            ("g-1b", None),
        ]
        assert root["teams"] == [{"id": "t-1", "name": "Product"}]
        assert root["timeframe"] == {"start": "2026-01-06", "end": "2026-03-31"}

        listed = structured(await client.call_tool("list_goal_stories", {"search": "EMAIL"}))
        assert [g["id"] for g in listed["goal_stories"]] == ["g-1a", "g-1a-i"]
        assert listed["goal_stories"][0]["latest_update"]["progress_percent"] == 40
        roots = structured(await client.call_tool("list_goal_stories", {"roots_only": True}))
        assert [g["id"] for g in roots["goal_stories"]] == ["g-2", "g-1"]  # by title
        assert [
            g["id"] for g in structured(await client.call_tool("list_goal_stories", {"team_id": "t-2"}))["goal_stories"]
        ] == ["g-2", "g-1b"]


async def test_actors_and_teams_are_listed_searched_and_paged(
    transport: str, server_url: str, database_url: str, writer: WriteService
) -> None:
    await seed(writer)
    async with connect(transport, server_url, database_url) as client:
        everyone = structured(await client.call_tool("list_actors", {}))
        assert [a["name"] for a in everyone["actors"]] == ["Ada Obi", "Quinn Reed", "Research Bot"]
        assert (everyone["total"], everyone["next_offset"]) == (3, None)
        for actor in everyone["actors"]:
            validator("actor").validate(actor)
        assert [
            a["id"] for a in structured(await client.call_tool("list_actors", {"search": "product"}))["actors"]
        ] == ["p-1"]
        assert [
            a["id"] for a in structured(await client.call_tool("list_actors", {"actor_type": "agent"}))["actors"]
        ] == ["a-1"]
        # A search for LIKE's wildcards finds them literally.
        assert structured(await client.call_tool("list_actors", {"search": "%"}))["actors"] == []
        page = structured(await client.call_tool("list_actors", {"limit": 2}))
        assert (len(page["actors"]), page["total"], page["next_offset"]) == (2, 3, 2)
        rest = structured(await client.call_tool("list_actors", {"limit": 2, "offset": page["next_offset"]}))
        assert [a["id"] for a in rest["actors"]] == ["a-1"]

        teams = structured(await client.call_tool("list_teams", {"member_id": "a-1"}))["teams"]
        assert [t["id"] for t in teams] == ["t-1"]
        assert teams[0]["members"] == [
            {"id": "p-1", "name": "Quinn Reed", "actor_type": "person"},
            {"id": "a-1", "name": "Research Bot", "actor_type": "agent"},
        ]
        assert [t["id"] for t in structured(await client.call_tool("list_teams", {"search": "back"}))["teams"]] == [
            "t-2"
        ]


async def test_events_are_read_after_a_cursor_in_commit_order(
    transport: str, server_url: str, database_url: str, writer: WriteService
) -> None:
    await seed(writer)
    async with connect(transport, server_url, database_url) as client:
        start = structured(await client.call_tool("get_coordination_events", {}))
        assert start == {"events": [], "next_cursor": "0", "has_more": False}
        ids = []
        for day in ("2026-05-18", "2026-05-19", "2026-05-20"):
            posted = structured(
                await client.call_tool(
                    "post_team_checkin", {"actor_id": "p-1", "team_id": "t-1", "date": day, "next": [f"Plan for {day}"]}
                )
            )
            ids.append(posted["team_checkin"]["id"])
        first = structured(await client.call_tool("get_coordination_events", {"limit": 2}))
        assert [e["reference_id"] for e in first["events"]] == ids[:2]
        assert first["has_more"] is True
        assert first["next_cursor"] == first["events"][-1]["cursor"]
        assert first["events"][0]["actor"] == {"id": "p-1", "name": "Quinn Reed"}
        for event in first["events"]:
            validator("coordination_event").validate({k: v for k, v in event.items() if k not in ("cursor", "actor")})
        # Cursors are strings, as in GraphQL, the event stream and webhooks; a number is taken too.
        assert isinstance(first["next_cursor"], str) and first["next_cursor"].isdigit()
        rest = structured(await client.call_tool("get_coordination_events", {"after": first["next_cursor"]}))
        assert [e["reference_id"] for e in rest["events"]] == ids[2:]
        by_number = {"after": int(first["next_cursor"])}
        assert structured(await client.call_tool("get_coordination_events", by_number)) == rest
        assert rest["has_more"] is False
        # Nothing new: the same cursor comes back, to be used again.
        idle = structured(await client.call_tool("get_coordination_events", {"after": rest["next_cursor"]}))
        assert idle == {"events": [], "next_cursor": rest["next_cursor"], "has_more": False}
        # Something new written elsewhere (the write service, as GraphQL or REST would) shows up after it.
        other = await writer.create(
            "goal_story_update",
            [
                {
                    "actor_id": "p-2",
                    "goal_story_id": "g-2",
                    "date": "2026-05-21",
                    "title": "Reserved instances",
                    "content": "Bought a year of reserved instances.",
                }
            ],
        )
        news = structured(await client.call_tool("get_coordination_events", {"after": rest["next_cursor"]}))
        assert [(e["event_type"], e["reference_id"]) for e in news["events"]] == [
            ("goal_story_update", other.rows[0]["id"])
        ]
        only = structured(await client.call_tool("get_coordination_events", {"event_type": "goal_story_update"}))
        assert [e["reference_id"] for e in only["events"]] == [other.rows[0]["id"]]


async def test_resources_are_listed_and_read(
    transport: str, server_url: str, database_url: str, writer: WriteService
) -> None:
    await seed(writer)
    await writer.create(
        "team_checkin",
        [
            {"actor_id": "p-1", "team_id": "t-1", "date": TODAY, "blockers": ["Waiting for legal"]},
            {"actor_id": "p-1", "team_id": "t-1", "date": "2020-01-01", "next": ["Long ago"]},
        ],
    )
    await writer.create(
        "goal_story_update",
        [
            {
                "actor_id": "p-1",
                "goal_story_id": "g-1a",
                "date": TODAY,
                "title": "Drafted",
                "content": "...",
                "status": "on_track",
            }
        ],
    )
    async with connect(transport, server_url, database_url) as client:
        uris = {r.uri for r in (await client.list_resources()).resources}
        assert {
            "coco://goal-stories/tree",
            "coco://reference/fields",
            "coco://teams/t-1/last-week",
            "coco://teams/t-2/last-week",
        } <= uris
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["coco://teams/{team_id}/last-week"]

        tree = json.loads((await client.read_resource("coco://goal-stories/tree")).contents[0].text)
        shape = [
            (g["id"], [(c["id"], [gc["id"] for gc in c["children"]]) for c in g["children"]]) for g in tree["roots"]
        ]
        assert shape == [("g-2", []), ("g-1", [("g-1a", ["g-1a-i"]), ("g-1b", [])])]
        assert tree["roots"][1]["children"][0]["latest_update"]["status"] == "on_track"

        week = json.loads((await client.read_resource("coco://teams/t-1/last-week")).contents[0].text)
        assert week["team"]["id"] == "t-1"
        assert [c["date"] for c in week["checkins"]] == [TODAY]
        assert [b["blocker"] for b in week["blockers"]] == ["Waiting for legal"]
        assert [m["id"] for m in week["members_without_checkin"]] == ["a-1"]
        stories = {g["id"]: [u["title"] for u in g["updates"]] for g in week["goal_stories"]}
        assert stories == {"g-1": [], "g-1a": ["Drafted"]}

        reference = (await client.read_resource("coco://reference/fields")).contents[0]
        assert reference.mime_type == "text/markdown"
        for needle in (
            "## Team check-in (`team_checkins`)",
            "`progress_percent` | integer 0 to 100",
            "`on_track`",
            "`blockers` | list of strings",
        ):
            assert needle in reference.text

        with pytest.raises(MCPError, match=r"no team with id 't-9'.*list_teams"):
            await client.read_resource("coco://teams/t-9/last-week")
        with pytest.raises(MCPError, match="no resource"):
            await client.read_resource("coco://nothing/here")
        # The session survives failed reads.
        assert (await client.list_resource_templates()).resource_templates


BAD_INPUTS: list[tuple[str, str, dict[str, Any], str, list[str]]] = [
    # (what, tool, arguments, the argument the error must name, words the message must contain)
    (
        "missing required field",
        "post_team_checkin",
        {"team_id": "t-1", "date": "2026-05-22"},
        "actor_id",
        ["actor_id", "required", "list_actors", "requires all of: actor_id, team_id, date"],
    ),
    (
        "unknown actor id",
        "post_team_checkin",
        {"actor_id": "p-404", "team_id": "t-1", "date": "2026-05-22"},
        "actor_id",
        ["p-404", "does not exist", "list_actors"],
    ),
    (
        "unknown team",
        "post_team_checkin",
        {"actor_id": "p-1", "team_id": "t-404", "date": "2026-05-22"},
        "team_id",
        ["t-404", "list_teams"],
    ),
    (
        "bad date",
        "post_team_checkin",
        {"actor_id": "p-1", "team_id": "t-1", "date": "22/05/2026"},
        "date",
        ["date", "YYYY-MM-DD", "22/05/2026"],
    ),
    (
        "bullets not a list",
        "post_team_checkin",
        {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22", "blockers": "none"},
        "blockers",
        ["blockers", "list", "JSON array"],
    ),
    (
        "unknown argument",
        "post_team_checkin",
        {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22", "mood": "great"},
        "mood",
        ["mood", "post_team_checkin takes only", "blockers"],
    ),
    (
        "status not allowed",
        "post_goal_story_update",
        {
            "actor_id": "p-1",
            "goal_story_id": "g-1",
            "date": "2026-05-22",
            "title": "t",
            "content": "c",
            "status": "green",
        },
        "status",
        ["green", *GOAL_STORY_STATUSES],
    ),
    (
        "progress 150",
        "post_goal_story_update",
        {
            "actor_id": "p-1",
            "goal_story_id": "g-1",
            "date": "2026-05-22",
            "title": "t",
            "content": "c",
            "progress_percent": 150,
        },
        "progress_percent",
        ["150", "0 to 100"],
    ),
    (
        "unknown goal story",
        "post_goal_story_update",
        {"actor_id": "p-1", "goal_story_id": "g-404", "date": "2026-05-22", "title": "t", "content": "c"},
        "goal_story_id",
        ["g-404", "list_goal_stories"],
    ),
    ("unknown team to read", "get_team_checkins", {"team_id": "t-404"}, "team_id", ["t-404", "list_teams"]),
    (
        "bad date to read",
        "get_team_checkins",
        {"team_id": "t-1", "since": "last week"},
        "since",
        ["since", "YYYY-MM-DD"],
    ),
    (
        "unknown goal story to read",
        "get_goal_story",
        {"goal_story_id": "g-404"},
        "goal_story_id",
        ["g-404", "list_goal_stories"],
    ),
    ("bad cursor", "get_coordination_events", {"after": "latest"}, "after", ["after", "whole number"]),
    ("superscript cursor", "get_coordination_events", {"after": "²"}, "after", ["after", "whole number"]),
    ("cursor past bigint", "get_coordination_events", {"after": 10**20}, "after", ["after", str(10**20)]),
    ("limit out of range", "list_actors", {"limit": 5000}, "limit", ["limit", "1 to 500"]),
    (
        "event type not allowed",
        "get_coordination_events",
        {"event_type": "comment"},
        "event_type",
        ["team_checkin", "goal_story_update"],
    ),
]


async def test_bad_input_is_a_tool_error_that_names_the_field_and_the_fix_and_writes_nothing(
    transport: str, server_url: str, database_url: str, writer: WriteService
) -> None:
    await seed(writer)
    before = await table_counts(writer.engine)
    async with connect(transport, server_url, database_url) as client:
        for what, tool, arguments, argument, words in BAD_INPUTS:
            message, error = tool_error(await client.call_tool(tool, arguments))
            assert error["argument"] == argument, (what, error)
            for word in words:
                assert word in message, (what, word, message)
            assert error["fix"], (what, error)
        message, error = tool_error(
            await client.call_tool(
                "post_goal_story_update",
                {
                    "actor_id": "p-1",
                    "goal_story_id": "g-1",
                    "date": "2026-05-22",
                    "title": "t",
                    "content": "c",
                    "status": "green",
                },
            )
        )
        assert error["allowed"] == list(GOAL_STORY_STATUSES)
        message, error = tool_error(await client.call_tool("delete_everything", {}))
        assert "post_team_checkin" in message
        # After all that the session still works, and nothing was written.
        assert structured(await client.call_tool("list_actors", {}))["total"] == 3
    assert await table_counts(writer.engine) == before


async def test_a_duplicate_id_is_a_conflict_that_keeps_the_first_row(
    transport: str, server_url: str, database_url: str, writer: WriteService
) -> None:
    await seed(writer)
    checkin = {"id": "c-1", "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22", "next": ["first"]}
    async with connect(transport, server_url, database_url) as client:
        structured(await client.call_tool("post_team_checkin", checkin))
        message, error = tool_error(await client.call_tool("post_team_checkin", {**checkin, "next": ["second"]}))
    assert error["argument"] == "id" and "c-1" in message and "Leave id out" in message
    assert (await _row(writer.engine, "team_checkins", "c-1"))["next"] == ["first"]
    assert len(await _events_of(writer.engine, "c-1")) == 1
