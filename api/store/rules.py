"""The write service's rules: what may be written, and the domain error that says why not.

Each rule is stated once here, with the one place its conflict is built:
- only writable entities are written through the APIs;
- ids are unique, within a request as in the table;
- every id a row refers to exists (or is created by the same request);
- a row still referred to is not deleted;
- an id, once given, never changes;
- in an entity whose rows name a parent (`Entity.parent_field`), no row is its own ancestor;
- a token that acts as an actor writes check-ins and goal story updates only as that actor (a
  left-out actor_id is its own), changes and deletes only its own, and writes nothing else; a
  write token without an actor, an admin token, and callers outside requests (the CLI) are trusted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.edge.auth import current_principal
from api.entities import Entity, Kind
from api.entities import entity as entity_named
from api.errors import ActorForbidden, Conflict, ConflictReason, InvalidInput, InvalidReason, ReadOnly, listed
from api.store.statements import REFERRERS_SHOWN, Wanted, find_referrers, lock_references, own_ancestors


def writable(entity_name: str) -> Entity:
    ent = entity_named(entity_name)
    if not ent.writable:
        raise ReadOnly(ent.name, ent.resource)
    return ent


def importable(entity_name: str, index: int) -> Entity:
    try:
        return entity_named(entity_name)
    except KeyError:
        raise InvalidInput(
            f"unknown entity {entity_name!r}", field="entity", reason=InvalidReason.RULE, index=index
        ) from None


# ---------------------------------------------------------------- who writes

# The entities whose rows an actor writes as itself, in their actor_id.
ACTOR_WRITTEN = frozenset({"team_checkin", "goal_story_update"})
ACTOR_FIELD = "actor_id"


def writing_actor(ent: Entity) -> str | None:
    """The actor the caller may write `ent` only as; None when the caller is trusted. An actor-bound
    caller may write nothing but check-ins and goal story updates."""
    principal = current_principal()
    if principal is None or principal.actor is None or principal.admin:
        return None
    actor = principal.actor
    if ent.name not in ACTOR_WRITTEN:
        raise ActorForbidden(
            f"permission denied: a token that acts as actor {actor} writes only team check-ins and goal story "
            f"updates, not {ent.resource}",
            entity=ent.name,
            actor=actor,
            hint=f"Writing {ent.resource} needs a write token without an actor claim, or the admin scope",
        )
    return actor


def as_actor(ent: Entity, actor: str, documents: Sequence[Any]) -> list[Any]:
    """The documents of a create, each with `actor` as its actor_id where it left it out; a document
    naming another actor refuses them all."""
    filled: list[Any] = []
    foreign: list[tuple[int, Any]] = []
    for index, document in enumerate(documents):
        if isinstance(document, Mapping):
            given = document.get(ACTOR_FIELD)
            if given is None:
                document = {**document, ACTOR_FIELD: actor}
            elif given != actor:
                foreign.append((index, given))
        filled.append(document)
    if foreign:
        shown = ", ".join(f"{given!r} (row {index})" if len(documents) > 1 else repr(given) for index, given in foreign)
        raise ActorForbidden(
            f"permission denied: this token writes {ent.resource} only as actor {actor}, not as {shown}",
            entity=ent.name,
            actor=actor,
            ids=sorted({str(given) for _, given in foreign}),
            hint=f"Leave actor_id out (it is filled in as {actor}) or give {actor}; nothing was written",
        )
    return filled


def refuse_actor_change(ent: Entity, actor: str, changes: Mapping[str, Any]) -> None:
    if ACTOR_FIELD in changes and changes[ACTOR_FIELD] != actor:
        raise ActorForbidden(
            f"permission denied: this token writes {ent.resource} only as actor {actor}, "
            f"not as {changes[ACTOR_FIELD]!r}",
            entity=ent.name,
            actor=actor,
            ids=[str(changes[ACTOR_FIELD])],
            hint="Nothing was written",
        )


def refuse_foreign_rows(ent: Entity, actor: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows another actor wrote are not changed or deleted by an actor-bound token: one refuses all."""
    foreign = sorted(r["id"] for r in rows if r[ACTOR_FIELD] != actor)
    if foreign:
        raise ActorForbidden(
            f"permission denied: {ent.resource} {', '.join(foreign[:REFERRERS_SHOWN])} "
            f"{'were' if len(foreign) > 1 else 'was'} written by another actor; this token changes only those of "
            f"actor {actor}",
            entity=ent.name,
            actor=actor,
            ids=foreign[:REFERRERS_SHOWN],
            hint=f"Narrow the filter to actor_id=eq.{actor}; nothing was written",
        )


# ---------------------------------------------------------------- ids


def duplicate_ids(ent: Entity, ids: list[str], *, within_request: bool = False) -> Conflict:
    """The conflict of ids that are taken (or, `within_request`, given twice in one request)."""
    if within_request:
        message = f"the same {ent.name} id appears more than once in one request: {listed(ids)}"
    else:
        message = f"{ent.resource} already has {_plural('id', ids)} {listed(ids)}"
    return Conflict(message, reason=ConflictReason.DUPLICATE, entity=ent.name, ids=ids)


def repeated_ids(ids: list[str]) -> list[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def refuse_id_change(ent: Entity, changes: Mapping[str, Any], rows: list[dict[str, Any]]) -> None:
    if "id" in changes and any(row["id"] != changes["id"] for row in rows):
        raise InvalidInput(
            "id cannot be changed; create a new row instead", field="id", reason=InvalidReason.RULE, entity=ent.name
        )


# ---------------------------------------------------------------- references


def wanted_references(ent: Entity, rows: list[dict[str, Any]], batch_ids: set[str]) -> Wanted:
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


async def require_references(conn: AsyncConnection, ent: Entity, wanted: Wanted) -> None:
    """Every wanted row exists, and stays until commit (FOR KEY SHARE); else a conflict naming what is missing.

    Array references (team_ids, member_ids) have no foreign key: this check is their only guard."""
    present = await lock_references(conn, wanted)
    for target in sorted(wanted):
        for field_name, ids in wanted[target].items():
            missing = sorted(ids - present[target])
            if missing:
                raise Conflict(
                    f"{field_name} refers to {entity_named(target).resource} that do not exist: {listed(missing)}",
                    reason=ConflictReason.MISSING_REFERENCE,
                    entity=ent.name,
                    ids=missing,
                    field=field_name,
                )


async def check_references(conn: AsyncConnection, ent: Entity, rows: list[dict[str, Any]], batch_ids: set[str]) -> None:
    await require_references(conn, ent, wanted_references(ent, rows, batch_ids))


async def refuse_referenced(conn: AsyncConnection, ent: Entity, ids: list[str]) -> None:
    """Rows that other rows still refer to are not deleted; the conflict names those rows."""
    found = await find_referrers(conn, ent, ids)
    if found:
        shown = sorted(ids)[:REFERRERS_SHOWN]
        named = "; ".join(f"{resource}: {', '.join(hits)}" for resource, hits in found.items())
        raise Conflict(
            f"{ent.resource} {', '.join(shown)} still referenced by {named}",
            reason=ConflictReason.REFERENCED,
            entity=ent.name,
            ids=shown,
            referrers=found,
        )


# ---------------------------------------------------------------- hierarchies


@dataclass(frozen=True)
class Hierarchy:
    """The rows of `entity` form a tree through `parent`: none may become its own ancestor."""

    entity: Entity
    parent: str

    def sets_parent(self, row: Mapping[str, Any]) -> bool:
        return bool(row.get(self.parent))

    def refuse_own_parent(self, rows: list[dict[str, Any]]) -> None:
        looping = sorted(r["id"] for r in rows if r.get(self.parent) == r["id"])
        if looping:
            raise self.cycle(looping, own_parent=True)

    async def check(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """No row with a parent, as written, is now its own ancestor (call after the write)."""
        ids = [r["id"] for r in rows if self.sets_parent(r)]
        if not ids:
            return
        field = self.entity.field(self.parent)
        assert field is not None
        looping = await own_ancestors(conn, self.entity, field.columns[0], ids)
        if looping:
            raise self.cycle(looping)

    def parents_first(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows ordered so that each follows its parent when both are among them (for inserts
        checked row by row). Rows that never become ready are parents of each other: a cycle."""
        among = {r["id"] for r in rows}
        placed: set[str] = set()
        ordered: list[dict[str, Any]] = []
        pending = rows
        while pending:
            waiting = [r for r in pending if r.get(self.parent) in among and r[self.parent] not in placed]
            ready = [r for r in pending if not (r.get(self.parent) in among and r[self.parent] not in placed)]
            if not ready:
                raise self.cycle(sorted(r["id"] for r in waiting))
            ordered.extend(ready)
            placed.update(r["id"] for r in ready)
            pending = waiting
        return ordered

    def cycle(self, ids: list[str], *, own_parent: bool = False) -> Conflict:
        what = self.entity.title.lower()
        if own_parent:
            message = f"{_article(what)} {what} cannot be its own parent: {listed(ids)}"
        else:
            message = f"{self.parent} would make {_plural(what, ids)} {listed(ids)} its own ancestor"
        return Conflict(message, reason=ConflictReason.CYCLE, entity=self.entity.name, ids=ids, field=self.parent)


def hierarchy(ent: Entity) -> Hierarchy | None:
    return None if ent.parent_field is None else Hierarchy(ent, ent.parent_field)


def reparenting(ent: Entity, changes: Mapping[str, Any]) -> Hierarchy | None:
    """The hierarchy whose rule an update with these changes must keep: when it sets a parent."""
    tree = hierarchy(ent)
    return tree if tree is not None and tree.sets_parent(changes) else None


def _plural(word: str, items: list[str]) -> str:
    if len(items) == 1:
        return word
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"
