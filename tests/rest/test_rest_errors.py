"""Every error code the REST layer answers: its status, its body {code, message, details, hint}, no change."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, table_counts

JSON = {"Content-Type": "application/json"}

READ_ERRORS = [
    # the query string
    ("GET", "/actors?id=equals.p-1", 400, "PGRST100"),
    ("GET", "/actors?id=eq", 400, "PGRST100"),
    ("GET", "/actors?select=id,", 400, "PGRST100"),
    ("GET", "/actors?select=id,teams(id", 400, "PGRST100"),
    ("GET", "/actors?order=id.sideways", 400, "PGRST100"),
    ("GET", "/actors?or=(id.eq.p-1", 400, "PGRST100"),
    ("GET", "/actors?or=id.eq.p-1", 400, "PGRST100"),
    ("GET", "/actors?or=" + "(id.eq.1,or" * 40 + "(id.eq.2" + ")" * 41, 400, "PGRST100"),
    ("GET", "/actors?select=id," + "teams(members(" * 20 + "id" + "))" * 20, 400, "PGRST100"),
    ("GET", "/actors?id=in.p-1", 400, "PGRST100"),
    ("GET", "/actors?role=is.maybe", 400, "PGRST100"),
    ("GET", "/goal_stories?goal_story_updates.status=eq.on_track", 400, "PGRST108"),
    ("GET", "/goal_stories?select=id&children.order=id", 400, "PGRST108"),
    ("GET", "/goal_stories?order=goal_story_updates(date)", 400, "PGRST118"),
    ("GET", "/goal_stories?select=id,goal_story_updates(id)&goal_story_updates=eq.1", 400, "PGRST120"),
    ("GET", "/goal_story_updates?select=progress_percent.total()", 400, "PGRST100"),
    ("GET", "/actors/p-1", 404, "PGRST125"),
    ("GET", "/actors/", 404, "PGRST125"),
    ("GET", "/teams?select=id,...team_checkins(date.max())", 400, "PGRST127"),
    ("GET", "/actors?select=id,projects(id)", 400, "PGRST200"),
    ("GET", "/actors?select=id,teams!nohint(id)", 400, "PGRST200"),
    ("GET", "/goal_stories?select=id,goal_stories(id)", 300, "PGRST201"),
    ("GET", "/rpc/anything", 404, "PGRST202"),
    ("GET", "/people", 404, "PGRST205"),
    ("GET", "/actors?select=nickname", 400, "42703"),
    ("GET", "/actors?nickname=eq.x", 400, "42703"),
    ("GET", "/actors?order=nickname", 400, "42703"),
    ("GET", "/actors?or=(nickname.eq.x,id.eq.y)", 400, "42703"),
    ("GET", "/actors?select=id::money", 400, "42704"),
    ("GET", "/goal_stories?select=created_at::int", 400, "42846"),
    ("GET", "/team_checkins?date=like.2026*", 404, "42883"),
    ("GET", "/goal_story_updates?select=title.sum()", 404, "42883"),
    ("GET", "/goal_story_updates?select=status,count()&order=date", 400, "42803"),
    ("GET", "/goal_story_updates?select=progress_percent.avg()::date", 400, "42846"),
    ("GET", "/actors?name=sl.x", 404, "42883"),
    ("GET", "/actors?name=cs.{x}", 404, "42883"),
    ("GET", "/team_checkins?date=fts.x", 404, "42883"),
    ("GET", "/actors?role=is.true", 400, "42804"),
    ("GET", "/team_checkins?date=eq.someday", 400, "22007"),
    ("GET", "/team_checkins?date=eq.2026-13-45", 400, "22008"),
    ("GET", "/goal_story_updates?progress_percent=gt.lots", 400, "22P02"),
    ("GET", "/actors?id=eq(any).p-1", 400, "22P02"),
    ("GET", "/teams?member_ids=cs.p-1", 400, "22P02"),
    ("GET", "/goal_stories?timeframe=eq.x", 400, "22P02"),
    ("GET", "/goal_story_updates?content=fts(klingon).x", 400, "42704"),
    ("GET", "/actors?name=match.(", 400, "2201B"),
    ("GET", "/actors?offset=-1", 400, "2201X"),
    ("GET", "/actors?limit=-2", 416, "PGRST103"),
    ("GET", "/actors", 406, "PGRST107"),
    ("GET", "/actors", 406, "PGRST106"),
    ("TRACE", "/actors", 405, "PGRST117"),
    ("POST", "/", 405, "PGRST117"),
]


@pytest.mark.parametrize("method,url,status,code", READ_ERRORS, ids=[f"{m} {u[:80]} {c}" for m, u, _, c in READ_ERRORS])
async def test_request_errors(http: httpx.AsyncClient, method: str, url: str, status: int, code: str) -> None:
    headers = {"PGRST107": {"Accept": "text/html"}, "PGRST106": {"Accept-Profile": "private"}}.get(code, {})
    r = await http.request(method, url, headers=headers)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert set(r.json()) == {"code", "message", "details", "hint"}
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["proxy-status"] == f"PostgREST; error={code}"


async def test_digits_that_are_not_ascii_are_not_numbers(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    """ "²".isdigit() holds and int("²") raises: such values are not numbers, never a server error."""
    everyone = (await http.get("/actors")).json()
    # PostgREST ignores a limit or offset that is not an integer.
    for query in ("limit=²", "offset=²", "limit=٣"):
        r = await http.get(f"/actors?{query}")
        assert (r.status_code, r.json()) == (200, everyone), query
    r = await http.get("/actors", headers={"Prefer": "max-affected=²".encode("latin-1")})
    assert r.status_code == 200, r.text
    r = await http.post(
        "/goal_story_updates",
        content="actor_id,goal_story_id,date,title,content,progress_percent\np-1,g-1,2026-05-01,t,c,²",
        headers={"Content-Type": "text/csv"},
    )
    assert (r.status_code, r.json()["code"]) == (400, "22P02"), r.text


async def test_messages_match_postgrest(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.get("/people")
    assert r.json() == {
        "code": "PGRST205",
        "message": "Could not find the table 'public.people' in the schema cache",
        "details": None,
        "hint": None,
    }
    r = await http.get("/actor")
    assert r.json()["hint"] == "Perhaps you meant the table 'public.actors'"
    r = await http.get("/actors?select=nickname")
    assert r.json()["message"] == "column actors.nickname does not exist"
    r = await http.get("/actors?select=id,projects(id)")
    assert r.json()["message"] == "Could not find a relationship between 'actors' and 'projects' in the schema cache"
    r = await http.get("/goal_stories?goal_story_updates.status=eq.on_track")
    assert r.json() == {
        "code": "PGRST108",
        "details": None,
        "message": "'goal_story_updates' is not an embedded resource in this request",
        "hint": "Verify that 'goal_story_updates' is included in the 'select' query parameter.",
    }
    r = await http.get("/actors?id=equals.p-1")
    assert r.json()["message"].startswith('"failed to parse filter (equals.p-1)" (line 1, column ')


WRITE_ERRORS: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/actors", {"id": "p-1", "actor_type": "person", "name": "Again"}, 409, "23505"),
    (
        "POST",
        "/actors",
        [{"id": "p-8", "actor_type": "person", "name": "A"}, {"id": "p-8", "actor_type": "person", "name": "B"}],
        409,
        "23505",
    ),
    ("POST", "/team_checkins", {"actor_id": "p-404", "team_id": "t-1", "date": "2026-05-01"}, 409, "23503"),
    ("POST", "/teams", {"id": "t-9", "name": "X", "member_ids": ["p-1", "ghost"]}, 409, "23503"),
    ("DELETE", "/actors?id=eq.p-1", None, 409, "23503"),
    ("DELETE", "/goal_stories?id=eq.g-1", None, 409, "23503"),
    ("PATCH", "/goal_stories?id=eq.g-1", {"parent_id": "g-2"}, 400, "23514"),
    ("POST", "/actors", {"id": "p-9", "actor_type": "person"}, 400, "23502"),
    ("POST", "/actors", {"id": "p-9", "actor_type": "person", "name": None}, 400, "23502"),
    ("PATCH", "/actors?id=eq.p-1", {"name": None}, 400, "23502"),
    ("POST", "/actors", {"id": "p-9", "actor_type": "robot", "name": "R"}, 400, "23514"),
    ("POST", "/actors", {"id": "p-9", "actor_type": "person", "name": "R", "timezone": "Mars/Base"}, 400, "23514"),
    ("PATCH", "/goal_story_updates?id=eq.u-1", {"progress_percent": 101}, 400, "23514"),
    ("PATCH", "/goal_story_updates?id=eq.u-1", {"status": "done"}, 400, "23514"),
    ("POST", "/goal_stories", {"title": "T", "timeframe": {"start": "2026-02-01", "end": "2026-01-01"}}, 400, "23514"),
    ("POST", "/team_checkins", {"actor_id": "p-1", "team_id": "t-1", "date": "tomorrow"}, 400, "22P02"),
    (
        "POST",
        "/goal_story_updates",
        {
            "actor_id": "p-1",
            "goal_story_id": "g-1",
            "date": "2026-01-01",
            "title": "t",
            "content": "c",
            "progress_percent": "half",
        },
        400,
        "22P02",
    ),
    (
        "POST",
        "/team_checkins",
        {"actor_id": "p-1", "team_id": "t-1", "date": "2026-05-01", "next": "one"},
        400,
        "22P02",
    ),
    ("POST", "/actors", {"id": "p-9", "actor_type": "person", "name": "R", "nickname": "r"}, 400, "PGRST204"),
    ("POST", "/actors?columns=id,nickname", {"id": "p-9"}, 400, "PGRST204"),
    ("PATCH", "/actors?id=eq.p-1", {"nickname": "r"}, 400, "PGRST204"),
    ("POST", "/actors", "not json", 400, "PGRST102"),
    (
        "POST",
        "/actors",
        [{"id": "p-9", "actor_type": "person", "name": "A"}, {"id": "p-10", "name": "B"}],
        400,
        "PGRST102",
    ),
    ("POST", "/actors", [1, 2], 400, "PGRST102"),
    ("POST", "/actors", "[" * 100_000, 400, "PGRST102"),
    ("PATCH", "/actors?id=eq.p-1", [{"name": "x"}], 400, "PGRST102"),
    (
        "POST",
        "/coordination_events",
        {
            "id": "e-1",
            "actor_id": "p-1",
            "event_type": "team_checkin",
            "reference_id": "c-1",
            "occurred_at": "2026-01-01T00:00:00Z",
        },
        405,
        "25006",
    ),
    ("PATCH", "/coordination_events", {"actor_id": "p-2"}, 405, "25006"),
    ("PUT", "/coordination_events?id=eq.x", {"id": "x"}, 405, "25006"),
    ("DELETE", "/coordination_events", None, 405, "25006"),
    ("POST", "/actors?select=nickname", {"id": "p-9", "actor_type": "person", "name": "R"}, 400, "42703"),
    ("DELETE", "/actors?nickname=eq.x", None, 400, "42703"),
    ("PATCH", "/actors?id=eq.p-1&select=id,projects(id)", {"role": "x"}, 400, "PGRST200"),
    ("POST", "/actors?on_conflict=nickname", {"id": "p-9", "actor_type": "person", "name": "R"}, 400, "42703"),
]


async def test_write_errors_change_nothing(world: dict[str, Any], clean: Any, http: httpx.AsyncClient) -> None:
    # One world for every case (none may change it); each case checks counts and contents of every table.
    before = await table_counts(clean)
    snapshot = {resource: (await http.get(f"/{resource}?order=id")).json() for resource in before}
    for method, url, body, status, code in WRITE_ERRORS:
        content = body.encode() if isinstance(body, str) else None
        r = await http.request(
            method,
            url,
            json=None if content else body,
            content=content,
            headers={**JSON, "Prefer": "return=representation"},
        )
        assert (r.status_code, r.json()["code"]) == (status, code), (method, url, r.text)
        assert set(r.json()) == {"code", "message", "details", "hint"}
        assert await table_counts(clean) == before, (method, url)
        assert {resource: (await http.get(f"/{resource}?order=id")).json() for resource in before} == snapshot
        if code == "25006":
            assert r.headers["allow"] == "OPTIONS,GET,HEAD"


async def test_profiles(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    assert (await http.get("/actors", headers={"Accept-Profile": "public"})).status_code == 200
    r = await http.post(
        "/actors",
        json={"id": "p-9", "actor_type": "person", "name": "R"},
        headers={**JSON, "Content-Profile": "private"},
    )
    assert r.json() == {
        "code": "PGRST106",
        "message": "Invalid schema: private",
        "details": None,
        "hint": "Only the following schemas are exposed: public",
    }
    assert (await http.get("/actors?id=eq.p-9")).json() == []


async def test_conflict_bodies_name_the_ids(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.post("/actors", json={"id": "p-1", "actor_type": "person", "name": "x"}, headers=JSON)
    assert r.json()["message"] == 'duplicate key value violates unique constraint "actors_pkey"'
    assert r.json()["details"] == "Key (id)=(p-1) already exists."
    r = await http.post(
        "/team_checkins", json={"actor_id": "p-404", "team_id": "t-1", "date": "2026-05-01"}, headers=JSON
    )
    assert r.json()["details"] == 'Key (actor_id)=(p-404) is not present in table "actors".'
    r = await http.delete("/actors?id=eq.p-2")
    assert "still referenced" in r.json()["details"]


async def test_unavailable_database_is_503() -> None:
    with RunningServer("postgresql://coco@127.0.0.1:9/nowhere") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.get("/actors")
    assert r.status_code == 503
    assert r.json()["code"] == "PGRST001"
    assert set(r.json()) == {"code", "message", "details", "hint"}


async def test_constraint_errors_read_as_postgresql_words_them(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.post("/actors", json={"id": "p-9", "actor_type": "person"}, headers=JSON)
    assert r.json() == {
        "code": "23502",
        "hint": None,
        "details": "name is required (row 0)",
        "message": 'null value in column "name" of relation "actors" violates not-null constraint',
    }
    r = await http.patch("/goal_story_updates?id=eq.u-1", json={"progress_percent": 101}, headers=JSON)
    assert r.json()["message"] == (
        'new row for relation "goal_story_updates" violates check constraint '
        '"goal_story_updates_progress_percent_check"'
    )
    assert "between 0 and 100" in r.json()["details"]
