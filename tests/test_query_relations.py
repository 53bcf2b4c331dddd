"""Embedded relations over several parents at once: each parent gets only its own related rows."""

from __future__ import annotations

import json

from api.plan import Column, Condition, Count, Embed, ReadPlan
from api.store.reads import Reader
from api.store.writes import WriteService


async def test_list_reverse_embeds_and_counts_per_parent(writer: WriteService, reader: Reader) -> None:
    await writer.create("actor", [{"id": f"a-{i}", "actor_type": "person", "name": str(i)} for i in range(3)])
    await writer.create(
        "team",
        [
            {"id": "t-0", "name": "zero", "member_ids": ["a-0", "a-1"]},
            {"id": "t-1", "name": "one", "member_ids": ["a-1"]},
        ],
    )
    plan = ReadPlan(
        "actor",
        where=Condition("id", "in", ["a-0", "a-1", "a-2"]),
        order=(),
        columns=(Column("id", "id"),),
        embeds=(Embed("teams", "teams", ReadPlan("team", columns=(Column("id", "id"),))),),
        counts=(Count("n", "teams"),),
    )
    rows = {r["id"]: r for r in json.loads(await reader.json_array(plan))}
    assert rows["a-0"] == {"id": "a-0", "teams": [{"id": "t-0"}], "n": 1}
    assert sorted(t["id"] for t in rows["a-1"]["teams"]) == ["t-0", "t-1"] and rows["a-1"]["n"] == 2
    assert rows["a-2"] == {"id": "a-2", "teams": [], "n": 0}
