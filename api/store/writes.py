"""The coordination write service: the only code that writes.

Every create, update and delete of every entity, from every front end, runs
here in one transaction: validate, check references, lock what the rules
depend on, write, record the coordination events, commit. A failure anywhere
rolls back everything, events included.

Locking, so that the rules hold under concurrency (READ COMMITTED):
- a write that refers to rows takes FOR KEY SHARE on them, and a delete takes
  FOR UPDATE on its rows before it looks for referrers, so a delete and a new
  reference to the same row serialise and the loser sees the winner's result;
- updates take FOR UPDATE on their rows (in id order, against deadlocks), so
  twenty concurrent edits of one row are twenty edits, each with its event;
- writes that set a goal story's parent take one advisory lock, so two
  concurrent re-parentings cannot together build a cycle;
- an upsert (OnConflict.MERGE) is one INSERT ... ON CONFLICT DO UPDATE per set
  of given fields, so concurrent upserts of one new id never conflict: the
  first inserts, the others wait for it and then update (or leave) its row.

Round trips: a create of any number of rows is one statement (references
checked and locked, rows inserted from one JSON parameter, events recorded,
NOTIFY); when the caller reads nothing back inside the transaction, it runs
as a transaction of its own, with no BEGIN or COMMIT to wait for. Updates and
deletes take a few statements whatever the number of rows.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, Table, Text, TextClause, any_, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.edge.auth import require_write
from api.entities import Entity, Kind, referrers
from api.entities import entity as entity_named
from api.errors import Conflict, ConflictReason, InvalidInput, InvalidReason, NotFound, ReadOnly, listed
from api.plan import Condition, Filter
from api.store.database import connection, is_transient, sqlstate, transaction
from api.store.events import PendingEvent, record_events, recording_ctes, restore_events
from api.store.pool import DirectPool, compiled_statement
from api.store.select import filter_clause
from api.store.tables import TABLES
from api.store.validation import to_columns

HIERARCHY_LOCK_KEY = 0x0C0C_6047
# A transaction PostgreSQL aborts to break a deadlock is run again, this many times at most.
ATTEMPTS = 4
# PostgreSQL takes at most 65535 bound parameters in one statement.
MAX_PARAMETERS = 30_000
UNIQUE_VIOLATION = "23505"
# How many referrer ids a conflict names per resource.
REFERRERS_SHOWN = 20

Returning = Callable[[AsyncConnection, list[str]], Awaitable[Any]]
# One document of an import: (entity name, CoCo document).
ImportItem = tuple[str, Mapping[str, Any]]
IMPORT_BATCH = 1000


class OnConflict(str, Enum):
    ERROR = "error"  # an existing id is a conflict
    MERGE = "merge"  # an existing row gets the given fields (upsert)
    IGNORE = "ignore"  # an existing row is left alone


@dataclass
class WriteResult:
    # Full rows as stored after the write ({column: value}), in input order.
    rows: list[dict[str, Any]] = field(default_factory=list)
    # Coordination events this write recorded, in cursor order.
    events: list[dict[str, Any]] = field(default_factory=list)
    # Ids of the rows that were inserted (rather than found and merged or ignored).
    inserted_ids: list[str] = field(default_factory=list)
    # Whatever the caller's `returning` read produced inside the transaction.
    returned: Any = None

    def event_for(self, row_id: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e["reference_id"] == row_id), None)


@dataclass
class ImportResult:
    # Rows imported per entity name, coordination events included.
    counts: dict[str, int] = field(default_factory=dict)
    # Events recorded for imported check-ins and updates that arrived without any.
    events_recorded: int = 0


class WriteService:
    def __init__(self, engine: AsyncEngine, *, pool: DirectPool | None = None) -> None:
        self.engine = engine
        # Where a create that is one statement runs, when given (api/store/pool.py); else the engine.
        self.pool = pool

    # ------------------------------------------------------------ create

    async def create(
        self,
        entity_name: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        on_conflict: OnConflict = OnConflict.ERROR,
        returning: Returning | None = None,
    ) -> WriteResult:
        """Insert the documents atomically: all of them or, on any error, none."""
        require_write()
        ent = _writable(entity_name)
        rows = [to_columns(ent, doc, partial=False, index=i) for i, doc in enumerate(documents)]
        for row in rows:
            if "id" not in row:
                row["id"] = str(uuid.uuid4())
        ids = [r["id"] for r in rows]
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if repeated:
            raise Conflict(
                f"the same {ent.name} id appears more than once in one request: {listed(repeated)}",
                reason=ConflictReason.DUPLICATE,
                entity=ent.name,
                ids=repeated,
            )
        if ent.name == "goal_story":
            _refuse_own_parent(rows)

        wanted = _wanted_references(ent, rows, batch_ids=set(ids))
        # The rows travel as one JSON parameter whatever their number: one statement, compiled
        # and prepared once per shape, where a VALUES list was compiled again for every request.
        given = json.dumps(rows, default=_json_value)
        if returning is None and on_conflict is not OnConflict.MERGE and ent.name != "goal_story":
            done = await self._create_alone(ent, wanted, rows, given, on_conflict)
            if done is not None:
                return WriteResult(
                    rows=[done[0][i] for i in ids if i in done[0]],
                    events=done[1],
                    inserted_ids=[i for i in ids if i in done[0]],
                )

        async def work(conn: AsyncConnection) -> WriteResult:
            result = WriteResult()
            if on_conflict is OnConflict.MERGE:
                stored, inserted, changed = await _upsert(conn, ent, wanted, rows)
                result.inserted_ids = [r["id"] for r in rows if r["id"] in inserted]
                # A new row's event occurs at its creation; a changed row's at the write.
                pending = [_event(ent, stored[i], stored[i].get("created_at")) for i in result.inserted_ids]
                pending += [_event(ent, stored[i], None) for i in changed]
                events = await record_events(conn, [p for p in pending if p is not None])
            else:
                # A taken id is skipped rather than failing the statement, so that ERROR can name it.
                stored, events = await _insert_checked(
                    conn, ent, wanted, rows, given, skip_existing=True, with_events=True
                )
                if len(stored) < len(rows) and on_conflict is OnConflict.ERROR:
                    taken = sorted(set(ids) - set(stored))
                    raise Conflict(
                        f"{ent.resource} already has {_plural('id', taken)} {listed(taken)}",
                        reason=ConflictReason.DUPLICATE,
                        entity=ent.name,
                        ids=taken,
                    )
                result.inserted_ids = [r["id"] for r in rows if r["id"] in stored]
            if ent.name == "goal_story":
                await _check_hierarchy(conn, [r["id"] for r in stored.values() if r.get("parent_id")])
            # With IGNORE, rows that already existed are not part of the result.
            result.rows = [stored[r["id"]] for r in rows if r["id"] in stored]
            result.events = events
            if returning is not None:
                result.returned = await returning(conn, [r["id"] for r in result.rows])
            return result

        return await self._run(work)

    async def _create_alone(
        self, ent: Entity, wanted: Wanted, rows: list[dict[str, Any]], given: str, on_conflict: OnConflict
    ) -> Inserted | None:
        """A create that needs nothing else in its transaction (no read-back, no merge, no
        hierarchy check) is its one statement run as a transaction of its own: no BEGIN and
        COMMIT round trips. A taken id (ERROR) fails the whole statement on the unique index,
        so nothing is committed; then, as when a reference is missing or PostgreSQL broke a
        deadlock, this returns None having written nothing, and `create` goes the general
        way, which names the ids."""
        skip_existing = on_conflict is OnConflict.IGNORE
        try:
            if self.pool is not None:
                return await _try_insert(
                    self.pool, ent, wanted, rows, given, skip_existing=skip_existing, with_events=True
                )
            async with connection(self.engine) as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await _try_insert(conn, ent, wanted, rows, given, skip_existing=skip_existing, with_events=True)
        except Exception as error:  # as the driver raised it, or as a domain error made from it
            if sqlstate(error) == UNIQUE_VIOLATION or is_transient(error):
                return None
            raise

    # ------------------------------------------------------------ update

    async def update(
        self, entity_name: str, where: Filter | None, changes: Mapping[str, Any], *, returning: Returning | None = None
    ) -> WriteResult:
        """Apply `changes` (fields left out stay; an explicit null clears) to every row matching `where`."""
        require_write()
        ent = _writable(entity_name)
        columns = to_columns(ent, changes, partial=True)
        table = TABLES[ent.name]

        async def work(conn: AsyncConnection) -> WriteResult:
            result = WriteResult()
            matched = await _lock_matching(conn, ent, table, where)
            if not matched:
                return result
            if "id" in columns and any(row["id"] != columns["id"] for row in matched):
                raise InvalidInput(
                    "id cannot be changed; create a new row instead",
                    field="id",
                    reason=InvalidReason.RULE,
                    entity=ent.name,
                )
            await _check_references(conn, ent, [columns], batch_ids=set())
            if ent.name == "goal_story" and columns.get("parent_id"):
                _refuse_own_parent([{**row, "parent_id": columns["parent_id"]} for row in matched])
            result.rows = await _apply_to_all(conn, table, matched, columns)
            pending = [_event(ent, new, None) for new, old in zip(result.rows, matched) if new is not old]
            if ent.name == "goal_story" and columns.get("parent_id"):
                await _check_hierarchy(conn, [r["id"] for r in result.rows])
            result.events = await record_events(conn, [p for p in pending if p is not None])
            if returning is not None:
                result.returned = await returning(conn, [r["id"] for r in result.rows])
            return result

        return await self._run(work)

    async def update_one(
        self, entity_name: str, id: str, changes: Mapping[str, Any], *, returning: Returning | None = None
    ) -> WriteResult:
        result = await self.update(entity_name, Condition("id", "eq", id), changes, returning=returning)
        if not result.rows:
            raise NotFound(entity_name, id)
        return result

    # ------------------------------------------------------------ delete

    async def delete(
        self, entity_name: str, where: Filter | None, *, returning: Returning | None = None
    ) -> WriteResult:
        """Delete every row matching `where`, unless something still refers to one of them."""
        require_write()
        ent = _writable(entity_name)
        table = TABLES[ent.name]

        async def work(conn: AsyncConnection) -> WriteResult:
            result = WriteResult(rows=await _lock_matching(conn, ent, table, where))
            ids = [r["id"] for r in result.rows]
            if not ids:
                return result
            await _check_unreferenced(conn, ent, ids)
            if returning is not None:
                result.returned = await returning(conn, ids)
            for chunk in _chunks(ids, MAX_PARAMETERS):
                await conn.execute(delete(table).where(table.c.id.in_(chunk)))
            return result

        return await self._run(work)

    async def delete_one(self, entity_name: str, id: str, *, returning: Returning | None = None) -> WriteResult:
        result = await self.delete(entity_name, Condition("id", "eq", id), returning=returning)
        if not result.rows:
            raise NotFound(entity_name, id)
        return result

    # ------------------------------------------------------------ import

    async def import_documents(
        self,
        items: Iterable[ImportItem] | AsyncIterable[ImportItem],
        *,
        progress: Callable[[str, int], None] | None = None,
        batch_size: int = IMPORT_BATCH,
    ) -> ImportResult:
        """Restore exported data (`coco import`), all of it in one transaction or, on any error, none.

        The narrow path that lets history back in, for the server's own CLI, never an API:
        rows keep their ids and created_at and are validated and reference-checked as
        `create` does, but a new check-in or update records no event, because the
        export carries its events: those are inserted as they were (same id, actor,
        type, reference, occurred_at), in the order given, drawing fresh cursors under
        the event lock (`api.store.events.restore_events`). A check-in or update that arrives
        without any event of its own gets one, as `create` would give it, so no
        committed row lacks its event. Existing ids are conflicts; nothing is merged.
        Documents must come in dependency order (referenced rows first); errors about
        one document carry its position in `items` as `index`. `progress(entity, n)`
        is called after each batch with the number imported so far of that entity.
        """
        require_write()
        result = ImportResult()
        # Check-ins and updates imported here: id -> (entity, actor_id, created_at).
        sources: dict[str, tuple[Entity, str, Any]] = {}
        batch: list[tuple[int, Mapping[str, Any]]] = []
        current: str | None = None
        async with transaction(self.engine) as conn:

            async def flush() -> None:
                if not batch or current is None:
                    return
                ent = _importable(current, batch[0][0])
                done = await _import_batch(conn, ent, batch, sources)
                result.counts[ent.name] = result.counts.get(ent.name, 0) + done
                batch.clear()
                if progress is not None:
                    progress(ent.name, result.counts[ent.name])

            position = 0
            async for entity_name, document in _each(items):
                if entity_name != current or len(batch) >= batch_size:
                    await flush()
                    current = entity_name
                batch.append((position, document))
                position += 1
            await flush()
            result.events_recorded = await _record_missing_events(conn, sources)
        return result

    # ------------------------------------------------------------ transactions

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[WriteResult]]) -> WriteResult:
        """Run `work` in one transaction, again from the start if PostgreSQL broke a deadlock by aborting it."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with transaction(self.engine) as conn:
                    return await work(conn)
            except DBAPIError as error:
                if attempt == ATTEMPTS or not is_transient(error):
                    raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------- steps


def _writable(entity_name: str) -> Entity:
    ent = entity_named(entity_name)
    if not ent.writable:
        raise ReadOnly(ent.name, ent.resource)
    return ent


def _importable(entity_name: str, index: int) -> Entity:
    try:
        return entity_named(entity_name)
    except KeyError:
        raise InvalidInput(
            f"unknown entity {entity_name!r}", field="entity", reason=InvalidReason.RULE, index=index
        ) from None


async def _each(items: Iterable[ImportItem] | AsyncIterable[ImportItem]) -> AsyncIterable[ImportItem]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _import_batch(
    conn: AsyncConnection,
    ent: Entity,
    batch: list[tuple[int, Mapping[str, Any]]],
    sources: dict[str, tuple[Entity, str, Any]],
) -> int:
    rows = []
    for index, document in batch:
        internal = [f.name for f in ent.fields if f.internal and isinstance(document, Mapping) and f.name in document]
        if internal:
            raise InvalidInput(
                f"{internal[0]} is assigned by the server and cannot be imported",
                field=internal[0],
                reason=InvalidReason.UNKNOWN_FIELD,
                entity=ent.name,
                index=index,
            )
        row = to_columns(ent, document, partial=False, index=index)
        if ent.name == "coordination_event" and "id" not in row:
            raise InvalidInput(
                "id is required", field="id", reason=InvalidReason.REQUIRED, entity=ent.name, index=index
            )
        row.setdefault("id", str(uuid.uuid4()))
        rows.append(row)
    ids = [r["id"] for r in rows]
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    table = TABLES[ent.name]
    taken = repeated or sorted(await _lock_rows(conn, table, ids))
    if taken:
        raise Conflict(
            f"{ent.resource} already has {_plural('id', taken)} {listed(taken)}",
            reason=ConflictReason.DUPLICATE,
            entity=ent.name,
            ids=taken,
        )
    await _check_references(conn, ent, rows, batch_ids=set(ids))
    if ent.name == "coordination_event":
        return await restore_events(conn, rows)
    # Every row names every column, so that one statement serves the whole batch (executemany);
    # a missing created_at is the time of the write, as in `create`.
    if ent.name == "goal_story":
        rows = _parents_first(rows)
    names = [c.name for c in table.columns]
    now = await conn.scalar(select(func.now())) if "created_at" in names else None
    stored = []
    for row in rows:
        full = {n: row.get(n) for n in names}
        if now is not None and full["created_at"] is None:
            full["created_at"] = now
        stored.append(full)
    await conn.execute(insert(table), stored)
    if ent.name == "goal_story":
        await _check_hierarchy(conn, [r["id"] for r in stored if r.get("parent_id")])
    if ent.event_type is not None:
        sources.update((r["id"], (ent, r["actor_id"], r["created_at"])) for r in stored)
    return len(stored)


def _parents_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order a batch of goal stories so each follows its parent: executemany inserts row by
    row, and each row's foreign key is checked as it goes in. Rows that never become ready
    are parents of each other: a cycle."""
    in_batch = {r["id"] for r in rows}
    placed: set[str] = set()
    ordered: list[dict[str, Any]] = []
    pending = rows
    while pending:
        waiting = [r for r in pending if r.get("parent_id") in in_batch and r["parent_id"] not in placed]
        ready = [r for r in pending if not (r.get("parent_id") in in_batch and r["parent_id"] not in placed)]
        if not ready:
            looping = sorted(r["id"] for r in waiting)
            raise Conflict(
                f"parent_id would make {_plural('goal story', looping)} {listed(looping)} its own ancestor",
                reason=ConflictReason.CYCLE,
                entity="goal_story",
                ids=looping,
                field="parent_id",
            )
        ordered.extend(ready)
        placed.update(r["id"] for r in ready)
        pending = waiting
    return ordered


async def _record_missing_events(conn: AsyncConnection, sources: dict[str, tuple[Entity, str, Any]]) -> int:
    """Give an event to each imported check-in or update that has none, dated at its creation."""
    events = TABLES["coordination_event"]
    covered: set[tuple[str, str]] = set()
    for chunk in _chunks(list(sources), MAX_PARAMETERS):
        statement = select(events.c.event_type, events.c.reference_id).where(events.c.reference_id.in_(chunk))
        covered.update((t, r) for t, r in await conn.execute(statement))
    pending = [
        PendingEvent(actor_id=actor_id, event_type=ent.event_type or "", reference_id=id, occurred_at=created_at)
        for id, (ent, actor_id, created_at) in sources.items()
        if (ent.event_type, id) not in covered
    ]
    recorded = 0
    for chunk in _chunks(pending, MAX_PARAMETERS // 8):
        recorded += len(await record_events(conn, chunk))
    return recorded


def _event(ent: Entity, row: Mapping[str, Any], occurred_at: Any) -> PendingEvent | None:
    if ent.event_type is None:
        return None
    return PendingEvent(
        actor_id=row["actor_id"], event_type=ent.event_type, reference_id=row["id"], occurred_at=occurred_at
    )


async def _lock_matching(
    conn: AsyncConnection, ent: Entity, table: Table, where: Filter | None
) -> list[dict[str, Any]]:
    statement = select(table).order_by(table.c.id).with_for_update()
    clause = filter_clause(ent.name, where)
    if clause is not None:
        statement = statement.where(clause)
    return [dict(r._mapping) for r in await conn.execute(statement)]


async def _lock_rows(conn: AsyncConnection, table: Table, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(ids, MAX_PARAMETERS):
        statement = select(table).where(table.c.id.in_(chunk)).order_by(table.c.id).with_for_update()
        found.update({r.id: dict(r._mapping) for r in await conn.execute(statement)})
    return found


async def _apply_to_all(
    conn: AsyncConnection, table: Table, matched: list[dict[str, Any]], changes: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Write the same changes to many rows, in one statement: each row as it is after the write, in
    the order of `matched`; a row the changes leave as it was is returned itself (the same object),
    and is not written."""
    differing = [old["id"] for old in matched if any(old.get(c) != v for c, v in changes.items())]
    if not differing:
        return matched
    # One array parameter, however many rows (an IN list would pass the driver's parameter limit).
    ids = bindparam("differing", differing, type_=ARRAY(Text))
    statement = update(table).where(table.c.id == any_(ids)).values(dict(changes)).returning(*table.columns)
    written = {r["id"]: dict(r) for r in (await conn.execute(statement)).mappings()}
    return [written.get(old["id"], old) for old in matched]


# Which rows each target entity must hold: {target entity: {field name: ids}}.
Wanted = dict[str, dict[str, set[str]]]


def _wanted_references(ent: Entity, rows: list[dict[str, Any]], batch_ids: set[str]) -> Wanted:
    """The ids the rows refer to, by target and field; rows of this same request need no check."""
    wanted: Wanted = {}
    for f in ent.fields:
        if not f.references:
            continue
        for row in rows:
            value = row.get(f.name)
            if value is None:
                continue
            ids = set(value) if f.kind is Kind.TEXT_LIST else {value}
            if f.references == ent.name:
                ids -= batch_ids
            if ids:
                wanted.setdefault(f.references, {}).setdefault(f.name, set()).update(ids)
    return wanted


async def _check_references(
    conn: AsyncConnection, ent: Entity, rows: list[dict[str, Any]], batch_ids: set[str]
) -> None:
    """Every referenced id must exist (or be created by this same request); lock those rows."""
    await _require_references(conn, ent, _wanted_references(ent, rows, batch_ids))


async def _require_references(conn: AsyncConnection, ent: Entity, wanted: Wanted) -> None:
    """Lock (FOR KEY SHARE) every wanted row of every target in one statement; name what is missing.

    Array references (team_ids, member_ids) have no foreign key: this check is their only guard."""
    targets = tuple(sorted(wanted))
    if not targets:
        return
    params = {f"ref_{n}": sorted(set().union(*wanted[t].values())) for n, t in enumerate(targets)}
    present: dict[str, set[str]] = {t: set() for t in targets}
    for n, id in await conn.execute(_references_statement(targets), params):
        present[targets[n]].add(id)
    for target in targets:
        for field_name, ids in wanted[target].items():
            missing = sorted(ids - present[target])
            if missing:
                resource = entity_named(target).resource
                raise Conflict(
                    f"{field_name} refers to {resource} that do not exist: {listed(missing)}",
                    reason=ConflictReason.MISSING_REFERENCE,
                    entity=ent.name,
                    ids=missing,
                    field=field_name,
                )


def _locking_references(targets: tuple[str, ...]) -> list[str]:
    """One SELECT per target entity taking FOR KEY SHARE on the wanted rows it holds (:ref_N)."""
    return [
        f"SELECT id FROM {TABLES[t].name} WHERE id = ANY(CAST(:ref_{n} AS text[])) ORDER BY id FOR KEY SHARE"
        for n, t in enumerate(targets)
    ]


@lru_cache(maxsize=64)
def _references_statement(targets: tuple[str, ...]) -> TextClause:
    return text(
        " UNION ALL ".join(
            f"SELECT {n} AS target, ref.id FROM ({select}) AS ref"
            for n, select in enumerate(_locking_references(targets))
        )
    )


@lru_cache(maxsize=64)
def _insert_statement(entity_name: str, targets: tuple[str, ...], skip_existing: bool, with_events: bool) -> TextClause:
    """Check and lock the references, insert the rows given as JSON (:rows) and, `with_events`,
    record one event per inserted row: one statement. Nothing is inserted unless every wanted
    reference is there (`complete`, its first column); then one record per inserted row: its id,
    created_at (where the table has one) and, `with_events`, its event's id and cursor.
    `skip_existing` leaves out rows whose id is taken (ON CONFLICT DO NOTHING) rather than
    failing on the unique index."""
    table = TABLES[entity_name]
    names = [c.name for c in table.columns]
    columns = ", ".join(f'"{n}"' for n in names)
    # A missing created_at is the time of the write; every other missing field is null.
    values = ", ".join("coalesce(g.created_at, now())" if n == "created_at" else f'g."{n}"' for n in names)
    ctes = [f"ref_{n} AS MATERIALIZED ({select})" for n, select in enumerate(_locking_references(targets))]
    complete = " AND ".join(f"(SELECT count(*) FROM ref_{n}) = :refs_{n}" for n in range(len(targets))) or "true"
    ctes.append(f"checked AS MATERIALIZED (SELECT {complete} AS complete)")
    ctes.append(f"""inserted AS (
        INSERT INTO {table.name} ({columns})
        SELECT {values} FROM checked, json_populate_recordset(NULL::{table.name}, CAST(:rows AS json)) AS g
        WHERE checked.complete
        {"ON CONFLICT (id) DO NOTHING" if skip_existing else ""}
        RETURNING {columns})""")
    # Only what the database decided comes back (the rest is what was sent): a bulk write's
    # result stays small, and PostgreSQL, holding the event lock until the statement is done,
    # never waits for a busy client to read thousands of full rows.
    selected = "i.id, i.created_at" if "created_at" in names else "i.id"
    if with_events:
        ctes.append(recording_ctes("inserted"))
        tail = (
            f"SELECT checked.complete, {selected}, e.id, e.seq, (SELECT count(*) FROM notified) "
            "FROM checked LEFT JOIN (inserted AS i JOIN events AS e ON e.reference_id = i.id) ON true"
        )
    else:
        tail = f"SELECT checked.complete, {selected} FROM checked LEFT JOIN inserted AS i ON true"
    return text("WITH " + ",\n".join(ctes) + "\n" + tail)


Inserted = tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]


async def _insert_checked(
    conn: AsyncConnection,
    ent: Entity,
    wanted: Wanted,
    rows: list[dict[str, Any]],
    rows_json: str,
    *,
    skip_existing: bool,
    with_events: bool,
) -> Inserted:
    """Insert the rows (and the same as JSON) once every wanted reference is checked and locked:
    {id: row as stored}, and the events recorded for them in cursor order. A missing reference
    is a Conflict naming it."""
    # Twice at most: when a reference was missing, nothing was inserted, and the check that
    # names the missing ids either raises or leaves every reference locked for the second try.
    for _ in range(2):
        inserted = await _try_insert(
            conn, ent, wanted, rows, rows_json, skip_existing=skip_existing, with_events=with_events
        )
        if inserted is not None:
            return inserted
        await _require_references(conn, ent, wanted)
    raise AssertionError("every reference was locked before the second try")


async def _upsert(
    conn: AsyncConnection, ent: Entity, wanted: Wanted, rows: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], set[str], list[str]]:
    """Insert the rows, or give the existing row of the same id the fields its document gave: a true
    upsert (INSERT ... ON CONFLICT DO UPDATE), so that concurrent upserts of one new id never conflict
    with each other (the later ones wait for the first and then update). Every wanted reference is
    checked and locked first, as in `_insert_checked`. Returns {id: row as stored}, the ids inserted
    and the ids of existing rows the write changed, in input order."""
    stored: dict[str, dict[str, Any]] = {}
    inserted: set[str] = set()
    changed: list[str] = []
    # One statement per set of given fields (a batch usually has one): each sets exactly those.
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(c for c in row if c != "id")), []).append(row)
    for columns, group in shapes.items():
        for _ in range(2):  # as in `_insert_checked`: a missing reference is named, or locked for the retry
            records = await _try_upsert(conn, ent, wanted, group, columns)
            if records is not None:
                break
            await _require_references(conn, ent, wanted)
        else:
            raise AssertionError("every reference was locked before the second try")
        for record in records:
            row = dict(record)
            if row.pop("inserted"):
                inserted.add(row["id"])
            elif row.pop("updated"):
                changed.append(row["id"])
            stored[row["id"]] = row
    order = {row["id"]: n for n, row in enumerate(rows)}
    changed.sort(key=order.__getitem__)
    return stored, inserted, changed


async def _try_upsert(
    conn: AsyncConnection, ent: Entity, wanted: Wanted, rows: list[dict[str, Any]], columns: tuple[str, ...]
) -> list[Any] | None:
    """One run of `_upsert_statement`: None, having written nothing, when a reference is missing."""
    targets = tuple(sorted(wanted))
    params: dict[str, Any] = {"rows": json.dumps(rows, default=_json_value), "ids": [r["id"] for r in rows]}
    for n, target in enumerate(targets):
        params[f"ref_{n}"] = sorted(set().union(*wanted[target].values()))
        params[f"refs_{n}"] = len(params[f"ref_{n}"])
    records = (await conn.execute(_upsert_statement(ent.name, targets, columns), params)).mappings().all()
    if not records[0]["complete"]:
        return None
    written = [{k: v for k, v in r.items() if k != "complete"} for r in records if r["id"] is not None]
    # A row whose fields already held the values is not written, so not returned, but locked (ON CONFLICT
    # DO UPDATE locks the row whatever its WHERE says). It is read by a statement of its own: one whose
    # snapshot is taken now sees it even when it was committed while the upsert waited for it.
    kept = sorted(set(params["ids"]) - {r["id"] for r in written})
    if kept:
        table = TABLES[ent.name]
        statement = select(table).where(table.c.id == any_(bindparam("kept", kept, type_=ARRAY(Text))))
        for row in (await conn.execute(statement)).mappings():
            written.append({**row, "inserted": False, "updated": False})
    return written


@lru_cache(maxsize=64)
def _upsert_statement(entity_name: str, targets: tuple[str, ...], columns: tuple[str, ...]) -> TextClause:
    """Check and lock the references (`complete`, the first column), then insert the rows given as JSON
    (:rows) or set `columns` of the existing rows of their ids where that changes them: one record per
    row written, as stored, with whether it was inserted or updated."""
    table = TABLES[entity_name]
    names = [c.name for c in table.columns]
    quoted = ", ".join(f'"{n}"' for n in names)
    values = ", ".join("coalesce(g.created_at, now())" if n == "created_at" else f'g."{n}"' for n in names)
    ctes = [f"ref_{n} AS MATERIALIZED ({select})" for n, select in enumerate(_locking_references(targets))]
    complete = " AND ".join(f"(SELECT count(*) FROM ref_{n}) = :refs_{n}" for n in range(len(targets))) or "true"
    ctes.append(f"checked AS MATERIALIZED (SELECT {complete} AS complete)")
    assignments = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns)
    old = ", ".join(f't."{c}"' for c in columns)
    new = ", ".join(f'EXCLUDED."{c}"' for c in columns)
    ctes.append(f"""written AS (
        INSERT INTO {table.name} AS t ({quoted})
        SELECT {values} FROM checked, json_populate_recordset(NULL::{table.name}, CAST(:rows AS json)) AS g
        WHERE checked.complete
        ON CONFLICT (id) DO UPDATE SET {assignments} WHERE ROW({old}) IS DISTINCT FROM ROW({new})
        RETURNING t.*, (t.xmax = 0) AS inserted)""")
    return text(
        "WITH "
        + ",\n".join(ctes)
        + "\nSELECT checked.complete, w.*, NOT w.inserted AS updated FROM checked LEFT JOIN written AS w ON true"
    )


async def _try_insert(
    conn: AsyncConnection | DirectPool,
    ent: Entity,
    wanted: Wanted,
    rows: list[dict[str, Any]],
    rows_json: str,
    *,
    skip_existing: bool,
    with_events: bool,
) -> Inserted | None:
    """One run of `_insert_statement`: None, having inserted nothing, when a reference is missing.
    On the direct pool it is a transaction of its own."""
    targets = tuple(sorted(wanted))
    with_events = with_events and ent.event_type is not None
    statement = _insert_statement(ent.name, targets, skip_existing, with_events)
    params: dict[str, Any] = {"rows": rows_json}
    for n, target in enumerate(targets):
        params[f"ref_{n}"] = sorted(set().union(*wanted[target].values()))
        params[f"refs_{n}"] = len(params[f"ref_{n}"])
    if with_events:
        params["event_type"] = ent.event_type
    names = [c.name for c in TABLES[ent.name].columns]
    dated = "created_at" in names
    if isinstance(conn, DirectPool):
        compiled = compiled_statement(statement)
        records = [tuple(r) for r in await conn.fetch(compiled, compiled.arguments(params))]
    else:
        records = [tuple(r) for r in await conn.execute(statement, params)]
    if not records[0][0]:
        return None
    given = {row["id"]: row for row in rows}
    unset = dict.fromkeys(names)
    stored: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    for record in records:
        id = record[1]
        if id is None:  # the one record of a statement that inserted nothing
            continue
        # The stored row is what was sent (validated values, stored as they are), with the
        # database's created_at (a default, or the given time as timestamptz).
        row = {**unset, **given[id]}
        if dated:
            row["created_at"] = record[2]
        stored[id] = row
        if with_events:
            event_id, seq = record[3 if dated else 2 :][:2]
            events.append(
                {
                    "id": event_id,
                    "seq": seq,
                    "actor_id": row["actor_id"],
                    "event_type": ent.event_type,
                    "reference_id": id,
                    "occurred_at": row.get("created_at"),
                }
            )
    return stored, sorted(events, key=lambda e: e["seq"])


def _json_value(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


async def _check_unreferenced(conn: AsyncConnection, ent: Entity, ids: list[str]) -> None:
    """Refuse to delete rows that other rows still refer to, naming those rows."""
    statement = _referrers_statement(ent.name)
    if statement is None:
        return
    others = referrers(ent.name)
    found: dict[str, list[str]] = {}
    for n, id in await conn.execute(statement, {"ids": ids}):
        shown = found.setdefault(others[n][0].resource, [])
        if len(shown) < REFERRERS_SHOWN:
            shown.append(id)
    if found:
        named = "; ".join(f"{resource}: {', '.join(hits)}" for resource, hits in found.items())
        raise Conflict(
            f"{ent.resource} {', '.join(sorted(ids)[:REFERRERS_SHOWN])} still referenced by {named}",
            reason=ConflictReason.REFERENCED,
            entity=ent.name,
            ids=sorted(ids)[:REFERRERS_SHOWN],
            referrers=found,
        )


@lru_cache(maxsize=16)
def _referrers_statement(entity_name: str) -> TextClause | None:
    """The first referrers of the rows :ids in every referring table, in one statement:
    (referrer's position in `referrers`, id), in id order within each. The rows being
    deleted do not count as referrers of each other."""
    parts = []
    for n, (other, f) in enumerate(referrers(entity_name)):
        table = TABLES[other.name].name
        column = f'"{f.name}"'
        condition = (
            f"{column} && CAST(:ids AS text[])" if f.kind is Kind.TEXT_LIST else f"{column} = ANY(CAST(:ids AS text[]))"
        )
        if other.name == entity_name:
            condition += " AND NOT (id = ANY(CAST(:ids AS text[])))"
        parts.append(f"(SELECT {n} AS referrer, id FROM {table} WHERE {condition} ORDER BY id LIMIT {REFERRERS_SHOWN})")
    if not parts:
        return None
    return text(f"SELECT referrer, id FROM ({' UNION ALL '.join(parts)}) AS hits ORDER BY referrer, id")


_CYCLES = text(
    """
    WITH RECURSIVE ancestors(start_id, id, depth) AS (
        SELECT g.id, g.parent_id, 1 FROM goal_stories g
        WHERE g.id = ANY(CAST(:ids AS text[])) AND g.parent_id IS NOT NULL
      UNION ALL
        SELECT a.start_id, g.parent_id, a.depth + 1
        FROM ancestors a JOIN goal_stories g ON g.id = a.id
        WHERE g.parent_id IS NOT NULL AND a.id <> a.start_id AND a.depth < 100000
    )
    SELECT DISTINCT start_id FROM ancestors WHERE id = start_id ORDER BY start_id
    """
)


def _refuse_own_parent(rows: list[dict[str, Any]]) -> None:
    looping = sorted(r["id"] for r in rows if r.get("parent_id") == r["id"])
    if looping:
        raise Conflict(
            f"a goal story cannot be its own parent: {listed(looping)}",
            reason=ConflictReason.CYCLE,
            entity="goal_story",
            ids=looping,
            field="parent_id",
        )


async def _check_hierarchy(conn: AsyncConnection, ids: list[str]) -> None:
    """A goal story cannot become its own ancestor."""
    if not ids:
        return
    await conn.execute(select(func.pg_advisory_xact_lock(HIERARCHY_LOCK_KEY)))
    looping = list(await conn.scalars(_CYCLES, {"ids": ids}))
    if looping:
        raise Conflict(
            f"parent_id would make {_plural('goal story', looping)} {listed(looping)} its own ancestor",
            reason=ConflictReason.CYCLE,
            entity="goal_story",
            ids=looping,
            field="parent_id",
        )


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] if items else []


def _plural(word: str, items: list[str]) -> str:
    if len(items) == 1:
        return word
    return word[:-1] + "ies" if word.endswith("y") else word + "s"
