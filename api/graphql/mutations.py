"""The Mutation type: create, update, delete and atomic bulk create for each writable entity.

Every mutation is one call of the write service, which validates, checks
references and records the coordination events in the same transaction; the
payload serves the rows as the write service stored them. These resolvers are the reference: a
plannable mutation is answered through the compiled path (api/graphql/compiled.py), which must write and
answer exactly what they do (tests/graphql_api/test_compiled_mutations.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from strawberry import Info

from api.entities import Entity, Kind
from api.graphql.context import Context
from api.graphql.inputs import CREATE, UPDATE, WRITABLE, document
from api.graphql.names import type_name
from api.graphql.types import TYPES, CoordinationEvent, make
from api.store import WriteResult

EVENT = make(CoordinationEvent, "coordination_event")


def _as_read(ent: Entity, row: dict[str, Any]) -> dict[str, Any]:
    """A row as the write service returns it (stored columns) in the shape of a plan row (one
    value per field, a timeframe as {start, end}), which the types take as they take a read."""
    document: dict[str, Any] = {}
    for f in ent.fields:
        if f.kind is Kind.TIMEFRAME:
            start, end = (row.get(c) for c in f.columns)
            document[f.name] = (
                None
                if start is None and end is None
                else {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None}
            )
        else:
            document[f.name] = row.get(f.columns[0])
    return document


def _event(row: dict[str, Any]) -> CoordinationEvent:
    return EVENT({**row, "cursor": row["seq"]})


def _payload(name: str, description: str, fields: dict[str, tuple[Any, str]]) -> type:
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": {key: kind for key, (kind, _) in fields.items()},
    }
    namespace.update({key: strawberry.field(description=about) for key, (_, about) in fields.items()})
    return strawberry.type(type(name, (), namespace), description=description)


def _mutations(ent: Entity) -> dict[str, Any]:
    """The four mutations of one entity, as Strawberry fields keyed by their Python names."""
    node = TYPES[ent.name]
    row: Callable[[dict[str, Any]], Any] = make(node, ent.name)
    events = ent.event_type is not None
    single, plural, title = ent.name, ent.resource, ent.title.lower()
    create_input, update_input = CREATE[ent.name], UPDATE[ent.name]
    event_about = "The coordination event this write recorded"

    created = _payload(
        f"Create{type_name(ent)}Payload",
        f"The result of creating a {title}.",
        {
            single: (node, f"The {title} as stored."),
            **({"coordination_event": (CoordinationEvent, f"{event_about}.")} if events else {}),
        },
    )
    created_many = _payload(
        f"Create{_pascal(plural)}Payload",
        f"The result of creating {plural.replace('_', ' ')} in one transaction.",
        {
            plural: (list[node], f"The {plural.replace('_', ' ')} as stored, in input order."),
            **(
                {"coordination_events": (list[CoordinationEvent], f"{event_about}, one per row, in commit order.")}
                if events
                else {}
            ),
        },
    )
    updated = _payload(
        f"Update{type_name(ent)}Payload",
        f"The result of updating a {title}.",
        {
            single: (node, f"The {title} after the update."),
            **(
                {
                    "coordination_event": (
                        CoordinationEvent | None,
                        f"{event_about}; null when the update changed nothing.",
                    )
                }
                if events
                else {}
            ),
        },
    )
    deleted = _payload(
        f"Delete{type_name(ent)}Payload",
        f"The result of deleting a {title}.",
        {
            single: (node, f"The deleted {title}, as it was just before the delete."),
            "deleted_id": (strawberry.ID, f"The id of the deleted {title}."),
        },
    )

    def with_events(result: WriteResult, rows: list[dict[str, Any]], payload: type, one: bool) -> Any:
        values: dict[str, Any] = {single: row(rows[0])} if one else {plural: [row(r) for r in rows]}
        if events:
            recorded = [_event(e) for e in result.events]
            if one:
                values["coordination_event"] = recorded[-1] if recorded else None
            else:
                values["coordination_events"] = recorded
        return payload(**values)

    # The payloads serve the rows the write service returns (as stored, RETURNING every column):
    # no read back, so that a create can be committed as its one statement.
    async def create(info: Info, input: Any) -> Any:
        result = await _context(info).writer.create(ent.name, [document(ent.name, input)])
        return with_events(result, [_as_read(ent, r) for r in result.rows], created, one=True)

    async def create_many(info: Info, input: Any) -> Any:
        result = await _context(info).writer.create(ent.name, [document(ent.name, i) for i in input])
        return with_events(result, [_as_read(ent, r) for r in result.rows], created_many, one=False)

    async def update(info: Info, id: strawberry.ID, input: Any) -> Any:
        result = await _context(info).writer.update_one(ent.name, id, document(ent.name, input))
        return with_events(result, [_as_read(ent, r) for r in result.rows], updated, one=True)

    async def delete(info: Info, id: strawberry.ID) -> Any:
        result = await _context(info).writer.delete_one(ent.name, id)
        return deleted(**{single: row(_as_read(ent, result.rows[0])), "deleted_id": id})

    create.__annotations__ = {"info": Info, "input": create_input, "return": created}
    create_many.__annotations__ = {"info": Info, "input": list[create_input], "return": created_many}
    update.__annotations__ = {"info": Info, "id": strawberry.ID, "input": update_input, "return": updated}
    delete.__annotations__ = {"info": Info, "id": strawberry.ID, "return": deleted}
    return {
        f"create_{single}": strawberry.mutation(resolver=create, description=f"Create a {title}."),
        f"update_{single}": strawberry.mutation(
            resolver=update,
            description=f"Change a {title}: fields left out stay, an explicit null clears."
            + (" A change records a coordination event; a no-op records none." if events else ""),
        ),
        f"delete_{single}": strawberry.mutation(
            resolver=delete,
            description=f"Delete a {title}; refused with CONFLICT while other rows refer to it."
            + (" Its coordination events stay." if events else ""),
        ),
        f"create_{plural}": strawberry.mutation(
            resolver=create_many, description=f"Create many {plural.replace('_', ' ')} atomically: all or none."
        ),
    }


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _context(info: Info) -> Context:
    context: Context = info.context
    return context


def _mutation_type() -> type:
    namespace: dict[str, Any] = {"__module__": __name__}
    for ent in WRITABLE:
        namespace.update(_mutations(ent))
    return strawberry.type(
        type("Mutation", (), namespace),
        description="Writes. Each runs in one transaction; check-ins and goal story updates "
        "record their coordination events in it.",
    )


Mutation = _mutation_type()
