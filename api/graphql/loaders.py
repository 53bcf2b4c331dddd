"""DataLoaders, created per request, so that nested fields cost one statement per field, never per row.

Each loader runs one plan for a whole batch of parents. For a relation, the
plan reads the parents by id and embeds the related rows; the plan applies
the relation's filter, order and limit per parent inside that one statement.
Loaders are keyed by the relation, its arguments and the field's place in the
query (its path without list indices): every parent at one place arrives from
one batch, so each place costs exactly one statement, whatever the timing of
the other branches of the query.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from api.entities import ENTITIES
from api.graphql.rows import COLUMNS
from api.plan import Column, Condition, Count, Embed, Filter, Paged, PageField, ReadPlan, Summary, Window
from api.store import Reader

Row = dict[str, Any]
V = TypeVar("V")


class Loaders:
    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._loaders: dict[Hashable, DataLoader[str, Any]] = {}

    def by_id(self, entity_name: str, at: Hashable = ()) -> DataLoader[str, Row | None]:
        """Rows of an entity by id (None where there is none)."""

        async def load(ids: Sequence[str]) -> list[Row | None]:
            plan = ReadPlan(entity_name, where=Condition("id", "in", list(ids)), columns=COLUMNS[entity_name])
            found = {row["id"]: row for row in await self._rows(plan)}
            return [found.get(i) for i in ids]

        return self._loader(("by_id", entity_name, at), load)

    def related(self, entity_name: str, relation: str, plan: ReadPlan, at: Hashable = ()) -> DataLoader[str, list[Row]]:
        """Rows related to each parent id through `relation`, as `plan` selects them per parent."""

        async def load(ids: Sequence[str]) -> list[list[Row]]:
            parents = ReadPlan(
                entity_name,
                where=Condition("id", "in", list(ids)),
                columns=(Column("id", "id"),),
                embeds=(Embed("related", relation, plan),),
            )
            found = {row["id"]: row["related"] for row in await self._rows(parents)}
            return [found.get(i) or [] for i in ids]

        return self._loader(("related", entity_name, relation, repr(plan), at), load)

    def count(self, entity_name: str, relation: str, where: Filter | None, at: Hashable = ()) -> DataLoader[str, int]:
        """The number of rows related to each parent id that match `where`."""

        async def load(ids: Sequence[str]) -> list[int]:
            parents = ReadPlan(
                entity_name,
                where=Condition("id", "in", list(ids)),
                columns=(Column("id", "id"),),
                counts=(Count("count", relation, where),),
            )
            found = {row["id"]: row["count"] for row in await self._rows(parents)}
            return [found.get(i, 0) for i in ids]

        return self._loader(("count", entity_name, relation, repr(where), at), load)

    def summary(
        self, entity_name: str, relation: str, where: Filter | None, summary: Summary, at: Hashable = ()
    ) -> DataLoader[str, Any]:
        """The JSON value of `summary` over the rows related to each parent id that match `where`."""
        link = ENTITIES[entity_name].relation(relation)
        assert link is not None

        async def load(ids: Sequence[str]) -> list[Any]:
            parents = ReadPlan(
                entity_name,
                where=Condition("id", "in", list(ids)),
                columns=(Column("id", "id"),),
                pages=(summary_page("summary", relation, link.target, where, summary),),
            )
            found = {row["id"]: row["summary"]["summary"] for row in await self._rows(parents)}
            return [found[i] for i in ids]

        return self._loader(("summary", entity_name, relation, repr(where), repr(summary), at), load)

    async def _rows(self, plan: ReadPlan) -> list[Row]:
        rows: list[Row] = json.loads(await self.reader.json_array(plan))
        return rows

    def _loader(self, key: Hashable, load: Callable[[list[str]], Awaitable[list[V]]]) -> DataLoader[str, V]:
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = DataLoader(load_fn=load)
        return loader


def summary_page(key: str, relation: str | None, entity_name: str, where: Filter | None, summary: Summary) -> Paged:
    """A page object holding only `summary` (under `key`) of the rows matching `where`: no row is read."""
    return Paged(
        key,
        relation,
        ReadPlan(entity_name),
        Window(0),
        (PageField(key, "summary", summary=summary),),
        total_where=where,
    )


def place(path: Any) -> tuple[str, ...]:
    """A field's place in the query: its response path without list indices."""
    return tuple(key for key in path.as_list() if isinstance(key, str))
