"""The coordination write service: the only code that writes.

Every create, update and delete of every entity, from every front end, runs
here in one transaction: validate, check the rules (api/store/rules.py), lock
what they depend on, write (api/store/statements.py), record the coordination
events, commit. A failure anywhere rolls back everything, events included.

Locking, so that the rules hold under concurrency (READ COMMITTED):
- a write that refers to rows takes FOR KEY SHARE on them, and a delete takes
  FOR UPDATE on its rows before it looks for referrers, so a delete and a new
  reference to the same row serialise and the loser sees the winner's result;
- updates take FOR UPDATE on their rows (in id order, against deadlocks), so
  twenty concurrent edits of one row are twenty edits, each with its event;
  an update or delete of the first N rows in some order picks and locks them
  in one statement, so they are the first N when it runs, not when it read;
- writes that set a parent take one advisory lock, so two concurrent
  re-parentings cannot together build a cycle;
- an upsert (OnConflict.MERGE) is INSERT ... ON CONFLICT DO UPDATE, so
  concurrent upserts of one new id never conflict: the first inserts, the
  others wait for it and then update (or leave) its row.

Round trips: a create of any number of rows is one statement (references
checked and locked, rows inserted from one JSON parameter, events recorded,
NOTIFY); when the caller reads nothing back inside the transaction, it runs
as a transaction of its own, with no BEGIN or COMMIT to wait for. Updates and
deletes take a few statements whatever the number of rows.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.cache import BoundedCache
from api.edge.auth import require_write
from api.entities import Entity
from api.errors import Conflict, ConflictReason, NotFound, Transient
from api.plan import Condition, Count, Filter, OrderTerm, ReadPlan, Scope, Summary, Visible, all_of, replaced
from api.plan import Related as RelatedRows
from api.store.database import connection, transaction
from api.store.events import PendingEvent, record_events
from api.store.imports import ImportItem, Sources, each, import_batch, record_missing_events
from api.store.pool import DirectPool
from api.store.reads import json_array, only_ids, set_timezone
from api.store.rules import (
    Hierarchy,
    as_actor,
    check_references,
    duplicate_ids,
    hierarchy,
    importable,
    refuse_actor_change,
    refuse_foreign_rows,
    refuse_id_change,
    refuse_referenced,
    reparenting,
    repeated_ids,
    require_references,
    wanted_references,
    writable,
    writing_actor,
)
from api.store.scoping import EVERY_ROW, current_scope
from api.store.select import Statements, shown_statement
from api.store.statements import (
    Inserted,
    ShownInsert,
    Wanted,
    apply_to_all,
    delete_rows,
    lock_matching,
    rows_json,
    shown_insert_statement,
    try_insert,
    try_upsert,
    written_rows,
)
from api.store.validation import to_columns

# A transaction PostgreSQL aborts to break a deadlock is run again, this many times at most.
ATTEMPTS = 4
IMPORT_BATCH = 1000
SHOWN_KEPT = 256


class OnConflict(StrEnum):
    ERROR = "error"  # an existing id is a conflict
    MERGE = "merge"  # an existing row gets the given fields (upsert)
    IGNORE = "ignore"  # an existing row is left alone


class Written:
    """What a `returning` callback is given: the ids of the rows the write touched, and reads that
    run inside its transaction, so that they show exactly what it wrote (and may still refuse it)."""

    def __init__(
        self, conn: AsyncConnection, ids: list[str], statements: Statements, scope: Scope | None = None
    ) -> None:
        self._conn = conn
        self.ids = ids
        self._statements = statements
        # What these reads may see: None, the caller's (an update or a delete touches only rows its caller
        # may read); `EVERY_ROW` for what a create wrote (creates are not limited by teams).
        self._scope = scope

    async def json_array(self, plan: ReadPlan, *, timezone: str | None = None) -> str:
        """The rows `plan` selects, as the text of one JSON array, timestamps in `timezone`."""
        await set_timezone(self._conn, timezone)
        if self._scope is not None and plan.scope is None:
            plan = replaced(plan, scope=self._scope)
        return await json_array(self._conn, plan, self._statements, zoned=timezone is not None)

    async def rows(self, plan: ReadPlan, *, timezone: str | None = None) -> str:
        """`json_array` of the written rows, as `plan` shapes them."""
        return await self.json_array(only_ids(plan, self.ids), timezone=timezone)


Returning = Callable[[Written], Awaitable[Any]]


@dataclass(frozen=True)
class Shown:
    """What a write shows of itself, rendered by the query planner (api/store/select.py) from the rows as
    the write left them, before it commits: each row written (or, for a delete, about to be deleted) as
    `rows` shapes it, each event recorded as `events` does (None: none shown). The write's own rows are
    all shown; what the plans read below them is limited by the caller's scope, as any read. Texts come
    back in `WriteResult.shown_rows` and `shown_events`, by id."""

    rows: ReadPlan
    events: ReadPlan | None = None

    @cached_property
    def key(self) -> str:
        return repr((self.rows, self.events))

    def seen_by_insert(self, entity_name: str) -> bool:
        """Whether a create can render it in its own statement: its plans read nothing below their top level
        that the statement is writing (rows of the entity, events), which the statement cannot see yet."""
        below = self.read_below
        return below is not None and not below & {entity_name, "coordination_event"}

    @cached_property
    def read_below(self) -> frozenset[str] | None:
        """The entities the plans read below their top level; None when that is not known (related conditions,
        counts and summaries may read any)."""
        rows = _read_below(self.rows)
        events = frozenset() if self.events is None else _read_below(self.events)
        return None if rows is None or events is None else rows | events


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
    # With `shown`: the JSON text of each row and of each event as shown, by id.
    shown_rows: dict[str, str] = field(default_factory=dict)
    shown_events: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportResult:
    # Rows imported per entity name, coordination events included.
    counts: dict[str, int] = field(default_factory=dict)
    # Events recorded for imported check-ins and updates that arrived without any.
    events_recorded: int = 0


@dataclass(frozen=True)
class _Batch:
    """The documents of one create, validated: rows (ids given to those without), in input order."""

    entity: Entity
    rows: list[dict[str, Any]]
    # What the rows refer to outside this batch.
    wanted: Wanted
    # The rule for a tree among the rows, when the entity has one.
    tree: Hierarchy | None

    @classmethod
    def of(cls, ent: Entity, documents: Sequence[Mapping[str, Any]]) -> _Batch:
        rows = [to_columns(ent, doc, partial=False, index=i) for i, doc in enumerate(documents)]
        for row in rows:
            row.setdefault("id", str(uuid.uuid4()))
        ids = [row["id"] for row in rows]
        repeated = repeated_ids(ids)
        if repeated:
            raise duplicate_ids(ent, repeated, within_request=True)
        tree = hierarchy(ent)
        if tree is not None:
            tree.refuse_own_parent(rows)
        return cls(ent, rows, wanted_references(ent, rows, batch_ids=set(ids)), tree)

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.rows]

    def result(
        self, stored: dict[str, dict[str, Any]], events: list[dict[str, Any]], inserted: list[str]
    ) -> WriteResult:
        """The rows stored, in input order (with IGNORE, rows that already existed are left out)."""
        return WriteResult(rows=[stored[i] for i in self.ids if i in stored], events=events, inserted_ids=inserted)


class WriteService:
    def __init__(self, engine: AsyncEngine, *, pool: DirectPool | None = None) -> None:
        self.engine = engine
        # Where a create that is one statement runs, when given (api/store/pool.py); else the engine.
        self.pool = pool
        # The statements of what `returning` callbacks read back (api/cache.py).
        self.statements = Statements()
        # The statements of creates that show what they wrote (`Shown`), by shape and scope.
        self.shown_inserts: BoundedCache[Any, Any] = BoundedCache("shown_insert_statements", SHOWN_KEPT)

    # ------------------------------------------------------------ create

    async def create(
        self,
        entity_name: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        on_conflict: OnConflict = OnConflict.ERROR,
        returning: Returning | None = None,
        shown: Shown | None = None,
    ) -> WriteResult:
        """Insert the documents atomically: all of them or, on any error, none."""
        require_write()
        ent = writable(entity_name)
        actor = writing_actor(ent)
        if actor is not None:
            documents = as_actor(ent, actor, documents)
        batch = _Batch.of(ent, documents)
        if (
            returning is None
            and on_conflict is not OnConflict.MERGE
            and batch.tree is None
            and (shown is None or shown.seen_by_insert(ent.name))
        ):
            alone = await self._insert_alone(
                batch, skip_existing=on_conflict is OnConflict.IGNORE, shown=self._shown_insert(ent, shown)
            )
            if alone is not None:
                return alone

        async def work(conn: AsyncConnection) -> WriteResult:
            if on_conflict is OnConflict.MERGE:
                result = await _merge(conn, batch, actor)
            else:
                result = await _insert(conn, batch, ignore_existing=on_conflict is OnConflict.IGNORE)
            if batch.tree is not None:
                await batch.tree.check(conn, result.rows)
            await _show(conn, result, shown)
            return await _read_back(conn, result, returning, self.statements, EVERY_ROW)

        return await self._run(work)

    def _shown_insert(self, ent: Entity, shown: Shown | None) -> ShownInsert | None:
        """What an insert needs to show `shown` in its own statement (built once per shape and scope)."""
        if shown is None:
            return None
        scope = current_scope()

        def statement(targets: tuple[str, ...], skip_existing: bool, with_events: bool) -> Any:
            key = (ent.name, targets, skip_existing, with_events, shown.key, scope)
            built = self.shown_inserts.get(key)
            if built is None:
                rows = shown_statement(shown.rows, written_rows(ent.name, "inserted"))
                events = (
                    None
                    if shown.events is None
                    else shown_statement(shown.events, written_rows("coordination_event", "events"))
                )
                built = self.shown_inserts.put(
                    key, shown_insert_statement(ent.name, targets, skip_existing, with_events, rows, events)
                )
            return built

        return ShownInsert(statement)

    async def _insert_alone(
        self, batch: _Batch, *, skip_existing: bool, shown: ShownInsert | None = None
    ) -> WriteResult | None:
        """A create that needs nothing else in its transaction (no read-back, no merge, no
        hierarchy check) is its one statement run as a transaction of its own: no BEGIN and
        COMMIT round trips. A taken id (ERROR) fails the whole statement on the unique index,
        and a missing reference that a foreign key guards fails it on that key (the key's own
        check locks the referenced row, FOR KEY SHARE, as the general way does), so nothing is
        committed; then, as when another reference is missing or PostgreSQL broke a deadlock,
        this returns None having written nothing, and `create` goes the general way, which
        names the ids. (A cursor drawn by the failed statement is left unused: cursors only
        ever need to grow.)"""
        ent, given = batch.entity, rows_json(batch.rows)

        async def insert(target: AsyncConnection | DirectPool) -> Inserted | None:
            return await try_insert(
                target,
                ent,
                batch.wanted,
                batch.rows,
                given,
                skip_existing=skip_existing,
                with_events=True,
                shown=shown,
                keys_check=True,
            )

        try:
            if self.pool is not None:
                inserted = await insert(self.pool)
            else:
                async with connection(self.engine) as conn:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    inserted = await insert(conn)
        except Conflict as conflict:
            if conflict.reason in (ConflictReason.DUPLICATE, ConflictReason.MISSING_REFERENCE):
                return None
            raise
        except Transient:
            return None
        if inserted is None:
            return None
        stored, events = inserted
        result = batch.result(stored, events, [i for i in batch.ids if i in stored])
        if shown is not None:
            result.shown_rows, result.shown_events = shown.rows, shown.events
        return result

    # ------------------------------------------------------------ update

    async def update(
        self,
        entity_name: str,
        where: Filter | None,
        changes: Mapping[str, Any],
        *,
        order: tuple[OrderTerm, ...] = (),
        limit: int | None = None,
        offset: int | None = None,
        returning: Returning | None = None,
        shown: Shown | None = None,
    ) -> WriteResult:
        """Apply `changes` (fields left out stay; an explicit null clears) to every row matching `where`
        or, with `limit` or `offset`, to that page of them in `order`."""
        require_write()
        ent = writable(entity_name)
        actor = writing_actor(ent)
        where = _within(where, current_scope())
        columns = to_columns(ent, changes, partial=True)
        if actor is not None:
            refuse_actor_change(ent, actor, columns)
        tree = reparenting(ent, columns)

        async def work(conn: AsyncConnection) -> WriteResult:
            matched = await lock_matching(conn, ent, where, order=order, limit=limit, offset=offset)
            if not matched:
                return WriteResult()
            if actor is not None:
                refuse_foreign_rows(ent, actor, matched)
            refuse_id_change(ent, columns, matched)
            await check_references(conn, ent, [columns], batch_ids=set())
            if tree is not None:
                tree.refuse_own_parent([{**row, **columns} for row in matched])
            rows = await apply_to_all(conn, ent, matched, columns)
            pending = [_event(ent, new, None) for new, old in zip(rows, matched, strict=True) if new is not old]
            if tree is not None:
                await tree.check(conn, rows)
            result = WriteResult(rows=rows, events=await record_events(conn, [p for p in pending if p is not None]))
            await _show(conn, result, shown)
            return await _read_back(conn, result, returning, self.statements)

        return await self._run(work)

    async def update_one(
        self,
        entity_name: str,
        id: str,
        changes: Mapping[str, Any],
        *,
        returning: Returning | None = None,
        shown: Shown | None = None,
    ) -> WriteResult:
        result = await self.update(entity_name, Condition("id", "eq", id), changes, returning=returning, shown=shown)
        if not result.rows:
            raise NotFound(entity_name, id)
        return result

    # ------------------------------------------------------------ delete

    async def delete(
        self,
        entity_name: str,
        where: Filter | None,
        *,
        order: tuple[OrderTerm, ...] = (),
        limit: int | None = None,
        offset: int | None = None,
        returning: Returning | None = None,
        shown: Shown | None = None,
    ) -> WriteResult:
        """Delete every row matching `where` (or, with `limit` or `offset`, that page of them in
        `order`), unless something still refers to one of them."""
        require_write()
        ent = writable(entity_name)
        actor = writing_actor(ent)
        where = _within(where, current_scope())

        async def work(conn: AsyncConnection) -> WriteResult:
            result = WriteResult(rows=await lock_matching(conn, ent, where, order=order, limit=limit, offset=offset))
            ids = [r["id"] for r in result.rows]
            if not ids:
                return result
            if actor is not None:
                refuse_foreign_rows(ent, actor, result.rows)
            await refuse_referenced(conn, ent, ids)
            # Read back before the rows are gone.
            await _show(conn, result, shown)
            result = await _read_back(conn, result, returning, self.statements)
            await delete_rows(conn, ent, ids)
            return result

        return await self._run(work)

    async def delete_one(
        self, entity_name: str, id: str, *, returning: Returning | None = None, shown: Shown | None = None
    ) -> WriteResult:
        result = await self.delete(entity_name, Condition("id", "eq", id), returning=returning, shown=shown)
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

        The narrow path that lets history back in, for the server's own CLI, never an API
        (api/store/imports.py): rows keep their ids and created_at and are validated and
        reference-checked as `create` does, but a new check-in or update records no event,
        because the export carries its events: those are inserted as they were (same id,
        actor, type, reference, occurred_at), in the order given, drawing fresh cursors under
        the event lock. A check-in or update that arrives without any event of its own gets
        one, as `create` would give it, so no committed row lacks its event. Existing ids are
        conflicts; nothing is merged. Documents must come in dependency order (referenced rows
        first); errors about one document carry its position in `items` as `index`.
        `progress(entity, n)` is called after each batch with the number imported so far of
        that entity.
        """
        require_write()
        result = ImportResult()
        sources: Sources = {}
        batch: list[tuple[int, Mapping[str, Any]]] = []
        current: str | None = None
        async with transaction(self.engine) as conn:

            async def flush() -> None:
                if not batch or current is None:
                    return
                ent = importable(current, batch[0][0])
                done = await import_batch(conn, ent, batch, sources)
                result.counts[ent.name] = result.counts.get(ent.name, 0) + done
                batch.clear()
                if progress is not None:
                    progress(ent.name, result.counts[ent.name])

            position = 0
            async for entity_name, document in each(items):
                if entity_name != current or len(batch) >= batch_size:
                    await flush()
                    current = entity_name
                batch.append((position, document))
                position += 1
            await flush()
            result.events_recorded = await record_missing_events(conn, sources)
        return result

    # ------------------------------------------------------------ transactions

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[WriteResult]]) -> WriteResult:
        """Run `work` in one transaction, again from the start if PostgreSQL broke a deadlock by aborting it."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with transaction(self.engine) as conn:
                    return await work(conn)
            except Transient:
                # What is still left after the last run is Unavailable all the same: 503, try again.
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------- the two ways of a create in a transaction


async def _insert(conn: AsyncConnection, batch: _Batch, *, ignore_existing: bool) -> WriteResult:
    """Insert the rows; a taken id is a conflict naming it, or, `ignore_existing`, leaves its row out."""
    # A taken id is skipped rather than failing the statement, so that the conflict can name it.
    stored, events = await _insert_checked(conn, batch, batch.rows, skip_existing=True, with_events=True)
    if not ignore_existing and len(stored) < len(batch.rows):
        raise duplicate_ids(batch.entity, sorted(set(batch.ids) - set(stored)))
    return batch.result(stored, events, [i for i in batch.ids if i in stored])


async def _merge(conn: AsyncConnection, batch: _Batch, actor: str | None) -> WriteResult:
    """Insert the rows, or give the existing row of the same id the fields its document gave: a true
    upsert, so that concurrent upserts of one new id never conflict with each other (the later ones
    wait for the first, then update its row or leave it as it is). One statement per set of given
    fields (a batch usually has one): each sets exactly those. An actor-bound caller's (`actor`)
    changes only rows that are its own: another actor's row is left as it is, and refused."""
    ent = batch.entity
    stored: dict[str, dict[str, Any]] = {}
    inserted: set[str] = set()
    changed: set[str] = set()
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in batch.rows:
        shapes.setdefault(tuple(sorted(c for c in row if c != "id")), []).append(row)
    for columns, rows in shapes.items():
        # Twice at most, as in `_insert_checked`: a missing reference is named, or locked for the retry.
        for _ in range(2):
            written = await try_upsert(conn, ent, batch.wanted, rows, columns, owner=actor)
            if written is not None:
                break
            await require_references(conn, ent, batch.wanted)
        else:
            raise AssertionError("every reference was locked before the second try")
        for row, was_inserted, was_changed in written:
            stored[row["id"]] = row
            if was_inserted:
                inserted.add(row["id"])
            elif was_changed:
                changed.add(row["id"])
    if actor is not None:
        # Rows of another actor were not written (the upsert changes only the caller's own): refused.
        refuse_foreign_rows(ent, actor, [stored[i] for i in batch.ids if i not in inserted])
    new = [i for i in batch.ids if i in inserted]
    # A new row's event occurs at its creation; a changed row's at the write.
    pending = [_event(ent, stored[i], stored[i].get("created_at")) for i in new]
    pending += [_event(ent, stored[i], None) for i in batch.ids if i in changed]
    events = await record_events(conn, [p for p in pending if p is not None])
    return batch.result(stored, events, new)


async def _insert_checked(
    conn: AsyncConnection, batch: _Batch, rows: list[dict[str, Any]], *, skip_existing: bool, with_events: bool
) -> Inserted:
    """Insert `rows` (of the batch) once every reference the batch wants is checked and locked.
    A missing reference is a conflict naming it."""
    given = rows_json(rows)
    # Twice at most: when a reference was missing, nothing was inserted, and the check that
    # names the missing ids either raises or leaves every reference locked for the second try.
    for _ in range(2):
        inserted = await try_insert(
            conn, batch.entity, batch.wanted, rows, given, skip_existing=skip_existing, with_events=with_events
        )
        if inserted is not None:
            return inserted
        await require_references(conn, batch.entity, batch.wanted)
    raise AssertionError("every reference was locked before the second try")


async def _read_back(
    conn: AsyncConnection,
    result: WriteResult,
    returning: Returning | None,
    statements: Statements,
    scope: Scope | None = None,
) -> WriteResult:
    if returning is not None:
        result.returned = await returning(Written(conn, [r["id"] for r in result.rows], statements, scope))
    return result


async def _show(conn: AsyncConnection, result: WriteResult, shown: Shown | None) -> None:
    """`shown` rendered inside the write's transaction: its rows and events as they are now."""
    if shown is None:
        return
    if result.rows:
        ids = Condition("id", "in", [r["id"] for r in result.rows])
        plan = replaced(shown.rows, where=all_of(shown.rows.where, ids))
        result.shown_rows = {id: text for id, text in await conn.execute(shown_statement(plan))}
    if shown.events is not None and result.events:
        ids = Condition("id", "in", [e["id"] for e in result.events])
        plan = replaced(shown.events, where=all_of(shown.events.where, ids))
        result.shown_events = {id: text for id, text in await conn.execute(shown_statement(plan))}


def _read_below(plan: ReadPlan) -> frozenset[str] | None:
    """The entities whose rows the plan reads below its top level, or None when that is not known."""
    found: set[str] = set()
    known = True

    def visit(value: Any, top: bool) -> None:
        nonlocal known
        if not known:
            return
        if isinstance(value, (RelatedRows, Count, Summary)):
            known = False
            return
        if isinstance(value, ReadPlan) and not top:
            found.add(value.entity)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                visit(getattr(value, f.name), False)
        elif isinstance(value, (tuple, list)):
            for item in value:
                visit(item, False)

    visit(plan, True)
    return frozenset(found) if known else None


def _within(where: Filter | None, scope: Scope | None) -> Filter | None:
    """`where`, for a caller limited to teams narrowed to the rows it may read: an update or a delete never
    touches (nor counts, nor shows) a row its caller cannot see, which to it does not exist."""
    return where if scope is None else all_of(where, Visible(scope))


def _event(ent: Entity, row: Mapping[str, Any], occurred_at: Any) -> PendingEvent | None:
    if ent.event_type is None:
        return None
    return PendingEvent(
        actor_id=row["actor_id"], event_type=ent.event_type, reference_id=row["id"], occurred_at=occurred_at
    )
