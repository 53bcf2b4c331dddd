"""The write service's SQL: each statement it runs, and what its rows mean.

Nothing here decides a rule; api/store/rules.py says what is allowed and
api/store/writes.py in which order things happen. Statements whose text depends
only on the entity (and the referenced entities) are built once and cached.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    Table,
    TableClause,
    Text,
    TextClause,
    TextualSelect,
    any_,
    bindparam,
    column,
    delete,
    func,
    select,
    table,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from api.entities import ENTITIES, Entity, Kind, referrers
from api.plan import Filter, OrderTerm
from api.store.events import recording_parts
from api.store.pool import DirectPool
from api.store.select import AnySelect, filter_clause, order_clauses
from api.store.tables import TABLES, as_sent

# PostgreSQL takes at most 65535 bound parameters in one statement.
MAX_PARAMETERS = 30_000
# How many referrer ids a conflict names per resource.
REFERRERS_SHOWN = 20
# One advisory lock for every write that sets a parent: two concurrent re-parentings cannot
# together build a cycle that neither sees alone.
HIERARCHY_LOCK_KEY = 0x0C0C_6047
# How deep the cycle search follows parents before it gives up on a chain.
MAX_DEPTH = 100_000


@dataclass
class ShownInsert:
    """What an insert shows of what it wrote, in its own statement: `statement(targets, skip_existing,
    with_events)` builds it (`shown_insert_statement`), and its run puts the JSON texts here by id."""

    statement: Callable[[tuple[str, ...], bool, bool], Any]
    rows: dict[str, str] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)


# Which rows each target entity must hold: {target entity: {field name: ids}}.
Wanted = dict[str, dict[str, set[str]]]
# What an insert stored: {id: row as stored}, and the events recorded for the rows, in cursor order.
Inserted = tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] if items else []


def rows_json(rows: list[dict[str, Any]]) -> str:
    """Rows as the one JSON parameter an insert takes, whatever their number: one statement,
    compiled and prepared once per shape, where a VALUES list was compiled for every request."""
    return json.dumps(rows, default=_json_value)


def _json_value(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


# ---------------------------------------------------------------- locking rows


async def lock_matching(
    conn: AsyncConnection,
    ent: Entity,
    where: Filter | None,
    *,
    order: tuple[OrderTerm, ...] = (),
    limit: int | None = None,
    offset: int | None = None,
) -> list[dict[str, Any]]:
    """Every row `where` matches, locked FOR UPDATE (in id order, against deadlocks); with `limit`
    or `offset`, only the rows of that page in `order`. The page is picked and locked by one inner
    SELECT ... ORDER BY ... LIMIT ... FOR UPDATE: a row changed by a concurrent write is judged as
    it is once that write commits, so the rows locked are the first ones that match then."""
    table = TABLES[ent.name]
    statement = select(table).order_by(table.c.id).with_for_update()
    if limit is None and not offset:
        clause = filter_clause(ent.name, where)
        if clause is not None:
            statement = statement.where(clause)
    else:
        # Its own name: a subquery over the outer query's table would be correlated to it.
        picked = table.alias("picked")
        page = select(picked.c.id).order_by(*order_clauses(ent.name, order, picked))
        clause = filter_clause(ent.name, where, picked)
        if clause is not None:
            page = page.where(clause)
        page = page.limit(limit).offset(offset or None).with_for_update()
        statement = statement.where(table.c.id.in_(page))
    return [dict(r._mapping) for r in await conn.execute(statement)]


async def lock_rows(conn: AsyncConnection, ent: Entity, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rows with these ids that exist, locked FOR UPDATE: {id: row}."""
    table = TABLES[ent.name]
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(ids, MAX_PARAMETERS):
        statement = select(table).where(table.c.id.in_(chunk)).order_by(table.c.id).with_for_update()
        found.update({r.id: dict(r._mapping) for r in await conn.execute(statement)})
    return found


# ---------------------------------------------------------------- changing and deleting rows


async def apply_to_all(
    conn: AsyncConnection, ent: Entity, matched: list[dict[str, Any]], changes: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Write the same changes to many rows, in one statement: each row as it is
    after the write, in the order of `matched`; a row the changes leave as it was is returned
    itself (the same object), and is not written."""
    table = TABLES[ent.name]
    differing = [old["id"] for old in matched if any(old.get(c) != v for c, v in changes.items())]
    if not differing:
        return matched
    # One array parameter, however many rows (an IN list would pass the driver's parameter limit).
    ids = bindparam("differing", differing, type_=ARRAY(Text))
    values = {c: as_sent(table.c[c], v) for c, v in changes.items()}
    statement = update(table).where(table.c.id == any_(ids)).values(values).returning(*table.columns)
    written = {r["id"]: dict(r) for r in (await conn.execute(statement)).mappings()}
    return [written.get(old["id"], old) for old in matched]


async def delete_rows(conn: AsyncConnection, ent: Entity, ids: list[str]) -> None:
    table = TABLES[ent.name]
    for chunk in chunks(ids, MAX_PARAMETERS):
        await conn.execute(delete(table).where(table.c.id.in_(chunk)))


async def now(conn: AsyncConnection) -> dt.datetime:
    """The transaction's time: what a missing created_at means."""
    moment: dt.datetime = (await conn.execute(select(func.now()))).scalar_one()
    return moment


# ---------------------------------------------------------------- references


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
def keyed_fields(entity_name: str) -> frozenset[str]:
    """The entity's reference fields that are a foreign key of its table: PostgreSQL itself refuses a
    row whose reference is missing, and its check takes FOR KEY SHARE on the referenced row, as
    `_locking_references` would."""
    ent = ENTITIES[entity_name]
    columns = TABLES[entity_name].c
    keyed = set()
    for f in ent.fields:
        if not f.references or f.kind is Kind.TEXT_LIST or len(f.columns) != 1:
            continue
        target = TABLES[f.references].c.id
        if any(key.column is target for key in columns[f.columns[0]].foreign_keys):
            keyed.add(f.name)
    return frozenset(keyed)


def unkeyed(ent: Entity, wanted: Wanted) -> Wanted:
    """`wanted` less the targets that only foreign keys refer to (`keyed_fields`)."""
    keyed = keyed_fields(ent.name)
    return {target: fields for target, fields in wanted.items() if not fields.keys() <= keyed}


def _reference_parameters(wanted: Wanted) -> tuple[tuple[str, ...], dict[str, Any]]:
    targets = tuple(sorted(wanted))
    params: dict[str, Any] = {}
    for n, target in enumerate(targets):
        params[f"ref_{n}"] = sorted(set().union(*wanted[target].values()))
        params[f"refs_{n}"] = len(params[f"ref_{n}"])
    return targets, params


async def lock_references(conn: AsyncConnection, wanted: Wanted) -> dict[str, set[str]]:
    """Lock (FOR KEY SHARE) every wanted row of every target in one statement: the ids present, by target."""
    targets, params = _reference_parameters(wanted)
    present: dict[str, set[str]] = {t: set() for t in targets}
    if targets:
        for n, id in await conn.execute(_references_statement(targets), params):
            present[targets[n]].add(id)
    return present


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


async def find_referrers(conn: AsyncConnection, ent: Entity, ids: list[str]) -> dict[str, list[str]]:
    """The rows that still refer to any of `ids`, REFERRERS_SHOWN at most per resource: {resource: ids}."""
    statement = _referrers_statement(ent.name)
    if statement is None:
        return {}
    others = referrers(ent.name)
    found: dict[str, list[str]] = {}
    for n, id in await conn.execute(statement, {"ids": ids}):
        shown = found.setdefault(others[n][0].resource, [])
        if len(shown) < REFERRERS_SHOWN:
            shown.append(id)
    return found


# ---------------------------------------------------------------- inserting


def _checked_rows(table: Table, targets: tuple[str, ...]) -> tuple[str, str, list[str]]:
    """What an insert of rows given as JSON (:rows) starts from: its column list, the values it selects
    from `g` (a missing created_at is the time of the write; every other missing field is null), and
    the CTEs that lock the wanted references and say whether all are there (`checked.complete`)."""
    columns, values, parts = _checked_parts(table, targets)
    return columns, values, [_cte_text(*part) for part in parts]


# A CTE of a statement put together here: its name, its body, whether it is MATERIALIZED.
Part = tuple[str, str, bool]


def _cte_text(name: str, body: str, materialized: bool) -> str:
    return f"{name} AS {'MATERIALIZED ' if materialized else ''}({body})"


def _checked_parts(table: Table, targets: tuple[str, ...]) -> tuple[str, str, list[Part]]:
    names = [c.name for c in table.columns]
    columns = ", ".join(f'"{n}"' for n in names)
    values = ", ".join("coalesce(g.created_at, now())" if n == "created_at" else f'g."{n}"' for n in names)
    parts: list[Part] = [(f"ref_{n}", select, True) for n, select in enumerate(_locking_references(targets))]
    complete = " AND ".join(f"(SELECT count(*) FROM ref_{n}) = :refs_{n}" for n in range(len(targets))) or "true"
    parts.append(("checked", f"SELECT {complete} AS complete", True))
    return columns, values, parts


def _insert_parts(
    entity_name: str, targets: tuple[str, ...], skip_existing: bool, with_events: bool
) -> tuple[list[Part], str]:
    """The CTEs and the final SELECT of `_insert_statement`."""
    table = TABLES[entity_name]
    columns, values, parts = _checked_parts(table, targets)
    parts.append(
        (
            "inserted",
            f"""
        INSERT INTO {table.name} ({columns})
        SELECT {values} FROM checked, json_populate_recordset(NULL::{table.name}, CAST(:rows AS json)) AS g
        WHERE checked.complete
        {"ON CONFLICT (id) DO NOTHING" if skip_existing else ""}
        RETURNING {columns}""",
            False,
        )
    )
    # Only what the database decided comes back (the rest is what was sent): a bulk write's
    # result stays small, and PostgreSQL, holding the event lock until the statement is done,
    # never waits for a busy client to read thousands of full rows.
    selected = "i.id, i.created_at" if "created_at" in table.columns else "i.id"
    if with_events:
        parts += [(name, body, False) for name, body in recording_parts("inserted")]
        tail = (
            f"SELECT checked.complete, {selected}, e.id, e.seq, (SELECT count(*) FROM notified) "
            "FROM checked LEFT JOIN (inserted AS i JOIN events AS e ON e.reference_id = i.id) ON true"
        )
    else:
        tail = f"SELECT checked.complete, {selected} FROM checked LEFT JOIN inserted AS i ON true"
    return parts, tail


@lru_cache(maxsize=64)
def _insert_statement(entity_name: str, targets: tuple[str, ...], skip_existing: bool, with_events: bool) -> TextClause:
    """Check and lock the references, insert the rows given as JSON (:rows) and, `with_events`,
    record one event per inserted row: one statement. Nothing is inserted unless every wanted
    reference is there (`complete`, its first column); then one record per inserted row: its id,
    created_at (where the table has one) and, `with_events`, its event's id and cursor.
    `skip_existing` leaves out rows whose id is taken (ON CONFLICT DO NOTHING) rather than
    failing on the unique index."""
    parts, tail = _insert_parts(entity_name, targets, skip_existing, with_events)
    return text("WITH " + ",\n".join(_cte_text(*part) for part in parts) + "\n" + tail)


def written_rows(entity_name: str, cte: str) -> TableClause:
    """The rows of the entity's columns that the CTE `cte` of a write's statement produced, to read from."""
    return table(cte, *(column(c.name, c.type) for c in TABLES[entity_name].columns))


def shown_insert_statement(
    entity_name: str,
    targets: tuple[str, ...],
    skip_existing: bool,
    with_events: bool,
    rows: AnySelect,
    events: AnySelect | None,
) -> TextualSelect:
    """`_insert_statement`, each record also carrying the JSON text of its row as `rows` shows it (a SELECT
    of (id, json) over `written_rows(entity_name, "inserted")`) and, `with_events`, of its event as `events`
    shows it (over `written_rows("coordination_event", "events")`): the write and what it shows of itself
    in one statement, the rows read as the statement wrote them."""
    parts, _ = _insert_parts(entity_name, targets, skip_existing, with_events)
    ctes = [text(body).columns().cte(name) for name, body, _ in parts]
    ctes = [cte.prefix_with("MATERIALIZED") if part[2] else cte for cte, part in zip(ctes, parts, strict=True)]
    ctes.append(rows.cte("shown_rows"))
    selected = "i.id, i.created_at" if "created_at" in TABLES[entity_name].columns else "i.id"
    if with_events and events is not None:
        ctes.append(events.cte("shown_events"))
        tail = (
            f"SELECT checked.complete, {selected}, e.id, e.seq, (SELECT count(*) FROM notified), sr.json, se.json "
            "FROM checked LEFT JOIN (inserted AS i JOIN events AS e ON e.reference_id = i.id "
            "JOIN shown_rows AS sr ON sr.id = i.id JOIN shown_events AS se ON se.id = e.id) ON true"
        )
    elif with_events:
        tail = (
            f"SELECT checked.complete, {selected}, e.id, e.seq, (SELECT count(*) FROM notified), sr.json, NULL "
            "FROM checked LEFT JOIN (inserted AS i JOIN events AS e ON e.reference_id = i.id "
            "JOIN shown_rows AS sr ON sr.id = i.id) ON true"
        )
    else:
        tail = (
            f"SELECT checked.complete, {selected}, sr.json FROM checked "
            "LEFT JOIN (inserted AS i JOIN shown_rows AS sr ON sr.id = i.id) ON true"
        )
    return text(tail).columns().add_cte(*ctes)


async def try_insert(
    conn: AsyncConnection | DirectPool,
    ent: Entity,
    wanted: Wanted,
    rows: list[dict[str, Any]],
    rows_json: str,
    *,
    skip_existing: bool,
    with_events: bool,
    shown: ShownInsert | None = None,
    keys_check: bool = False,
) -> Inserted | None:
    """One run of `_insert_statement` for the rows (and the same as JSON): None, having inserted
    nothing, when a wanted reference is missing. On the direct pool it is a transaction of its own.
    With `shown`, the statement is the one `shown.statement` builds, and the JSON texts of the rows and
    events as it shows them are put in `shown.rows` and `shown.events` (by id).
    `keys_check`, for a statement that is its own transaction: references that foreign keys guard are
    left to them (a missing one fails the statement, a Conflict of ConflictReason.MISSING_REFERENCE,
    having written nothing), where locking and counting them first as well cost PostgreSQL a third of
    the statement. A key's check runs when the statement ends, after the events' lock is taken: a create
    referring to a row that another transaction is changing waits for it holding that lock (no row a key
    refers to belongs to an entity that records events, so that wait never closes a cycle)."""
    with_events = with_events and ent.event_type is not None
    targets, params = _reference_parameters(unkeyed(ent, wanted) if keys_check else wanted)
    statement: Any = (
        _insert_statement(ent.name, targets, skip_existing, with_events)
        if shown is None
        else shown.statement(targets, skip_existing, with_events)
    )
    params["rows"] = rows_json
    if with_events:
        params["event_type"] = ent.event_type
    unset = _unset_row(ent.name)
    dated = "created_at" in unset
    if isinstance(conn, DirectPool):
        compiled = conn.compiled(statement)
        records = [tuple(r) for r in await conn.fetch(compiled, compiled.arguments(params))]
    else:
        records = [tuple(r) for r in await conn.execute(statement, params)]
    if not records[0][0]:
        return None
    given = {row["id"]: row for row in rows}
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
        if shown is not None:
            shown.rows[id] = record[-2 if with_events else -1]
            if with_events:
                shown.events[record[3 if dated else 2]] = record[-1]
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


@lru_cache(maxsize=16)
def _unset_row(entity_name: str) -> dict[str, None]:
    """Every column of the entity's table, none set (copied into each row stored, never changed)."""
    return dict.fromkeys(c.name for c in TABLES[entity_name].columns)


# ---------------------------------------------------------------- upserting

# A row an upsert left as stored: (row, whether it was inserted, whether an existing row was changed).
Upserted = tuple[dict[str, Any], bool, bool]


@lru_cache(maxsize=64)
def _upsert_statement(entity_name: str, targets: tuple[str, ...], columns: tuple[str, ...], owned: bool) -> TextClause:
    """Check and lock the references (`complete`, the first column), then insert the rows given as JSON
    (:rows) or set `columns` of the existing rows of their ids where that changes them (INSERT ... ON
    CONFLICT DO UPDATE), `owned`: only rows of the actor :owner. One record per row written, as stored,
    and whether it was inserted."""
    table = TABLES[entity_name]
    quoted, values, ctes = _checked_rows(table, targets)
    assignments = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns)
    old = ", ".join(f't."{c}"' for c in columns)
    new = ", ".join(f'EXCLUDED."{c}"' for c in columns)
    mine = ' AND t."actor_id" = CAST(:owner AS text)' if owned else ""
    ctes.append(f"""written AS (
        INSERT INTO {table.name} AS t ({quoted})
        SELECT {values} FROM checked, json_populate_recordset(NULL::{table.name}, CAST(:rows AS json)) AS g
        WHERE checked.complete
        ON CONFLICT (id) DO UPDATE SET {assignments} WHERE ROW({old}) IS DISTINCT FROM ROW({new}){mine}
        RETURNING t.*, (t.xmax = 0) AS inserted)""")
    return text(
        "WITH " + ",\n".join(ctes) + "\nSELECT checked.complete, w.* FROM checked LEFT JOIN written AS w ON true"
    )


async def try_upsert(
    conn: AsyncConnection,
    ent: Entity,
    wanted: Wanted,
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    *,
    owner: str | None = None,
) -> list[Upserted] | None:
    """One run of `_upsert_statement` for rows that all give exactly `columns` (besides id): each row as
    stored, in no particular order; None, having written nothing, when a wanted reference is missing.
    With `owner`, existing rows of another actor are left as they are (and returned so)."""
    targets, params = _reference_parameters(wanted)
    params["rows"] = rows_json(rows)
    if owner is not None:
        params["owner"] = owner
    statement = _upsert_statement(ent.name, targets, columns, owner is not None)
    records = (await conn.execute(statement, params)).mappings().all()
    if not records[0]["complete"]:
        return None
    written: list[Upserted] = []
    for record in records:
        if record["id"] is None:  # the one record of a statement that wrote nothing
            continue
        row = {k: v for k, v in record.items() if k not in ("complete", "inserted")}
        written.append((row, record["inserted"], not record["inserted"]))
    # A row whose fields already held the values is not written, so not returned, but locked (ON CONFLICT
    # DO UPDATE locks the row whatever its WHERE says). It is read by a statement of its own: one whose
    # snapshot is taken now sees it even when it was committed while the upsert waited for it.
    kept = sorted({row["id"] for row in rows} - {row["id"] for row, _, _ in written})
    if kept:
        table = TABLES[ent.name]
        reading = select(table).where(table.c.id == any_(bindparam("kept", kept, type_=ARRAY(Text))))
        written += [(dict(r), False, False) for r in (await conn.execute(reading)).mappings()]
    return written


# ---------------------------------------------------------------- hierarchies


@lru_cache(maxsize=4)
def _cycles_statement(entity_name: str, parent_column: str) -> TextClause:
    """The rows among :ids that are their own ancestor, following `parent_column` upwards."""
    table = TABLES[entity_name].name
    parent = f'"{parent_column}"'
    return text(
        f"""
        WITH RECURSIVE ancestors(start_id, id, depth) AS (
            SELECT g.id, g.{parent}, 1 FROM {table} g
            WHERE g.id = ANY(CAST(:ids AS text[])) AND g.{parent} IS NOT NULL
          UNION ALL
            SELECT a.start_id, g.{parent}, a.depth + 1
            FROM ancestors a JOIN {table} g ON g.id = a.id
            WHERE g.{parent} IS NOT NULL AND a.id <> a.start_id AND a.depth < {MAX_DEPTH}
        )
        SELECT DISTINCT start_id FROM ancestors WHERE id = start_id ORDER BY start_id
        """
    )


async def own_ancestors(conn: AsyncConnection, ent: Entity, parent_column: str, ids: list[str]) -> list[str]:
    """Which of `ids` are now their own ancestor; the hierarchy lock is held until commit, so that
    no concurrent write can close a cycle this one does not see."""
    await conn.execute(select(func.pg_advisory_xact_lock(HIERARCHY_LOCK_KEY)))
    return list(await conn.scalars(_cycles_statement(ent.name, parent_column), {"ids": ids}))
