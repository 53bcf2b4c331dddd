"""POST, PATCH, PUT, DELETE with every Prefer option, columns=, on_conflict, Location, Preference-Applied."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ops.schemas import validator
from tests.conftest import count_rows, table_counts, until_a_lock_is_awaited

JSON = {"Content-Type": "application/json"}


def prefer(value: str) -> dict[str, str]:
    return {**JSON, "Prefer": value}


async def test_post_return_options(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    actor = {"id": "p-1", "actor_type": "person", "name": "Quinn"}
    r = await http.post("/actors", json=actor, headers=prefer("return=minimal"))
    assert (r.status_code, r.content) == (201, b"")
    assert r.headers["preference-applied"] == "return=minimal"
    assert r.headers["content-range"] == "*/*"
    assert "location" not in r.headers

    r = await http.post("/actors", json={**actor, "id": "p 2/x"}, headers=prefer("return=headers-only"))
    assert (r.status_code, r.content) == (201, b"")
    assert r.headers["location"] == "/actors?id=eq.p%202%2Fx"
    assert (await http.get(r.headers["location"])).json()[0]["id"] == "p 2/x"

    r = await http.post("/actors", json={**actor, "id": "p-3"}, headers=prefer("return=representation"))
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.json() == [{**actor, "id": "p-3"}]

    r = await http.post(
        "/actors",
        json={**actor, "id": "p-4"},
        headers={**prefer("return=representation"), "Accept": "application/vnd.pgrst.object+json"},
    )
    assert r.json() == {**actor, "id": "p-4"}

    r = await http.post("/actors?select=name", json={**actor, "id": "p-5"}, headers=prefer("return=representation"))
    assert r.json() == [{"name": "Quinn"}]

    r = await http.post(
        "/actors",
        json=[{**actor, "id": "p-6"}, {**actor, "id": "p-7"}],
        headers=prefer("return=representation, count=exact"),
    )
    assert r.status_code == 201
    assert sorted(a["id"] for a in r.json()) == ["p-6", "p-7"]
    assert r.headers["content-range"] == "*/2"
    assert r.headers["preference-applied"] == "return=representation, count=exact"


async def test_post_with_embedding_in_the_representation(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    await http.post("/actors", json={"id": "p-1", "actor_type": "person", "name": "Quinn"}, headers=JSON)
    await http.post("/teams", json={"id": "t-1", "name": "Product", "member_ids": ["p-1"]}, headers=JSON)
    r = await http.post(
        "/team_checkins?select=*,actor:actors(name),team:teams(name)",
        json={"id": "c-1", "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-22"},
        headers=prefer("return=representation"),
    )
    [row] = r.json()
    assert row["actor"] == {"name": "Quinn"} and row["team"] == {"name": "Product"}
    validator("team_checkin").validate({k: v for k, v in row.items() if k not in ("actor", "team")})


async def test_columns_and_missing_default(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    body = [
        {"id": "p-1", "actor_type": "person", "name": "A", "role": "x", "ignored": 1},
        {"id": "p-2", "actor_type": "person", "name": "B"},
    ]
    r = await http.post("/actors?columns=id,actor_type,name", json=body, headers=prefer("return=representation"))
    assert r.status_code == 201
    assert sorted(r.json(), key=lambda a: a["id"]) == [
        {"id": "p-1", "actor_type": "person", "name": "A"},
        {"id": "p-2", "actor_type": "person", "name": "B"},
    ]
    # columns name a field the payload lacks: null without missing=default, the default with it
    await http.post("/teams", json={"id": "t-1", "name": "T"}, headers=JSON)
    r = await http.post(
        "/team_checkins?columns=id,actor_id,team_id,date,created_at",
        json={"id": "c-1", "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-01"},
        headers=prefer("return=representation"),
    )
    assert r.status_code == 400
    assert r.json()["code"] == "23502"
    r = await http.post(
        "/team_checkins?columns=id,actor_id,team_id,date,created_at",
        json={"id": "c-1", "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-01"},
        headers=prefer("return=representation,missing=default"),
    )
    assert r.status_code == 201
    assert r.headers["preference-applied"] == "missing=default, return=representation"
    assert r.json()[0]["created_at"]


async def test_upsert_with_resolution(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    await http.post("/actors", json={"id": "p-1", "actor_type": "person", "name": "Old", "role": "keep"}, headers=JSON)
    body = [{"id": "p-1", "actor_type": "person", "name": "New"}, {"id": "p-2", "actor_type": "agent", "name": "Bot"}]
    r = await http.post(
        "/actors?on_conflict=id", json=body, headers=prefer("return=representation,resolution=merge-duplicates")
    )
    assert r.status_code == 201
    assert r.headers["preference-applied"] == "resolution=merge-duplicates, return=representation"
    rows = {a["id"]: a for a in r.json()}
    assert rows["p-1"] == {"id": "p-1", "actor_type": "person", "name": "New", "role": "keep"}
    # merging rows that all exist inserts nothing: 200
    r = await http.post(
        "/actors",
        json=[{"id": "p-1", "actor_type": "person", "name": "Newer"}],
        headers=prefer("resolution=merge-duplicates"),
    )
    assert r.status_code == 200
    r = await http.post(
        "/actors",
        json=[
            {"id": "p-1", "actor_type": "person", "name": "Ignored"},
            {"id": "p-3", "actor_type": "person", "name": "Third"},
        ],
        headers=prefer("return=representation,resolution=ignore-duplicates"),
    )
    assert r.status_code == 201
    assert [a["id"] for a in r.json()] == ["p-3"]
    assert (await http.get("/actors?id=eq.p-1")).json()[0]["name"] == "Newer"
    counts = await table_counts(clean)
    r = await http.post(
        "/actors?on_conflict=name",
        json={"id": "p-1", "actor_type": "person", "name": "x"},
        headers=prefer("resolution=merge-duplicates"),
    )
    assert (r.status_code, r.json()["code"]) == (400, "42P10")
    assert await table_counts(clean) == counts


async def test_patch(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    await http.post(
        "/actors", json=[{"id": f"p-{i}", "actor_type": "person", "name": f"P{i}"} for i in range(5)], headers=JSON
    )
    r = await http.patch("/actors?id=in.(p-1,p-2)", json={"role": "Engineer"}, headers=JSON)
    assert r.status_code == 204
    assert r.headers["content-range"] == "0-1/*"
    r = await http.patch("/actors?id=eq.p-1", json={"role": None}, headers=prefer("return=representation"))
    assert r.status_code == 200
    assert r.json() == [{"id": "p-1", "actor_type": "person", "name": "P1"}]
    r = await http.patch(
        "/actors?id=eq.p-1&select=id,role", json={"role": "Lead"}, headers=prefer("return=representation,count=exact")
    )
    assert r.json() == [{"id": "p-1", "role": "Lead"}]
    assert r.headers["content-range"] == "0-0/1"
    r = await http.patch("/actors?id=eq.nobody", json={"role": "x"}, headers=JSON)
    assert (r.status_code, r.headers["content-range"]) == (204, "*/*")
    # an empty object updates nothing, as PostgREST answers it
    r = await http.patch("/actors?id=eq.p-1", json={}, headers=prefer("return=representation"))
    assert (r.status_code, r.json(), r.headers["content-range"]) == (200, [], "*/*")
    # limit with order picks the rows
    r = await http.patch(
        "/actors?order=id.desc&limit=2", json={"role": "Last two"}, headers=prefer("return=representation")
    )
    assert sorted(a["id"] for a in r.json()) == ["p-3", "p-4"]
    # a single object must be exactly one row, else nothing changes
    r = await http.patch(
        "/actors?actor_type=eq.person",
        json={"role": "everyone"},
        headers={**prefer("return=representation"), "Accept": "application/vnd.pgrst.object+json"},
    )
    assert (r.status_code, r.json()["code"]) == (406, "PGRST116")
    assert (await http.get("/actors?role=eq.everyone")).json() == []
    # max-affected with handling=strict
    r = await http.patch(
        "/actors?actor_type=eq.person", json={"role": "many"}, headers=prefer("handling=strict, max-affected=2")
    )
    assert (r.status_code, r.json()["code"]) == (400, "PGRST124")
    assert (await http.get("/actors?role=eq.many")).json() == []
    r = await http.patch("/actors?id=eq.p-0", json={"role": "one"}, headers=prefer("handling=strict, max-affected=2"))
    assert r.status_code == 204
    assert r.headers["preference-applied"] == "handling=strict, max-affected=2"


async def test_patch_and_delete_of_checkins_record_events(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    await http.post("/actors", json={"id": "p-1", "actor_type": "person", "name": "Q"}, headers=JSON)
    await http.post("/teams", json={"id": "t-1", "name": "T"}, headers=JSON)
    await http.post(
        "/team_checkins", json={"id": "c-1", "actor_id": "p-1", "team_id": "t-1", "date": "2026-05-01"}, headers=JSON
    )
    assert await count_rows(clean, "coordination_events") == 1
    await http.patch("/team_checkins?id=eq.c-1", json={"next": ["ship"]}, headers=JSON)
    assert await count_rows(clean, "coordination_events") == 2
    await http.patch("/team_checkins?id=eq.c-1", json={"next": ["ship"]}, headers=JSON)
    assert await count_rows(clean, "coordination_events") == 2
    r = await http.delete("/team_checkins?id=eq.c-1", headers=prefer("return=representation"))
    assert r.status_code == 200
    assert r.json()[0]["id"] == "c-1"
    assert await count_rows(clean, "team_checkins") == 0
    assert await count_rows(clean, "coordination_events") == 2


async def test_delete(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    await http.post(
        "/actors", json=[{"id": f"p-{i}", "actor_type": "person", "name": f"P{i}"} for i in range(5)], headers=JSON
    )
    r = await http.delete("/actors?id=eq.p-0")
    assert (r.status_code, r.headers["content-range"]) == (204, "*/*")
    r = await http.delete("/actors?id=in.(p-1,p-2)", headers={"Prefer": "return=representation,count=exact"})
    assert r.status_code == 200
    assert sorted(a["id"] for a in r.json()) == ["p-1", "p-2"]
    assert r.headers["content-range"] == "*/2"
    r = await http.delete("/actors?order=id&limit=1")
    assert await count_rows(clean, "actors") == 1
    assert (await http.get("/actors")).json()[0]["id"] == "p-4"


async def test_limited_patch_and_delete_pick_their_rows_inside_the_write(
    clean: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """PATCH and DELETE with order and limit change the first rows in that order as they are when the
    write runs: a row a concurrent transaction takes out of the filter meanwhile is passed over."""
    names = {"w-1": "Alpha", "w-2": "Bravo", "w-3": "Charlie", "w-4": "Delta"}
    for id, name in names.items():
        await http.post("/actors", json={"id": id, "actor_type": "person", "name": name}, headers=JSON)
    for method, body in (("PATCH", {"role": "first two"}), ("DELETE", None)):
        async with clean.connect() as other:
            await other.execute(text("UPDATE actors SET actor_type = 'agent' WHERE id = 'w-1'"))
            waiting = asyncio.create_task(
                http.request(
                    method,
                    "/actors?actor_type=eq.person&order=name&limit=2&select=id",
                    json=body,
                    headers=prefer("return=representation"),
                )
            )
            await until_a_lock_is_awaited(clean)
            await other.commit()
        answer = await waiting
        assert answer.status_code == 200, answer.text
        assert sorted(r["id"] for r in answer.json()) == ["w-2", "w-3"], method
        await http.patch("/actors?id=eq.w-1", json={"actor_type": "person"}, headers=JSON)
    rows = (await http.get("/actors?order=id&select=id,role")).json()
    assert rows == [{"id": "w-1", "role": None}, {"id": "w-4", "role": None}]


async def test_put_single_row_upsert(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    actor = {"id": "p-1", "actor_type": "person", "name": "Quinn"}
    r = await http.put("/actors?id=eq.p-1", json=actor, headers=prefer("return=representation"))
    assert (r.status_code, r.json()) == (201, [actor])
    r = await http.put("/actors?id=eq.p-1", json={**actor, "name": "Q"}, headers=prefer("return=representation"))
    assert (r.status_code, r.json()) == (200, [{**actor, "name": "Q"}])
    r = await http.put("/actors?id=eq.p-1", json={**actor, "role": "PM"}, headers=JSON)
    assert r.status_code == 204
    counts = await table_counts(clean)
    for url, body, status, code in [
        ("/actors?id=eq.p-2", actor, 400, "PGRST115"),
        ("/actors?id=eq.p-1", [actor, actor], 400, "PGRST115"),
        ("/actors?name=eq.Quinn", actor, 405, "PGRST105"),
        ("/actors?id=gt.p-1", actor, 405, "PGRST105"),
        ("/actors?id=eq.p-1&name=eq.Quinn", actor, 405, "PGRST105"),
        ("/actors?id=eq.p-1&or=(id.eq.p-1)", actor, 405, "PGRST105"),
        ("/actors", actor, 405, "PGRST105"),
        ("/actors?id=eq.p-1&limit=1", actor, 400, "PGRST114"),
    ]:
        r = await http.put(url, json=body, headers=JSON)
        assert (r.status_code, r.json()["code"]) == (status, code), url
    assert await table_counts(clean) == counts


async def test_handling_strict_and_lenient(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    actor = {"id": "p-1", "actor_type": "person", "name": "Quinn"}
    r = await http.post("/actors", json=actor, headers=prefer("handling=lenient, nonsense=1"))
    assert r.status_code == 201
    assert r.headers["preference-applied"] == "handling=lenient"
    r = await http.post("/actors", json={**actor, "id": "p-2"}, headers=prefer("handling=strict, nonsense=1, x"))
    assert r.status_code == 400
    assert r.json() == {
        "code": "PGRST122",
        "message": "Invalid preferences given with handling=strict",
        "details": "Invalid preferences: nonsense=1, x",
        "hint": None,
    }
    assert await count_rows(clean, "actors") == 1
    r = await http.get("/actors", headers={"Prefer": "handling=strict, count=sometimes"})
    assert (r.status_code, r.json()["code"]) == (400, "PGRST122")


async def test_preferences_this_server_does_not_apply_are_not_reported(
    clean: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # tx= is honoured by PostgREST only when its configuration allows it (off by default), so it is ignored;
    # missing=null is the default.
    actor = {"id": "p-1", "actor_type": "person", "name": "Quinn"}
    r = await http.post(
        "/actors?columns=id,actor_type,name,role",
        json=actor,
        headers=prefer("tx=rollback, missing=null, handling=strict"),
    )
    assert r.status_code == 201
    assert r.headers["preference-applied"] == "missing=null, handling=strict"
    assert (await http.get("/actors")).json() == [actor]
    r = await http.get("/actors", headers={"Prefer": "count=exact, handling=lenient"})
    assert r.headers["preference-applied"] == "count=exact, handling=lenient"
    r = await http.get("/actors", headers={"Prefer": "return=representation"})
    assert "preference-applied" not in r.headers


async def test_timezone_preference(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    story = {"id": "g-1", "title": "T", "created_at": "2026-03-05T15:15:00Z"}
    r = await http.post("/goal_stories", json=story, headers=prefer("return=representation, timezone=America/Chicago"))
    assert r.json()[0]["created_at"] == "2026-03-05T09:15:00-06:00"
    assert r.headers["preference-applied"] == "return=representation, timezone=America/Chicago"
    # a bare offset is a POSIX time zone, west of Greenwich when positive (PostgREST passes it on as we do)
    r = await http.get("/goal_stories?select=created_at", headers={"Prefer": "timezone=05:30"})
    assert r.json() == [{"created_at": "2026-03-05T09:45:00-05:30"}]
    assert r.headers["preference-applied"] == "timezone=05:30"
    r = await http.get("/goal_stories?select=created_at")
    assert r.json() == [{"created_at": "2026-03-05T15:15:00+00:00"}]
    r = await http.get("/goal_stories", headers={"Prefer": "timezone=Mars/Olympus, handling=lenient"})
    assert (r.status_code, r.json()["code"]) == (400, "22023")
    counts = await table_counts(clean)
    r = await http.post(
        "/goal_stories", json={**story, "id": "g-2"}, headers=prefer("return=representation, timezone=Mars/Olympus")
    )
    assert (r.status_code, r.json()["code"]) == (400, "22023")
    assert await table_counts(clean) == counts


async def test_csv_and_form_payloads(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    body = 'id,actor_type,name,role\np-1,person,"Reed, Quinn",NULL\np-2,agent,Bot,Research\n'
    r = await http.post(
        "/actors", content=body, headers={"Content-Type": "text/csv", "Prefer": "return=representation"}
    )
    assert r.status_code == 201, r.text
    assert sorted(r.json(), key=lambda a: a["id"]) == [
        {"id": "p-1", "actor_type": "person", "name": "Reed, Quinn"},
        {"id": "p-2", "actor_type": "agent", "name": "Bot", "role": "Research"},
    ]
    await http.post("/teams", content='id,name,member_ids\nt-1,T,"{p-1,p-2}"\n', headers={"Content-Type": "text/csv"})
    assert (await http.get("/teams?select=member_ids")).json() == [{"member_ids": ["p-1", "p-2"]}]
    r = await http.patch(
        "/actors?id=eq.p-1",
        content="role=Lead&timezone=Europe%2FBerlin",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 204
    assert (await http.get("/actors?id=eq.p-1&select=role,timezone")).json() == [
        {"role": "Lead", "timezone": "Europe/Berlin"}
    ]
    counts = await table_counts(clean)
    r = await http.post("/actors", content="id,name\np-3\n", headers={"Content-Type": "text/csv"})
    assert (r.status_code, r.json()["code"]) == (400, "PGRST102")
    r = await http.post("/actors", content="<actor/>", headers={"Content-Type": "application/xml"})
    assert r.json() == {
        "code": "PGRST102",
        "message": "Content-Type not acceptable: application/xml",
        "details": None,
        "hint": None,
    }
    assert await table_counts(clean) == counts
