"""PostgREST's own examples of aggregates (docs/references/api/aggregate_functions.rst) and spreads
(resource_embedding.rst, "Spread embedded resource"), translated to our resources, answer as documented;
what PostgREST refuses is refused with its code and message, and changes nothing; COCO_REST_AGGREGATES=false
refuses every aggregate with PGRST123, as PostgREST's default does.

The translation: orders -> goal_story_updates (amount -> progress_percent, order_date -> date, customers ->
actor); customers(orders) -> actors(goal_story_updates); directors(films) -> actors(goal_story_updates) and
goal_stories(children); films(roles(actors)) -> goal_stories(goal_story_updates(actor)).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config import Settings
from tests.conftest import RunningServer, table_counts
from tests.rest.conftest import post

UPDATES = [
    ("u-1", "g-1", "p-1", "2026-05-01", "Kickoff", "on_track", 40),
    ("u-2", "g-1", "p-2", "2026-05-01", "Blocked on design", "at_risk", 20),
    ("u-3", "g-1", "p-1", "2026-05-08", "Design done", "on_track", 60),
    ("u-4", "g-2", "p-2", "2026-05-08", "Signup form shipped", "on_track", None),
    ("u-5", "g-2", "a-1", "2026-05-08", "Crawled competitors", None, 10),
]


@pytest_asyncio.fixture(loop_scope="session")
async def documented(clean: AsyncEngine, http: httpx.AsyncClient) -> None:
    await post(
        http,
        "actors",
        [
            {"id": "p-1", "actor_type": "person", "name": "Quinn Reed", "role": "Product Manager"},
            {"id": "p-2", "actor_type": "person", "name": "Ada Lovelace", "role": "Engineer"},
            {"id": "a-1", "actor_type": "agent", "name": "Research Bot", "role": "Compiles research"},
        ],
    )
    for story in [
        {
            "id": "g-1",
            "title": "Improve onboarding",
            "timeframe": {"start": "2026-01-06", "end": "2026-03-31"},
            "created_at": "2026-01-01T09:00:00Z",
        },
        {
            "id": "g-2",
            "title": "Faster signup",
            "parent_id": "g-1",
            "timeframe": {"start": "2026-02-01", "end": "2026-02-28"},
            "created_at": "2026-01-02T09:00:00Z",
        },
        {"id": "g-3", "title": "Docs refresh", "parent_id": "g-1", "created_at": "2026-01-03T09:00:00Z"},
    ]:
        await post(http, "goal_stories", story)
    for id, story, actor, date, title, status, progress in UPDATES:
        update = {"id": id, "goal_story_id": story, "actor_id": actor, "date": date, "title": title, "content": "c"}
        update |= {"status": status, "progress_percent": progress}
        await post(http, "goal_story_updates", update)


async def _get(http: httpx.AsyncClient, url: str) -> Any:
    response = await http.get(url)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def _by(key: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: json.dumps(row[key]))


# ---------------------------------------------------------------- aggregate_functions.rst


async def test_aggregate_functions_examples(documented: None, http: httpx.AsyncClient) -> None:
    # curl "http://localhost:3000/orders?select=amount.sum()"
    assert await _get(http, "/goal_story_updates?select=progress_percent.sum()") == [{"sum": 130}]
    # Several at once, renamed.
    assert await _get(
        http,
        "/goal_story_updates?select=total:progress_percent.sum(),average:progress_percent.avg(),"
        "reported:progress_percent.count()",
    ) == [{"total": 130, "average": Decimal("32.5"), "reported": 4}]
    # Automatic GROUP BY: select=amount.sum(),amount.avg(),order_date
    rows = await _get(http, "/goal_story_updates?select=progress_percent.sum(),progress_percent.avg(),date")
    assert _by("date", rows) == [
        {"sum": 60, "avg": 30, "date": "2026-05-01"},
        {"sum": 70, "avg": 35, "date": "2026-05-08"},
    ]
    assert list(rows[0]) == ["sum", "avg", "date"]
    # count() counts rows, observation.count() the values that are not null.
    rows = await _get(http, "/goal_story_updates?select=count(),progress_count:progress_percent.count(),date")
    assert _by("date", rows) == [
        {"count": 2, "progress_count": 2, "date": "2026-05-01"},
        {"count": 3, "progress_count": 2, "date": "2026-05-08"},
    ]
    # Casting the aggregated column: order_details->tax_amount::numeric.sum()
    assert await _get(http, "/goal_stories?select=timeframe->>end::date.max()") == [{"max": "2026-03-31"}]
    # Casting the aggregate: amount.avg()::int
    assert await _get(http, "/goal_story_updates?select=progress_percent.avg()::int") == [{"avg": 33}]


async def test_aggregates_and_embedding_examples(documented: None, http: httpx.AsyncClient) -> None:
    # Grouping by an embedded resource: select=amount.sum(),customers(name)
    rows = await _get(http, "/goal_story_updates?select=progress_percent.sum(),actor(name)")
    assert _by("actor", rows) == [
        {"sum": 20, "actor": {"name": "Ada Lovelace"}},
        {"sum": 100, "actor": {"name": "Quinn Reed"}},
        {"sum": 10, "actor": {"name": "Research Bot"}},
    ]
    # ... and by a spread's columns: select=amount.sum(),...customers(name)
    rows = await _get(http, "/goal_story_updates?select=progress_percent.sum(),...actor(name)")
    assert _by("name", rows) == [
        {"sum": 20, "name": "Ada Lovelace"},
        {"sum": 100, "name": "Quinn Reed"},
        {"sum": 10, "name": "Research Bot"},
    ]
    # Aggregates inside an embedded resource: customers?select=name,city,state,orders(amount.sum(),order_date)
    rows = await _get(http, "/actors?select=name,role,goal_story_updates(progress_percent.sum(),date)&order=name")
    assert [{**row, "goal_story_updates": _by("date", row["goal_story_updates"])} for row in rows] == [
        {
            "name": "Ada Lovelace",
            "role": "Engineer",
            "goal_story_updates": [{"sum": 20, "date": "2026-05-01"}, {"sum": None, "date": "2026-05-08"}],
        },
        {
            "name": "Quinn Reed",
            "role": "Product Manager",
            "goal_story_updates": [{"sum": 40, "date": "2026-05-01"}, {"sum": 60, "date": "2026-05-08"}],
        },
        {
            "name": "Research Bot",
            "role": "Compiles research",
            "goal_story_updates": [{"sum": 10, "date": "2026-05-08"}],
        },
    ]
    # Aggregates in to-one spreads are hoisted:
    # orders?select=order_date,...customers(subscription_date.max(),subscription_date.min())
    rows = await _get(http, "/goal_story_updates?select=date,...goal_story(created_at.max(),created_at.min())")
    assert _by("date", rows) == [
        {"date": "2026-05-01", "max": "2026-01-01T09:00:00+00:00", "min": "2026-01-01T09:00:00+00:00"},
        {"date": "2026-05-08", "max": "2026-01-02T09:00:00+00:00", "min": "2026-01-01T09:00:00+00:00"},
    ]
    # "Aggregates inside to-many spreads are not supported"
    response = await http.get("/goal_stories?select=title,...goal_story_updates(progress_percent.sum())")
    assert (response.status_code, response.json()) == (
        400,
        {
            "code": "PGRST127",
            "message": "Feature not implemented",
            "details": "Aggregates are not implemented for one-to-many or many-to-many spreads.",
            "hint": None,
        },
    )


# ---------------------------------------------------------------- resource_embedding.rst: spreads


async def test_spread_examples(documented: None, http: httpx.AsyncClient) -> None:
    # To-one: films?select=title,...directors(director_first_name:first_name,director_last_name:last_name)
    assert await _get(
        http, "/goal_story_updates?select=title,...actor(actor_name:name,actor_role:role)&title=like.*shipped*"
    ) == [{"title": "Signup form shipped", "actor_name": "Ada Lovelace", "actor_role": "Engineer"}]
    # To-many: directors?select=first_name,...films(film_titles:title,film_years:year)&first_name=like.Quentin*
    [quinn] = await _get(
        http, "/actors?select=name,...goal_story_updates(update_titles:title,update_dates:date)&name=like.Quinn*"
    )
    assert set(quinn) == {"name", "update_titles", "update_dates"}
    assert sorted(zip(quinn["update_titles"], quinn["update_dates"], strict=True)) == [
        ("Design done", "2026-05-08"),
        ("Kickoff", "2026-05-01"),
    ]
    # Order in spread to-many: films.order=year
    assert await _get(
        http,
        "/actors?select=name,...goal_story_updates(update_titles:title,update_dates:date)&name=like.Quinn*"
        "&goal_story_updates.order=date.desc",
    ) == [
        {
            "name": "Quinn Reed",
            "update_titles": ["Design done", "Kickoff"],
            "update_dates": ["2026-05-08", "2026-05-01"],
        }
    ]
    # Duplicate keys, as JSON allows them: projects?select=id,name,...clients(id,name)
    response = await http.get("/goal_story_updates?select=id,title,...actor(id,name)&id=eq.u-1")
    assert json.loads(response.text, object_pairs_hook=list) == [
        [("id", "u-1"), ("title", "Kickoff"), ("id", "p-1"), ("name", "Quinn Reed")]
    ]
    # Multiple spreads: directors?select=first_name,...films(film_titles:title,...technical_specs(...),...roles(...))
    assert await _get(
        http,
        "/goal_stories?select=title,...children(child_titles:title,...parent(parent_titles:title),"
        "...goal_story_updates(child_statuses:status,...actor(child_authors:name)))&id=eq.g-1"
        "&children.order=title&children.goal_story_updates.order=id",
    ) == [
        {
            "title": "Improve onboarding",
            "child_titles": ["Docs refresh", "Faster signup"],
            "parent_titles": ["Improve onboarding", "Improve onboarding"],
            "child_statuses": [[], ["on_track", None]],
            "child_authors": [[], ["Ada Lovelace", "Research Bot"]],
        }
    ]
    # Spread a join table: films?select=title,actors:roles(character,...actors(first_name,last_name))
    assert await _get(
        http, "/goal_stories?select=title,updates:goal_story_updates(status,...actor(name))&id=eq.g-2&updates.order=id"
    ) == [
        {
            "title": "Faster signup",
            "updates": [{"status": "on_track", "name": "Ada Lovelace"}, {"status": None, "name": "Research Bot"}],
        }
    ]


# ---------------------------------------------------------------- refusals


REFUSALS: list[tuple[str, int, dict[str, Any]]] = [
    (
        "/goal_story_updates?select=title.sum()",
        404,
        {
            "code": "42883",
            "message": "function sum(text) does not exist",
            "details": None,
            "hint": "No function matches the given name and argument types. You might need to add explicit type casts.",
        },
    ),
    ("/goal_story_updates?select=date.avg()", 404, {"code": "42883", "message": "function avg(date) does not exist"}),
    ("/goal_stories?select=timeframe.max()", 404, {"code": "42883", "message": "function max(jsonb) does not exist"}),
    (
        "/goal_stories?select=timeframe->start.min()",
        404,
        {"code": "42883", "message": "function min(jsonb) does not exist"},
    ),
    (
        "/goal_story_updates?select=created_at.sum()",
        404,
        {"code": "42883", "message": "function sum(timestamp with time zone) does not exist"},
    ),
    (
        "/goal_story_updates?select=status,count()&order=title",
        400,
        {
            "code": "42803",
            "message": 'column "goal_story_updates.title" must appear in the GROUP BY clause or be used in an'
            " aggregate function",
        },
    ),
    (
        "/goal_story_updates?select=progress_percent.sum()::money",
        400,
        {"code": "42704", "message": 'type "money" does not exist'},
    ),
    ("/goal_story_updates?select=progress_percent::money.sum()", 400, {"code": "42704"}),
    ("/goal_story_updates?select=progress_percent.avg()::date", 400, {"code": "42846"}),
    ("/goal_story_updates?select=title::int.sum()", 400, {"code": "22P02"}),
    (
        "/goal_story_updates?select=nickname.max()",
        400,
        {"code": "42703", "message": "column goal_story_updates.nickname does not exist"},
    ),
    ("/goal_story_updates?select=progress_percent.median()", 400, {"code": "PGRST100"}),
    ("/goal_story_updates?select=count(*)", 400, {"code": "PGRST100"}),
    ("/goal_story_updates?select=count(),nowhere(count())", 400, {"code": "PGRST200"}),
    (
        "/goal_stories?select=title,...children(...goal_story_updates(n:count()))",
        400,
        {"code": "PGRST127", "details": "Aggregates are not implemented for one-to-many or many-to-many spreads."},
    ),
    (
        "/goal_stories?select=title,...children(...parent(title.max()))",
        400,
        {"code": "PGRST127", "details": "Aggregates are not implemented for one-to-many or many-to-many spreads."},
    ),
]


@pytest.mark.parametrize("url,status,body", REFUSALS, ids=[url for url, _, _ in REFUSALS])
async def test_refusals_as_postgrest_words_them(
    documented: None, clean: AsyncEngine, http: httpx.AsyncClient, url: str, status: int, body: dict[str, Any]
) -> None:
    before = await table_counts(clean)
    response = await http.get(url)
    assert response.status_code == status, response.text
    assert response.json().items() >= body.items(), response.text
    assert response.headers["proxy-status"] == f"PostgREST; error={body['code']}"
    # The same select on a write is refused before anything is written.
    resource, _, query = url[1:].partition("?")
    if resource == "goal_story_updates":
        new = {
            "id": "u-9",
            "goal_story_id": "g-1",
            "actor_id": "p-1",
            "date": "2026-05-09",
            "title": "t",
            "content": "c",
        }
        written = await http.post(f"/{resource}?{query}", json=new, headers={"Prefer": "return=representation"})
        assert (written.status_code, written.json()["code"]) == (status, body["code"]), written.text
    assert await table_counts(clean) == before


# ---------------------------------------------------------------- COCO_REST_AGGREGATES=false


@pytest.fixture(scope="module")
def without_aggregates(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, rest_aggregates=False) as url:
        yield url


async def test_aggregates_can_be_disabled_as_in_postgrest(
    documented: None, clean: AsyncEngine, without_aggregates: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCO_REST_AGGREGATES", "false")
    assert Settings.from_environment().rest_aggregates is False
    monkeypatch.delenv("COCO_REST_AGGREGATES")
    assert Settings.from_environment().rest_aggregates is True
    refused = {
        "code": "PGRST123",
        "message": "Use of aggregate functions is not allowed",
        "details": None,
        "hint": None,
    }
    before = await table_counts(clean)
    async with httpx.AsyncClient(base_url=without_aggregates, timeout=30) as http:
        for url in (
            "/goal_story_updates?select=count()",
            "/goal_story_updates?select=status,progress_percent.sum()",
            "/goal_story_updates?select=title.sum()",  # no type check first: refused as PostgREST refuses it
            "/goal_story_updates?select=nickname.max()",
            "/actors?select=name,goal_story_updates(count())",
            "/goal_story_updates?select=status,...actor(name.max())",
        ):
            for _ in range(2):  # the second time from a known shape (api/rest/repeated.py)
                response = await http.get(url)
                assert (response.status_code, response.json()) == (400, refused), url
        # Relationships are resolved first, as PostgREST does.
        response = await http.get("/goal_story_updates?select=count(),nowhere(id)")
        assert response.json()["code"] == "PGRST200"
        new = {
            "id": "u-9",
            "goal_story_id": "g-1",
            "actor_id": "p-1",
            "date": "2026-05-09",
            "title": "t",
            "content": "c",
        }
        response = await http.post(
            "/goal_story_updates?select=count()", json=new, headers={"Prefer": "return=representation"}
        )
        assert (response.status_code, response.json()) == (400, refused)
        assert await table_counts(clean) == before
        # Spreads need no aggregate.
        response = await http.get("/actors?select=name,...goal_story_updates(date)&name=eq.Research Bot")
        assert response.json() == [{"name": "Research Bot", "date": ["2026-05-08"]}]
        # The OpenAPI document says so.
        document = (await http.get("/")).json()
        select = document["components"]["parameters"]["select"]["description"]
        assert "disabled" in select and "PGRST123" in select and "COCO_REST_AGGREGATES=false" in select


async def test_the_openapi_document_says_aggregates_are_on(http: httpx.AsyncClient) -> None:
    document = (await http.get("/")).json()
    select = document["components"]["parameters"]["select"]["description"]
    assert "Aggregate functions are enabled" in select and "count()" in select
    assert "Aggregate functions are enabled" in document["info"]["description"]
