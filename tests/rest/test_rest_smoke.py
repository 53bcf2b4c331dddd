from __future__ import annotations

import httpx


async def test_world_reads(world, http: httpx.AsyncClient) -> None:
    r = await http.get("/actors?id=eq.p-1")
    print(r.status_code, r.headers, r.text)
    assert r.status_code == 200
    r = await http.get("/goal_stories?select=*,goal_story_updates(*)&order=id")
    print(r.status_code, r.text)
    r = await http.get("/team_checkins?select=*,actor:actors(name)", headers={"Prefer": "count=exact"})
    print(r.status_code, r.headers, r.text)
    assert r.status_code == 200
