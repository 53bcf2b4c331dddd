"""Supabase's PostgREST client from PyPI (`postgrest`), pointed at this server, works unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from postgrest import APIError, AsyncPostgrestClient, CountMethod
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows, table_counts


@pytest_asyncio.fixture(loop_scope="session")
async def client(clean: AsyncEngine, server_url: str) -> AsyncIterator[AsyncPostgrestClient]:
    async with AsyncPostgrestClient(server_url) as client:
        yield client


async def test_insert_select_filter_order_range_count(client: AsyncPostgrestClient) -> None:
    people = [
        {"id": f"p-{i}", "actor_type": "person", "name": f"Person {i}", "role": "Engineer" if i % 2 else None}
        for i in range(6)
    ]
    inserted = await client.from_("actors").insert(people).execute()
    assert sorted(a["id"] for a in inserted.data) == [f"p-{i}" for i in range(6)]

    response = await (
        client.from_("actors")
        .select("id,name", count=CountMethod.exact)
        .eq("actor_type", "person")
        .order("id", desc=True)
        .range(1, 2)
        .execute()
    )
    assert response.data == [{"id": "p-4", "name": "Person 4"}, {"id": "p-3", "name": "Person 3"}]
    assert response.count == 6

    response = await client.from_("actors").select("id").in_("id", ["p-1", "p-2"]).order("id").execute()
    assert [a["id"] for a in response.data] == ["p-1", "p-2"]
    response = await client.from_("actors").select("id").is_("role", "null").order("id").execute()
    assert [a["id"] for a in response.data] == ["p-0", "p-2", "p-4"]
    response = await client.from_("actors").select("id").ilike("name", "%son 5").execute()
    assert response.data == [{"id": "p-5"}]
    response = await client.from_("actors").select("id").or_("id.eq.p-0,id.eq.p-5").order("id").execute()
    assert [a["id"] for a in response.data] == ["p-0", "p-5"]
    response = await client.from_("actors").select("id").neq("id", "p-0").limit(2).order("id").execute()
    assert [a["id"] for a in response.data] == ["p-1", "p-2"]
    single = await client.from_("actors").select("*").eq("id", "p-3").single().execute()
    assert single.data == {"id": "p-3", "actor_type": "person", "name": "Person 3", "role": "Engineer"}
    maybe = await client.from_("actors").select("*").eq("id", "nobody").maybe_single().execute()
    assert maybe is None or maybe.data is None
    head = await client.from_("actors").select("*", count=CountMethod.exact, head=True).execute()
    assert head.count == 6


async def test_embedding_and_containment(client: AsyncPostgrestClient) -> None:
    await client.from_("actors").insert({"id": "p-1", "actor_type": "person", "name": "Quinn"}).execute()
    await client.from_("teams").insert({"id": "t-1", "name": "Product", "member_ids": ["p-1"]}).execute()
    await (
        client.from_("team_checkins")
        .insert({"id": "c-1", "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22"})
        .execute()
    )
    response = await client.from_("teams").select("id").contains("member_ids", ["p-1"]).execute()
    assert response.data == [{"id": "t-1"}]
    response = await client.from_("team_checkins").select("id, actor:actors(name)").execute()
    assert response.data == [{"id": "c-1", "actor": {"name": "Quinn"}}]


async def test_aggregates_and_spreads(client: AsyncPostgrestClient, clean: AsyncEngine) -> None:
    await (
        client.from_("actors")
        .insert(
            [
                {"id": "p-1", "actor_type": "person", "name": "Quinn"},
                {"id": "p-2", "actor_type": "person", "name": "Ada"},
            ]
        )
        .execute()
    )
    await (
        client.from_("goal_stories")
        .insert([{"id": "g-1", "title": "Onboarding"}, {"id": "g-2", "title": "Quiet"}])
        .execute()
    )
    updates = [
        ("u-1", "p-1", "2026-05-01", "on_track", 40),
        ("u-2", "p-2", "2026-05-02", "at_risk", 20),
        ("u-3", "p-1", "2026-05-03", "on_track", None),
    ]
    await (
        client.from_("goal_story_updates")
        .insert(
            [
                {"id": id, "actor_id": actor, "goal_story_id": "g-1", "date": date, "title": "t", "content": "c"}
                | {"status": status, "progress_percent": progress}
                for id, actor, date, status, progress in updates
            ]
        )
        .execute()
    )
    response = await (
        client.from_("goal_story_updates")
        .select("status, count(), progress_percent.avg(), last:date.max()", count=CountMethod.exact)
        .order("status")
        .execute()
    )
    assert response.data == [
        {"status": "at_risk", "count": 1, "avg": 20, "last": "2026-05-02"},
        {"status": "on_track", "count": 2, "avg": 40, "last": "2026-05-03"},
    ]
    assert response.count == 2
    response = (
        await client.from_("goal_story_updates").select("count(), ...actor(name)").eq("status", "on_track").execute()
    )
    assert response.data == [{"count": 2, "name": "Quinn"}]
    response = await (
        client.from_("goal_stories")
        .select("title, ...goal_story_updates(statuses:status)")
        .order("title")
        .order("id", foreign_table="goal_story_updates")
        .execute()
    )
    assert response.data == [
        {"title": "Onboarding", "statuses": ["on_track", "at_risk", "on_track"]},
        {"title": "Quiet", "statuses": []},
    ]
    with pytest.raises(APIError) as caught:
        await client.from_("goal_story_updates").select("title.sum()").execute()
    assert (caught.value.code, caught.value.message) == ("42883", "function sum(text) does not exist")


async def test_upsert_update_delete(client: AsyncPostgrestClient, clean: AsyncEngine) -> None:
    await client.from_("actors").insert({"id": "p-1", "actor_type": "person", "name": "Old"}).execute()
    response = (
        await client.from_("actors")
        .upsert(
            [{"id": "p-1", "actor_type": "person", "name": "New"}, {"id": "p-2", "actor_type": "agent", "name": "Bot"}],
            on_conflict="id",
        )
        .execute()
    )
    assert {a["id"]: a["name"] for a in response.data} == {"p-1": "New", "p-2": "Bot"}
    response = (
        await client.from_("actors")
        .upsert({"id": "p-2", "actor_type": "agent", "name": "Ignored"}, ignore_duplicates=True)
        .execute()
    )
    assert response.data == []
    response = await client.from_("actors").update({"role": "Lead"}).eq("id", "p-1").execute()
    assert response.data == [{"id": "p-1", "actor_type": "person", "name": "New", "role": "Lead"}]
    response = await client.from_("actors").delete(count=CountMethod.exact).eq("id", "p-2").execute()
    assert response.data[0]["id"] == "p-2"
    assert await count_rows(clean, "actors") == 1


async def test_errors_reach_the_client_as_api_errors(client: AsyncPostgrestClient, clean: AsyncEngine) -> None:
    await client.from_("actors").insert({"id": "p-1", "actor_type": "person", "name": "Quinn"}).execute()
    counts = await table_counts(clean)
    with pytest.raises(APIError) as caught:
        await client.from_("actors").insert({"id": "p-1", "actor_type": "person", "name": "Again"}).execute()
    assert caught.value.code == "23505"
    with pytest.raises(APIError) as caught:
        await client.from_("coordination_events").delete().eq("id", "x").execute()
    assert caught.value.code == "25006"
    with pytest.raises(APIError) as caught:
        await client.from_("nothing").select("*").execute()
    assert caught.value.code == "PGRST205"
    assert await table_counts(clean) == counts
