"""Every filter operator of the dialect, negation, quantifiers, logic trees, JSON paths, full text."""

from __future__ import annotations

from typing import Any

import httpx


async def ids(http: httpx.AsyncClient, url: str) -> list[str]:
    response = await http.get(url)
    assert response.status_code == 200, response.text
    return sorted(row["id"] for row in response.json())


CASES = [
    # comparisons
    ("/actors?id=eq.p-1", ["p-1"]),
    ("/actors?id=neq.p-1", ["a-1", "p-2"]),
    ("/team_checkins?date=gt.2026-05-18", ["c-2", "c-3"]),
    ("/team_checkins?date=gte.2026-05-20", ["c-2", "c-3"]),
    ("/team_checkins?date=lt.2026-05-20", ["c-1"]),
    ("/team_checkins?date=lte.2026-05-20", ["c-1", "c-2"]),
    ("/goal_story_updates?progress_percent=gt.10", ["u-2"]),
    ("/goal_stories?created_at=gte.2026-01-02T00:00:00Z", ["g-2", "g-3"]),
    ("/goal_stories?created_at=lt.2026-01-02T04:00:00-05:00", ["g-1"]),
    # patterns: * stands for %
    ("/actors?name=like.*Reed", ["p-1"]),
    ("/actors?name=like.Quinn%25", ["p-1"]),
    ("/actors?name=ilike.*BOT*", ["a-1"]),
    ("/actors?name=match.^A", ["p-2"]),
    ("/actors?name=imatch.^research", ["a-1"]),
    # lists and is
    ("/actors?id=in.(p-1,a-1)", ["a-1", "p-1"]),
    ('/actors?name=in.("Quinn Reed","Ada Lovelace")', ["p-1", "p-2"]),
    ("/goal_story_updates?progress_percent=is.null", ["u-3"]),
    ("/goal_story_updates?progress_percent=not.is.null", ["u-1", "u-2"]),
    ("/goal_stories?parent_id=is.NULL", ["g-1"]),
    ("/goal_stories?parent_id=is.not_null", ["g-2", "g-3"]),
    ("/goal_story_updates?progress_percent=isdistinct.10", ["u-2", "u-3"]),
    # array containment
    ("/teams?member_ids=cs.{p-1}", ["t-1", "t-2"]),
    ("/teams?member_ids=cs.{p-1,a-1}", ["t-1"]),
    ("/teams?member_ids=cd.{p-1,p-2,x}", ["t-2"]),
    ("/teams?member_ids=ov.{a-1,zz}", ["t-1"]),
    ("/goal_stories?team_ids=eq.{}", ["g-3"]),
    # negation of any operator
    ("/actors?name=not.like.*Reed", ["a-1", "p-2"]),
    ("/actors?id=not.in.(p-1,a-1)", ["p-2"]),
    ("/teams?member_ids=not.cs.{a-1}", ["t-2"]),
    # quantifiers
    ("/actors?id=eq(any).{p-1,p-2}", ["p-1", "p-2"]),
    ("/actors?name=like(any).{*Reed,*Bot}", ["a-1", "p-1"]),
    ("/actors?name=like(all).{*e*,*a*}", ["a-1", "p-2"]),
    ("/actors?name=ilike(all).{q*,*reed}", ["p-1"]),
    ("/team_checkins?date=gt(all).{2026-05-01,2026-05-19}", ["c-2", "c-3"]),
    ("/actors?id=not.eq(any).{p-1,p-2}", ["a-1"]),
    # repeated columns AND together
    ("/team_checkins?date=gte.2026-05-18&date=lte.2026-05-20", ["c-1", "c-2"]),
    # logic trees
    ("/actors?or=(id.eq.p-1,name.eq.Research Bot)", ["a-1", "p-1"]),
    ("/actors?or=(id.eq.p-1,and(actor_type.eq.person,role.eq.Engineer))", ["p-1", "p-2"]),
    ("/actors?and=(actor_type.eq.person,or(id.eq.p-2,name.like.*Bot))", ["p-2"]),
    ("/actors?not.or=(id.eq.p-1,id.eq.p-2)", ["a-1"]),
    ("/actors?or=(id.eq.p-1,not.and(actor_type.eq.person,id.neq.p-2))", ["a-1", "p-1", "p-2"]),
    ("/actors?or=(id.in.(p-1,p-2),name.eq.nobody)", ["p-1", "p-2"]),
    ('/actors?or=(name.eq."Quinn Reed",id.eq.zz)', ["p-1"]),
    ("/teams?or=(member_ids.cs.{a-1},name.eq.nobody)", ["t-1"]),
    ("/actors?or=(id.eq(any).{p-1,a-1},id.eq.zz)&actor_type=eq.agent", ["a-1"]),
    ("/goal_story_updates?or=(progress_percent.is.null,progress_percent.gt.20)", ["u-2", "u-3"]),
    # JSON paths into timeframe
    ("/goal_stories?timeframe->>start=gte.2026-01-01", ["g-1", "g-2"]),
    ("/goal_stories?timeframe->>end=lt.2026-02-01", ["g-3"]),
    ('/goal_stories?timeframe->start=eq."2026-02-01"', ["g-2"]),
    ("/goal_stories?or=(timeframe->>start.lt.2026-01-01,timeframe->>end.gt.2026-03-01)", ["g-1", "g-3"]),
    ("/goal_stories?timeframe=not.is.null", ["g-1", "g-2", "g-3"]),
    # full text on text and on list fields, with and without a configuration
    ("/goal_story_updates?content=fts.onboarding", ["u-1"]),
    ("/goal_story_updates?content=fts(english).planning", ["u-2"]),
    ("/goal_story_updates?content=plfts.design review", ["u-2"]),
    ("/goal_story_updates?content=phfts(english).signup form", ["u-3"]),
    ("/goal_story_updates?content=wfts.onboarding or signup", ["u-1", "u-3"]),
    ("/goal_story_updates?content=not.fts.onboarding", ["u-2", "u-3"]),
    ("/team_checkins?next=fts.pricing", ["c-2"]),
]


async def test_every_operator(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    # One world for all cases (they only read); every mismatch is reported, not just the first.
    wrong = {url: (got, expected) for url, expected in CASES if (got := await ids(http, url)) != expected}
    assert not wrong, wrong


async def test_embedded_filters_order_and_limits(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    url = (
        "/goal_stories?select=id,goal_story_updates(id,status)&goal_story_updates.status=eq.on_track"
        "&goal_story_updates.order=date.desc&id=eq.g-1"
    )
    assert (await http.get(url)).json() == [{"id": "g-1", "goal_story_updates": [{"id": "u-1", "status": "on_track"}]}]

    url = "/goal_stories?select=id,updates:goal_story_updates(id)&updates.order=date.desc&updates.limit=1&order=id"
    assert (await http.get(url)).json() == [
        {"id": "g-1", "updates": [{"id": "u-2"}]},
        {"id": "g-2", "updates": [{"id": "u-3"}]},
        {"id": "g-3", "updates": []},
    ]
    url = "/goal_stories?select=id,goal_story_updates(id)&goal_story_updates.offset=1&id=eq.g-1"
    assert len((await http.get(url)).json()[0]["goal_story_updates"]) == 1

    url = "/goal_stories?select=id,goal_story_updates(id)&goal_story_updates.or=(id.eq.u-2,id.eq.u-3)&order=id"
    assert [len(s["goal_story_updates"]) for s in (await http.get(url)).json()] == [1, 1, 0]


async def test_inner_join_and_null_filters_on_embeds(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    url = "/goal_stories?select=id,goal_story_updates!inner(id)&goal_story_updates.status=eq.at_risk"
    assert (await http.get(url)).json() == [{"id": "g-1", "goal_story_updates": [{"id": "u-2"}]}]
    url = "/goal_stories?select=id,goal_story_updates(id)&goal_story_updates=not.is.null&order=id"
    assert [s["id"] for s in (await http.get(url)).json()] == ["g-1", "g-2"]
    url = "/team_checkins?select=id,actor:actors!inner(name)&actor.actor_type=eq.agent"
    assert (await http.get(url)).json() == [{"id": "c-2", "actor": {"name": "Research Bot"}}]


async def test_rows_without_related_rows(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    url = "/goal_stories?select=id,goal_story_updates(id)&goal_story_updates=is.null"
    assert (await http.get(url)).json() == [{"id": "g-3", "goal_story_updates": []}]
    url = (
        "/goal_stories?select=id,goal_story_updates(id)&goal_story_updates.status=eq.at_risk"
        "&goal_story_updates=is.null&order=id"
    )
    assert [s["id"] for s in (await http.get(url)).json()] == ["g-2", "g-3"]
    url = "/goal_stories?select=id,parent(id)&parent=is.null"
    assert (await http.get(url)).json() == [{"id": "g-1", "parent": None}]
    # relations of goal stories to goal stories filter against their own rows, not the parent's
    url = "/goal_stories?select=id,children!inner(id)&children.order=id"
    assert (await http.get(url)).json() == [{"id": "g-1", "children": [{"id": "g-2"}, {"id": "g-3"}]}]
    url = "/goal_stories?select=id,children(id)&children=is.null&order=id"
    assert [s["id"] for s in (await http.get(url)).json()] == ["g-2", "g-3"]


async def test_order_by_a_to_one_related_field(world: dict[str, Any], http: httpx.AsyncClient) -> None:
    url = "/team_checkins?select=id,actor:actors(name)&order=actor(name).desc"
    assert [c["actor"]["name"] for c in (await http.get(url)).json()] == ["Research Bot", "Quinn Reed", "Ada Lovelace"]
    url = "/team_checkins?select=id&order=actors(name)"
    assert [c["id"] for c in (await http.get(url)).json()] == ["c-3", "c-1", "c-2"]
    url = "/goal_stories?select=id&order=parent(title).nullsfirst,id.desc"
    assert [s["id"] for s in (await http.get(url)).json()] == ["g-1", "g-3", "g-2"]
    url = "/goal_stories?select=id,children(id)&children.order=parent(title),id.desc&id=eq.g-1"
    assert (await http.get(url)).json() == [{"id": "g-1", "children": [{"id": "g-3"}, {"id": "g-2"}]}]
    url = "/goal_story_updates?select=id&order=goal_story(timeframe->>start).desc,id"
    assert [u["id"] for u in (await http.get(url)).json()] == ["u-3", "u-1", "u-2"]
