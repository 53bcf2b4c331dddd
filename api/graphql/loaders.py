"""DataLoaders, created per request, so that nested fields cost one statement per field, never per row.

Each loader runs one plan for a whole batch of parents. For a relation, the
plan reads the parents by id and embeds the related rows; the plan applies
the relation's filter, order and limit per parent inside that one statement.
Loaders are keyed by the relation and its arguments, so that different
arguments batch separately.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from ..plan import Column, Condition, Count, Embed, Filter, ReadPlan
from ..reads import Reader
from .rows import COLUMNS

Row = dict[str, Any]


class Loaders:
    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._loaders: dict[Hashable, DataLoader] = {}

    def by_id(self, entity_name: str) -> DataLoader[str, Row | None]:
        """Rows of an entity by id (None where there is none)."""

        async def load(ids: Sequence[str]) -> list[Row | None]:
            plan = ReadPlan(entity_name, where=Condition("id", "in", list(ids)), columns=COLUMNS[entity_name])
            found = {row["id"]: row for row in await self._rows(plan)}
            return [found.get(i) for i in ids]

        return self._loader(("by_id", entity_name), load)

    def related(self, entity_name: str, relation: str, plan: ReadPlan) -> DataLoader[str, list[Row]]:
        """Rows related to each parent id through `relation`, as `plan` selects them per parent."""

        async def load(ids: Sequence[str]) -> list[list[Row]]:
            parents = ReadPlan(entity_name, where=Condition("id", "in", list(ids)), columns=(Column("id", "id"),),
                               embeds=(Embed("related", relation, plan),))
            found = {row["id"]: row["related"] for row in await self._rows(parents)}
            return [found.get(i) or [] for i in ids]

        return self._loader(("related", entity_name, relation, repr(plan)), load)

    def count(self, entity_name: str, relation: str, where: Filter | None) -> DataLoader[str, int]:
        """The number of rows related to each parent id that match `where`."""

        async def load(ids: Sequence[str]) -> list[int]:
            parents = ReadPlan(entity_name, where=Condition("id", "in", list(ids)), columns=(Column("id", "id"),),
                               counts=(Count("count", relation, where),))
            found = {row["id"]: row["count"] for row in await self._rows(parents)}
            return [found.get(i, 0) for i in ids]

        return self._loader(("count", entity_name, relation, repr(where)), load)

    async def _rows(self, plan: ReadPlan) -> list[Row]:
        return json.loads(await self.reader.json_array(plan))

    def _loader(self, key: Hashable, load: Any) -> DataLoader:
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = DataLoader(load_fn=load)
        return loader
