"""select=, embedding, media types (single object, CSV, nulls=stripped), HEAD, OPTIONS and CORS."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from api.entities import ENTITIES
from api.ops.schemas import validator


async def test_full_representations_validate_against_the_schemas(
    world: dict[str, Any], http: httpx.AsyncClient
) -> None:
    for ent in ENTITIES.values():
        for url in (f"/{ent.resource}", f"/{ent.resource}?select=*"):
            rows = (await http.get(url)).json()
            assert rows, url
            for row in rows:
                validator(ent.name).validate(row)
    # optional fields without a value are left out of a full representation...
    [update] = (await http.get("/goal_story_updates?id=eq.u-3")).json()
    assert "progress_percent" not in update
    [root] = (await http.get("/goal_stories?id=eq.g-1")).json()
    assert "parent_id" not in root or root["parent_id"] is None
    # ...but a field named in select= is always there, null when empty
    assert (await http.get("/goal_story_updates?id=eq.u-3&select=id,progress_percent")).json() == [
        {"id": "u-3", "progress_percent": None}
    ]


async def test_select_columns_aliases_casts_and_json_paths(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.get("/actors?select=id,full_name:name&id=eq.p-1")
    assert r.json() == [{"id": "p-1", "full_name": "Quinn Reed"}]
    r = await http.get("/goal_story_updates?select=id,progress_percent::text&id=eq.u-1")
    assert r.json() == [{"id": "u-1", "progress_percent": "10"}]
    r = await http.get("/goal_story_updates?select=id,pct:progress_percent::text&id=eq.u-1")
    assert r.json() == [{"id": "u-1", "pct": "10"}]
    r = await http.get("/goal_stories?select=id,timeframe->>start,ends:timeframe->end&id=eq.g-1")
    assert r.json() == [{"id": "g-1", "start": "2026-01-06", "ends": "2026-03-31"}]
    r = await http.get("/goal_stories?select=id,timeframe&id=eq.g-1")
    assert r.json() == [{"id": "g-1", "timeframe": {"start": "2026-01-06", "end": "2026-03-31"}}]
    r = await http.get("/goal_stories?select=id&order=timeframe->>start.desc")
    assert [s["id"] for s in r.json()] == ["g-2", "g-1", "g-3"]


async def test_embedding_through_every_kind_of_reference(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.get("/team_checkins?select=*,actor:actors(name)&id=eq.c-1")
    [checkin] = r.json()
    assert checkin["actor"] == {"name": "Quinn Reed"}
    validator("team_checkin").validate({k: v for k, v in checkin.items() if k != "actor"})

    r = await http.get("/goal_stories?select=*,goal_story_updates(*)&id=eq.g-1")
    [story] = r.json()
    assert sorted(u["id"] for u in story["goal_story_updates"]) == ["u-1", "u-2"]
    for update in story["goal_story_updates"]:
        validator("goal_story_update").validate(update)

    r = await http.get("/teams?select=id,members(id,name)&id=eq.t-1")
    assert r.json() == [
        {"id": "t-1", "members": [{"id": "p-1", "name": "Quinn Reed"}, {"id": "a-1", "name": "Research Bot"}]}
    ]
    r = await http.get("/teams?select=id,actors(id)&id=eq.t-2")
    assert r.json() == [{"id": "t-2", "actors": [{"id": "p-2"}, {"id": "p-1"}]}]
    r = await http.get("/actors?select=id,teams(id)&id=eq.p-1")
    assert r.json() == [{"id": "p-1", "teams": [{"id": "t-1"}, {"id": "t-2"}]}]
    r = await http.get("/goal_stories?select=id,parent(id,title),children(id)&order=id")
    assert r.json()[0] == {"id": "g-1", "parent": None, "children": [{"id": "g-2"}, {"id": "g-3"}]}
    assert r.json()[1]["parent"] == {"id": "g-1", "title": "Improve onboarding"}
    r = await http.get("/goal_stories?select=id,up:goal_stories!parent(id)&id=eq.g-2")
    assert r.json() == [{"id": "g-2", "up": {"id": "g-1"}}]
    # nested two levels, with the actor's name on each update
    r = await http.get("/teams?select=name,team_checkins(date,actor:actors(name))&id=eq.t-2")
    assert r.json() == [
        {"name": "Engineering", "team_checkins": [{"date": "2026-05-22", "actor": {"name": "Ada Lovelace"}}]}
    ]
    # events embed their actor
    r = await http.get("/coordination_events?select=event_type,actor:actors(id)&reference_id=eq.c-1")
    assert r.json() == [{"event_type": "team_checkin", "actor": {"id": "p-1"}}]


async def test_spreading_a_to_one_relation(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.get("/team_checkins?select=id,...actors(actor_name:name,role),...team(team:name)&id=eq.c-2")
    assert r.json() == [
        {"id": "c-2", "actor_name": "Research Bot", "role": "Compiles market research", "team": "Product"}
    ]
    r = await http.get("/goal_stories?select=id,...parent(parent_title:title)&order=id")
    assert r.json() == [
        {"id": "g-1", "parent_title": None},
        {"id": "g-2", "parent_title": "Improve onboarding"},
        {"id": "g-3", "parent_title": "Improve onboarding"},
    ]
    r = await http.get("/goal_story_updates?select=id,...goal_story(timeframe->>start)&id=eq.u-3")
    assert r.json() == [{"id": "u-3", "start": "2026-02-01"}]
    r = await http.get("/coordination_events?select=event_type,...actors(*)&reference_id=eq.c-1")
    assert r.json() == [
        {
            "event_type": "team_checkin",
            "id": "p-1",
            "actor_type": "person",
            "name": "Quinn Reed",
            "role": "Product Manager",
            "timezone": "America/Chicago",
        }
    ]


async def test_single_object_media_type(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    one = {"Accept": "application/vnd.pgrst.object+json"}
    r = await http.get("/actors?id=eq.p-1", headers=one)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    assert r.json()["id"] == "p-1"
    validator("actor").validate(r.json())
    for url, rows in (("/actors?id=eq.nobody", 0), ("/actors", 3)):
        r = await http.get(url, headers=one)
        assert r.status_code == 406
        assert r.json() == {
            "code": "PGRST116",
            "message": "Cannot coerce the result to a single JSON object",
            "details": f"The result contains {rows} rows",
            "hint": None,
        }


async def test_nulls_stripped(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.get(
        "/goal_story_updates?select=id,progress_percent&id=eq.u-3",
        headers={"Accept": "application/vnd.pgrst.array+json;nulls=stripped"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.pgrst.array+json; nulls=stripped; charset=utf-8"
    assert r.json() == [{"id": "u-3"}]
    r = await http.get(
        "/goal_story_updates?select=id,progress_percent&id=eq.u-3",
        headers={"Accept": "application/vnd.pgrst.object+json;nulls=stripped"},
    )
    assert r.json() == {"id": "u-3"}


async def test_csv(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.get("/teams?select=id,name,member_ids&order=id", headers={"Accept": "text/csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert list(csv.reader(io.StringIO(r.text))) == [
        ["id", "name", "member_ids"],
        ["t-1", "Product", "{p-1,a-1}"],
        ["t-2", "Engineering", "{p-2,p-1}"],
    ]
    r = await http.get("/goal_story_updates?order=id", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["id"] for row in rows] == ["u-1", "u-2", "u-3"]
    assert rows[2]["progress_percent"] == ""
    r = await http.get(
        "/goal_stories?select=id,team_ids,children(id)&order=id&children.order=id", headers={"Accept": "text/csv"}
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["team_ids"], row["children"]) for row in rows] == [
        ("{t-1}", '[{"id": "g-2"}, {"id": "g-3"}]'),
        ("{t-2}", "[]"),
        ("{}", "[]"),
    ]


async def test_media_types_not_produced_are_406(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    # (text/event-stream on /coordination_events is the live feed; the other resources have none.)
    for accept in ("text/html", "text/event-stream", "application/xml"):
        r = await http.get("/team_checkins", headers={"Accept": accept})
        assert r.status_code == 406
        assert r.json()["code"] == "PGRST107"
        assert r.json()["message"] == f"None of these media types are available: {accept}"
    r = await http.get("/actors", headers={"Accept": "text/html, application/json;q=0.5"})
    assert r.status_code == 200
    r = await http.get("/actors", headers={"Accept": "*/*"})
    assert r.headers["content-type"] == "application/json; charset=utf-8"


async def test_head_options_and_cors(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    r = await http.head("/actors", headers={"Prefer": "count=exact"})
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-range"] == "0-2/3"
    r = await http.head("/actors?limit=1", headers={"Prefer": "count=exact"})
    assert r.status_code == 206
    assert r.headers["content-range"] == "0-0/3"

    r = await http.options("/actors")
    assert r.status_code == 200
    assert r.headers["allow"] == "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"
    r = await http.options("/coordination_events")
    assert r.headers["allow"] == "OPTIONS,GET,HEAD"
    r = await http.options("/")
    assert r.headers["allow"] == "OPTIONS,GET,HEAD"

    r = await http.options(
        "/actors",
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, prefer",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "prefer" in r.headers["access-control-allow-headers"].lower()
    r = await http.get("/actors", headers={"Origin": "https://example.org"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["vary"] == "Accept, Prefer, Range"
    assert "Content-Range" in r.headers["access-control-expose-headers"]


async def test_a_filtered_list_below_a_list_is_what_the_listed_rows_show_on_their_own(
    world: dict[str, Any], http: httpx.AsyncClient
) -> None:
    """A team's members below a goal story's teams are read for all those teams in one join
    (api/store/select.py, `_lists_joined`); filtered, they are what each team shows when read by itself."""
    for members in ("members(id,name)", "members(name)&members.name=eq.Quinn Reed", "members(id)&members.id=neq.p-1"):
        name_filter = members.partition("&")[2]
        nested = name_filter.replace("members.", "teams.members.")
        stories = (await http.get(f"/goal_stories?select=id,teams(id,{members.partition('&')[0]})&{nested}")).json()
        teams = (await http.get(f"/teams?select=id,{members.partition('&')[0]}&{name_filter}")).json()
        by_id = {team["id"]: team for team in teams}
        listed = [team for story in stories for team in story["teams"]]
        assert listed, members
        assert all(team == by_id[team["id"]] for team in listed), (members, listed, teams)
    filtered = (
        await http.get("/goal_stories?select=id,teams(id,members(name))&teams.members.name=eq.Quinn Reed")
    ).json()
    shown = {team["id"]: team["members"] for story in filtered for team in story["teams"]}
    assert shown == {"t-1": [{"name": "Quinn Reed"}], "t-2": [{"name": "Quinn Reed"}]}
