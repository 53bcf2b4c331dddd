"""Page objects, value spellings, constants, composites, choices and bundles, rendered by PostgreSQL."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.plan import (
    Bundle,
    Choice,
    Column,
    Composite,
    Condition,
    Constant,
    Embed,
    Lookup,
    OrderTerm,
    Paged,
    PageField,
    Position,
    ReadPlan,
    Spelling,
    Window,
)
from api.store.reads import Reader
from api.store.writes import WriteService

IDS = (Column("id", "id"),)


def _position(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


async def _actors(writer: WriteService, n: int = 5) -> None:
    await writer.create("actor", [{"id": f"a-{i}", "actor_type": "person", "name": f"N{i}"} for i in range(n)])


def _page(window: Window, order: tuple[OrderTerm, ...] = (OrderTerm("id"),), where: Any = None) -> Paged:
    view = ReadPlan("actor", columns=IDS)
    fields = (
        PageField("rows", "rows", view=view),
        PageField("total", "total"),
        PageField(
            "info",
            "object",
            fields=(
                PageField("next", "has_next"),
                PageField("previous", "has_previous"),
                PageField("first", "first_position"),
                PageField("last", "last_position"),
                PageField("kind", "constant", constant="Info"),
            ),
        ),
        PageField("entries", "entries", fields=(PageField("at", "position"), PageField("row", "row", view=view))),
    )
    return Paged(
        "page",
        None,
        ReadPlan("actor", where=where, order=order, limit=window.size + 1),
        window,
        fields,
        Position(("id:a",), (("id", ()),)),
        total_where=None,
    )


async def _read(reader: Reader, *items: Any) -> dict[str, Any]:
    return json.loads(await reader.json_object(Bundle(tuple(items))))


async def test_a_page_object_cuts_its_window_and_says_what_surrounds_it(
    clean: AsyncEngine, writer: WriteService, reader: Reader
) -> None:
    await _actors(writer)
    forward = (await _read(reader, _page(Window(2))))["page"]
    assert [r["id"] for r in forward["rows"]] == ["a-0", "a-1"] and forward["total"] == 5
    assert forward["info"] == {
        "next": True,
        "previous": False,
        "first": forward["entries"][0]["at"],
        "last": forward["entries"][1]["at"],
        "kind": "Info",
    }
    assert _position(forward["info"]["last"]) == [["id:a"], ["a-1"]]
    assert [e["row"] for e in forward["entries"]] == [{"id": "a-0"}, {"id": "a-1"}]

    backward = await _read(reader, _page(Window(2, backward=True), order=(OrderTerm("id", descending=True),)))
    assert [r["id"] for r in backward["page"]["rows"]] == ["a-3", "a-4"]
    assert backward["page"]["info"]["previous"] is True and backward["page"]["info"]["next"] is False
    assert _position(backward["page"]["info"]["first"]) == [["id:a"], ["a-3"]]

    trimmed = (await _read(reader, _page(Window(4, trim=2, after_given=False))))["page"]
    assert [r["id"] for r in trimmed["rows"]] == ["a-2", "a-3"] and trimmed["info"]["previous"] is True
    assert _position(trimmed["info"]["first"]) == [["id:a"], ["a-2"]]

    after = (await _read(reader, _page(Window(10, after_given=True), where=Condition("id", "gt", "a-2"))))["page"]
    assert [r["id"] for r in after["rows"]] == ["a-3", "a-4"] and after["info"]["previous"] is True
    assert after["info"]["next"] is False and after["total"] == 5  # total_where None: every row

    empty = (await _read(reader, _page(Window(0))))["page"]
    assert empty["rows"] == [] and empty["entries"] == [] and empty["info"]["first"] is None
    assert empty["info"]["next"] is True and empty["total"] == 5


async def test_nested_pages_count_and_cut_per_parent(clean: AsyncEngine, writer: WriteService, reader: Reader) -> None:
    await _actors(writer, 3)
    await writer.create("team", [{"id": "t-0", "name": "zero"}, {"id": "t-1", "name": "one"}])
    await writer.create(
        "team_checkin",
        [
            {"id": f"c-{i}", "actor_id": f"a-{i % 3}", "team_id": f"t-{i % 2}", "date": f"2026-05-0{i + 1}"}
            for i in range(5)
        ],
    )
    checkins = Paged(
        "checkins",
        "team_checkins",
        ReadPlan("team_checkin", order=(OrderTerm("date", True),), limit=2),
        Window(1),
        (
            PageField("n", "total"),
            PageField("rows", "rows", view=ReadPlan("team_checkin", columns=(Column("date", "date"),))),
            PageField("more", "object", fields=(PageField("next", "has_next"),)),
        ),
        total_where=Condition("actor_id", "neq", "a-0"),
    )
    plan = ReadPlan("team", order=(OrderTerm("id"),), columns=IDS, pages=(checkins,), layout=("checkins", "id"))
    text = await reader.json_array(plan)
    assert json.loads(text) == [
        {"checkins": {"n": 2, "rows": [{"date": "2026-05-05"}], "more": {"next": True}}, "id": "t-0"},
        {"checkins": {"n": 1, "rows": [{"date": "2026-05-04"}], "more": {"next": True}}, "id": "t-1"},
    ]
    assert text.index('"checkins"') < text.index('"id"')  # the layout's order


async def test_spellings_constants_composites_choices_and_single_rows(
    clean: AsyncEngine, writer: WriteService, reader: Reader
) -> None:
    await _actors(writer, 2)
    await writer.create(
        "goal_story",
        [
            {"id": "g-0", "title": "T", "timeframe": {"start": "2026-01-01"}, "created_at": "2026-01-01T09:00:00.5Z"},
            {"id": "g-1", "title": "U", "created_at": "2026-01-01T09:00:00Z"},
        ],
    )
    await writer.create(
        "goal_story_update",
        [
            {
                "id": f"u-{i}",
                "actor_id": "a-0",
                "goal_story_id": "g-0",
                "date": f"2026-05-0{i + 1}",
                "title": "t",
                "content": "c",
                "status": "at_risk",
            }
            for i in range(2)
        ],
    )
    story = ReadPlan(
        "goal_story",
        order=(OrderTerm("id"),),
        columns=(Column("id", "id"), Column("at", "created_at", spelling=Spelling.ISO_TIMESTAMP)),
        constants=(Constant("kind", "Story"), Constant("n", 1), Constant("none", None)),
        composites=(
            Composite("span", "timeframe", (Column("from", "timeframe", path=("start",)), Constant("kind", "Span"))),
        ),
        embeds=(
            Embed(
                "latest",
                "goal_story_updates",
                ReadPlan(
                    "goal_story_update",
                    order=(OrderTerm("date", True),),
                    limit=1,
                    columns=(Column("id", "id"), Column("status", "status", spelling=Spelling.UPPER)),
                ),
                single=True,
            ),
        ),
    )
    assert json.loads(await reader.json_array(story)) == [
        {
            "id": "g-0",
            "at": "2026-01-01T09:00:00.500000+00:00",
            "kind": "Story",
            "n": 1,
            "none": None,
            "span": {"from": "2026-01-01", "kind": "Span"},
            "latest": {"id": "u-1", "status": "AT_RISK"},
        },
        {
            "id": "g-1",
            "at": "2026-01-01T09:00:00+00:00",
            "kind": "Story",
            "n": 1,
            "none": None,
            "span": None,
            "latest": None,
        },
    ]

    events = ReadPlan(
        "coordination_event",
        order=(OrderTerm("cursor"),),
        columns=(Column("cursor", "cursor", spelling=Spelling.TEXT),),
        choices=(
            Choice(
                "ref",
                Condition("event_type", "eq", "team_checkin"),
                Embed("ref", "team_checkin", ReadPlan("team_checkin", columns=IDS)),
                Embed("ref", "goal_story_update", ReadPlan("goal_story_update", columns=(Column("title", "title"),))),
            ),
        ),
    )
    rows = json.loads(await reader.json_array(events))
    assert [r["ref"] for r in rows] == [{"title": "t"}, {"title": "t"}]
    assert all(isinstance(r["cursor"], str) and int(r["cursor"]) > 0 for r in rows)


async def test_a_bundle_answers_several_reads_at_once(clean: AsyncEngine, writer: WriteService, reader: Reader) -> None:
    await _actors(writer, 2)
    found = await _read(
        reader,
        Constant("kind", "Query"),
        Lookup("one", ReadPlan("actor", where=Condition("id", "eq", "a-1"), columns=IDS)),
        Lookup("none", ReadPlan("actor", where=Condition("id", "eq", "zz"), columns=IDS)),
        _page(Window(1)),
    )
    assert list(found) == ["kind", "one", "none", "page"]
    assert found["one"] == {"id": "a-1"} and found["none"] is None and found["page"]["total"] == 2


async def test_a_page_of_rows_alone_holds_its_size_in_rows(
    clean: AsyncEngine, writer: WriteService, reader: Reader
) -> None:
    await _actors(writer, 4)
    view = ReadPlan("actor", columns=IDS)
    only_rows = Paged(
        "page",
        None,
        ReadPlan("actor", order=(OrderTerm("id", descending=True),), limit=3),
        Window(2),
        (PageField("kind", "constant", constant="Page"), PageField("rows", "rows", view=view)),
    )
    assert (await _read(reader, only_rows))["page"] == {"kind": "Page", "rows": [{"id": "a-3"}, {"id": "a-2"}]}
    empty = Paged(
        "page",
        None,
        ReadPlan("actor", order=(OrderTerm("id"),), limit=1),
        Window(0),
        (PageField("rows", "rows", view=view),),
    )
    assert (await _read(reader, empty))["page"] == {"rows": []}
