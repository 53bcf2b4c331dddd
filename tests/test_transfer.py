"""`coco export` and `coco import`: JSON Lines out and back in, atomically, events restored as they were."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import Conflict, InvalidInput
from api.ops.demo import seed
from api.ops.embedded import EmbeddedPostgres
from api.ops.transfer import ImportFileError, import_lines
from api.store.database import create_engine
from api.store.writes import WriteService
from tests.conftest import table_counts

COCO = Path(sys.executable).parent / "coco"


def coco(*args: str, database_url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COCO), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env={**os.environ, "DATABASE_URL": database_url},
    )


def fresh_database(postgres: EmbeddedPostgres) -> str:
    return postgres.create_database(f"coco_import_{uuid.uuid4().hex[:8]}")


async def cursors(engine: AsyncEngine) -> list[tuple[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, seq FROM coordination_events ORDER BY seq"))
        return [(r.id, r.seq) for r in rows]


async def add_history(writer: WriteService) -> None:
    """Rows that exercise the corners of an export, beside the demo data."""
    await writer.create(
        "actor",
        [
            {"id": "x-1", "actor_type": "person", "name": "Zoë Ångström ✓", "timezone": "Europe/Stockholm"},
            {"id": "x-2", "actor_type": "agent", "name": "Bot"},
        ],
    )
    await writer.create(
        "team",
        [
            {"id": "x-t", "name": "Empty", "member_ids": []},
            {"id": "x-t2", "name": "Pair", "member_ids": ["x-2", "x-1"]},
        ],
    )
    # A child whose id sorts before its parent's: the export must still list the parent first.
    await writer.create("goal_story", [{"id": "x-z-root", "title": "Root", "timeframe": {"start": "2026-01-01"}}])
    await writer.create(
        "goal_story",
        [
            {
                "id": "x-a-child",
                "title": "Child",
                "parent_id": "x-z-root",
                "created_at": "2026-01-02T09:15:00.123456-06:00",
            }
        ],
    )
    await writer.create(
        "team_checkin",
        [
            {
                "id": "x-c1",
                "actor_id": "x-1",
                "team_id": "x-t2",
                "date": "2026-05-20",
                "previously": ['a "quoted" bullet', "line\nbreak"],
            }
        ],
    )
    await writer.create("team_checkin", [{"id": "x-c2", "actor_id": "x-2", "team_id": "x-t2", "date": "2026-05-21"}])
    await writer.update_one("team_checkin", "x-c1", {"blockers": ["edited later"]})  # a second event
    await writer.delete_one("team_checkin", "x-c2")  # its event stays, pointing at nothing
    await writer.create(
        "goal_story_update",
        [
            {
                "id": "x-u",
                "actor_id": "x-1",
                "goal_story_id": "x-a-child",
                "date": "2026-05-22",
                "title": "T",
                "content": "C",
                "progress_percent": 0,
            }
        ],
    )


async def test_export_then_import_into_an_empty_database_gives_the_same_lines(
    writer: WriteService, engine: AsyncEngine, database_url: str, postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    await seed(writer, today=dt.date(2026, 5, 22))
    await add_history(writer)
    exported = coco("export", str(tmp_path / "data.jsonl"), database_url=database_url)
    assert exported.returncode == 0, exported.stderr
    assert "exported 16 actor document(s)" in exported.stderr
    lines = (tmp_path / "data.jsonl").read_text(encoding="utf-8").splitlines()
    counts = await table_counts(engine)
    assert len(lines) == sum(counts.values())

    entities = [json.loads(line)["entity"] for line in lines]
    order = ["actor", "team", "goal_story", "team_checkin", "goal_story_update", "coordination_event"]
    assert entities == sorted(entities, key=order.index)
    goal_ids = [json.loads(line)["document"]["id"] for line in lines if '"goal_story"' in line[:30]]
    assert goal_ids.index("x-z-root") < goal_ids.index("x-a-child")
    assert goal_ids.index("demo-g-launch") < goal_ids.index("demo-g-api")

    second_url = fresh_database(postgres)
    assert coco("migrate", database_url=second_url).returncode == 0
    imported = coco("import", str(tmp_path / "data.jsonl"), database_url=second_url)
    assert imported.returncode == 0, imported.stderr
    assert "imported 16 actor document(s) so far" in imported.stderr
    again = coco("export", database_url=second_url)  # to standard output
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == lines

    second = create_engine(second_url, pool_size=1)
    try:
        assert await table_counts(second) == counts  # no event was added on the way
        # Events keep their ids and their commit order (cursor order).
        assert [i for i, _ in await cursors(second)] == [i for i, _ in await cursors(engine)]
    finally:
        await second.dispose()


async def test_import_from_standard_input(writer: WriteService, database_url: str, postgres: EmbeddedPostgres) -> None:
    await add_history(writer)
    exported = coco("export", database_url=database_url)
    second_url = fresh_database(postgres)
    imported = coco("import", "-", database_url=second_url, stdin=exported.stdout)
    assert imported.returncode == 0, imported.stderr
    assert coco("export", database_url=second_url).stdout == exported.stdout


GOOD_LINES = [
    '{"entity": "actor", "document": {"id": "x-1", "actor_type": "person", "name": "One"}}',
    '{"entity": "team", "document": {"id": "x-t", "name": "T", "member_ids": ["x-1"]}}',
    '{"entity": "goal_story", "document": {"id": "x-z-root", "title": "Root"}}',
]
SCHEMA_VIOLATION = (
    '{"entity": "goal_story_update", "document": {"id": "u-9", "actor_id": "x-1", "goal_story_id": "x-z-root", '
    '"date": "2026-05-22", "title": "T", "content": "C", "progress_percent": 150}}',
    "line 4: goal_story_update field progress_percent does not match the CoCo schema",
)
DANGLING_REFERENCE = (
    '{"entity": "team_checkin", "document": {"id": "c-9", "actor_id": "nobody", "team_id": "x-t", '
    '"date": "2026-05-22"}}',
    "actor_id refers to actors that do not exist: nobody",
)
BAD_LINES = [
    SCHEMA_VIOLATION,
    DANGLING_REFERENCE,
    (
        '{"entity": "coordination_event", "document": {"id": "e-9", "actor_id": "x-1", "event_type": "team_checkin", '
        '"reference_id": "c", "occurred_at": "2026-05-22T10:00:00Z", "cursor": 7}}',
        "line 4: coordination_event",
    ),
    (
        '{"entity": "team_checkin", "document": {"id": "c-9", "actor_id": "x-1", "team_id": "x-t", '
        '"date": "2026-02-30"}}',
        "line 4: team_checkin field date does not match",
    ),
    ('{"entity": "meeting", "document": {"id": "m"}}', "line 4: unknown entity 'meeting'"),
    ('{"entity": "actor", "document": {"id": "x-1", "actor_type": "person", "name": "Again"}}', "already has id x-1"),
    (
        '{"entity": "actor", "document": '
        '{"id": "x-2", "actor_type": "person", "name": "Two", "timezone": "Mars/Base"}}',
        "line 4: timezone must be an IANA timezone name",
    ),
    ('{"entity": "actor"}', "line 4: expected an object"),
    ("not json", "line 4: not valid JSON"),
]


@pytest.mark.parametrize("bad_line, message", BAD_LINES)
async def test_a_bad_line_imports_nothing(
    writer: WriteService, engine: AsyncEngine, bad_line: str, message: str
) -> None:
    await writer.create("actor", [{"id": "keep", "actor_type": "person", "name": "Already here"}])
    before = await table_counts(engine)
    with pytest.raises((ImportFileError, Conflict)) as error:
        await import_lines(writer, [*GOOD_LINES, bad_line, GOOD_LINES[0]])
    assert message in str(error.value)
    assert await table_counts(engine) == before


@pytest.mark.parametrize("bad_line, message", [SCHEMA_VIOLATION, DANGLING_REFERENCE])
async def test_coco_import_of_a_bad_file_says_why_and_imports_nothing(
    clean: AsyncEngine, database_url: str, tmp_path: Path, bad_line: str, message: str
) -> None:
    await WriteService(clean).create("actor", [{"id": "keep", "actor_type": "person", "name": "Already here"}])
    before = await table_counts(clean)
    (tmp_path / "bad.jsonl").write_text("\n".join([*GOOD_LINES, bad_line, *GOOD_LINES[:1]]) + "\n")
    run = coco("import", str(tmp_path / "bad.jsonl"), database_url=database_url)
    assert run.returncode == 1
    assert message in run.stderr, run.stderr
    assert "nothing was imported" in run.stderr
    assert "Traceback" not in run.stderr
    assert await table_counts(clean) == before


async def test_unreadable_and_unwritable_files_are_clear_errors(database_url: str, tmp_path: Path) -> None:
    run = coco("import", str(tmp_path / "absent.jsonl"), database_url=database_url)
    assert run.returncode == 1
    assert "cannot read" in run.stderr and "Traceback" not in run.stderr
    run = coco("export", str(tmp_path / "no-such-dir" / "out.jsonl"), database_url=database_url)
    assert run.returncode == 1
    assert "cannot write" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "no-such-dir").exists()


# -------------------------------------------------------------- the write service's import path


async def test_import_documents_restores_events_as_they_were(writer: WriteService, engine: AsyncEngine) -> None:
    occurred = ["2026-05-20T08:00:00+00:00", "2026-05-20T07:00:00+00:00", "2026-05-21T07:00:00+00:00"]
    items = [
        ("actor", {"id": "a", "actor_type": "person", "name": "A"}),
        ("team", {"id": "t", "name": "T", "member_ids": ["a"]}),
        ("team_checkin", {"id": "c", "actor_id": "a", "team_id": "t", "date": "2026-05-20", "created_at": occurred[0]}),
        # Given in this order, whatever their timestamps say: the order is the commit order.
        (
            "coordination_event",
            {
                "id": "e-2",
                "actor_id": "a",
                "event_type": "team_checkin",
                "reference_id": "c",
                "occurred_at": occurred[0],
            },
        ),
        (
            "coordination_event",
            {
                "id": "e-1",
                "actor_id": "a",
                "event_type": "team_checkin",
                "reference_id": "deleted-long-ago",
                "occurred_at": occurred[1],
            },
        ),
        (
            "coordination_event",
            {
                "id": "e-3",
                "actor_id": "a",
                "event_type": "team_checkin",
                "reference_id": "c",
                "occurred_at": occurred[2],
            },
        ),
    ]
    seen: list[tuple[str, int]] = []
    result = await writer.import_documents(items, progress=lambda name, n: seen.append((name, n)), batch_size=2)
    assert result.counts == {"actor": 1, "team": 1, "team_checkin": 1, "coordination_event": 3}
    assert result.events_recorded == 0
    assert seen == [
        ("actor", 1),
        ("team", 1),
        ("team_checkin", 1),
        ("coordination_event", 2),
        ("coordination_event", 3),
    ]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, actor_id, event_type, reference_id, occurred_at, seq "
                    "FROM coordination_events ORDER BY seq"
                )
            )
        ).all()
    assert [r.id for r in rows] == ["e-2", "e-1", "e-3"]
    assert [r.reference_id for r in rows] == ["c", "deleted-long-ago", "c"]
    assert [r.occurred_at for r in rows] == [dt.datetime.fromisoformat(o) for o in occurred]
    assert rows[0].seq < rows[1].seq < rows[2].seq


async def test_import_documents_gives_an_event_to_rows_that_come_without_one(
    writer: WriteService, engine: AsyncEngine
) -> None:
    items = [
        ("actor", {"id": "a", "actor_type": "person", "name": "A"}),
        ("team", {"id": "t", "name": "T"}),
        ("goal_story", {"id": "g", "title": "G"}),
        (
            "team_checkin",
            {"id": "c", "actor_id": "a", "team_id": "t", "date": "2026-05-20", "created_at": "2026-05-20T08:00:00Z"},
        ),
        (
            "goal_story_update",
            {"id": "u", "actor_id": "a", "goal_story_id": "g", "date": "2026-05-20", "title": "T", "content": "C"},
        ),
    ]
    result = await writer.import_documents(items)
    assert result.events_recorded == 2
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT reference_id, event_type, occurred_at FROM coordination_events ORDER BY reference_id")
            )
        ).all()
        created = (await conn.execute(text("SELECT created_at FROM goal_story_updates"))).scalar_one()
    assert [(r.reference_id, r.event_type) for r in rows] == [("c", "team_checkin"), ("u", "goal_story_update")]
    assert rows[0].occurred_at == dt.datetime(2026, 5, 20, 8, tzinfo=dt.UTC)
    assert rows[1].occurred_at == created


async def test_import_documents_takes_children_before_parents_within_a_batch(
    writer: WriteService, engine: AsyncEngine
) -> None:
    items = [
        ("goal_story", {"id": "g3", "title": "3", "parent_id": "g2"}),
        ("goal_story", {"id": "g2", "title": "2", "parent_id": "g1"}),
        ("goal_story", {"id": "g1", "title": "1"}),
    ]
    assert (await writer.import_documents(items)).counts == {"goal_story": 3}
    assert (await table_counts(engine))["goal_stories"] == 3


async def test_import_documents_is_all_or_nothing(writer: WriteService, engine: AsyncEngine) -> None:
    await writer.create("actor", [{"id": "keep", "actor_type": "person", "name": "K"}])
    before = await table_counts(engine)
    bad_batches = [
        # A goal story cycle inside one import.
        [
            ("goal_story", {"id": "g1", "title": "1", "parent_id": "g2"}),
            ("goal_story", {"id": "g2", "title": "2", "parent_id": "g1"}),
        ],
        # The same id twice in one import, in different batches.
        [
            ("actor", {"id": "a", "actor_type": "person", "name": "A"}),
            ("team", {"id": "t", "name": "T"}),
            ("actor", {"id": "a", "actor_type": "person", "name": "A"}),
        ],
        # An event for an actor that does not exist, after valid rows.
        [
            ("actor", {"id": "a", "actor_type": "person", "name": "A"}),
            (
                "coordination_event",
                {
                    "id": "e",
                    "actor_id": "ghost",
                    "event_type": "team_checkin",
                    "reference_id": "c",
                    "occurred_at": "2026-05-20T08:00:00Z",
                },
            ),
        ],
        # An event whose id is taken.
        [
            ("actor", {"id": "a", "actor_type": "person", "name": "A"}),
            (
                "coordination_event",
                {
                    "id": "e",
                    "actor_id": "a",
                    "event_type": "team_checkin",
                    "reference_id": "c",
                    "occurred_at": "2026-05-20T08:00:00Z",
                },
            ),
            (
                "coordination_event",
                {
                    "id": "e",
                    "actor_id": "a",
                    "event_type": "team_checkin",
                    "reference_id": "c",
                    "occurred_at": "2026-05-20T08:00:00Z",
                },
            ),
        ],
    ]
    for items in bad_batches:
        with pytest.raises(Conflict) as conflict:
            await writer.import_documents(items, batch_size=1 if items[0][0] == "actor" else 10)
        assert conflict.value.entity  # named by the write service, not a bare database error
        assert await table_counts(engine) == before
    with pytest.raises(InvalidInput) as error:
        await writer.import_documents(
            [
                ("actor", {"id": "a", "actor_type": "person", "name": "A"}),
                ("actor", {"id": "b", "actor_type": "robot", "name": "B"}),
            ]
        )
    assert error.value.index == 1 and error.value.field == "actor_type"
    with pytest.raises(InvalidInput) as error:
        await writer.import_documents(
            [
                (
                    "coordination_event",
                    {
                        "actor_id": "keep",
                        "event_type": "team_checkin",
                        "reference_id": "c",
                        "occurred_at": "2026-05-20T08:00:00Z",
                    },
                )
            ]
        )
    assert error.value.field == "id"
    assert await table_counts(engine) == before


async def test_a_write_during_an_import_draws_its_cursor_after_the_imported_events(
    writer: WriteService, engine: AsyncEngine
) -> None:
    """Imported events hold the event lock until the import commits, so a concurrent write's
    event cannot slip in between them: cursors stay in commit order."""
    import asyncio

    await writer.create("actor", [{"id": "a", "actor_type": "person", "name": "A"}])
    await writer.create("team", [{"id": "t", "name": "T"}])
    halfway, resume = asyncio.Event(), asyncio.Event()

    def event(n: int) -> tuple[str, dict]:
        return (
            "coordination_event",
            {
                "id": f"e-{n}",
                "actor_id": "a",
                "event_type": "team_checkin",
                "reference_id": f"old-{n}",
                "occurred_at": "2026-05-20T08:00:00Z",
            },
        )

    async def items():  # type: ignore[no-untyped-def]
        yield event(1)
        yield event(2)  # receiving this flushes e-1: the event lock is now held
        halfway.set()
        await resume.wait()
        yield event(3)

    importing = asyncio.create_task(writer.import_documents(items(), batch_size=1))
    await halfway.wait()
    concurrent = asyncio.create_task(
        writer.create("team_checkin", [{"id": "live", "actor_id": "a", "team_id": "t", "date": "2026-05-22"}])
    )

    async def queued_for_the_event_lock() -> None:
        async with engine.connect() as conn:
            while not (
                await conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))
            ).scalar_one():
                await conn.rollback()
                await asyncio.sleep(0.02)

    # A guard against hanging the suite, not a speed requirement.
    await asyncio.wait_for(queued_for_the_event_lock(), timeout=60)
    resume.set()
    await importing
    await concurrent
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, reference_id FROM coordination_events ORDER BY seq"))).all()
    assert [r.id for r in rows[:3]] == ["e-1", "e-2", "e-3"]
    assert [r.reference_id for r in rows[3:]] == ["live"]
