"""orderBy (with nulls placement), Relay paging forwards and backwards, keyset cursors, totalCount."""

from __future__ import annotations

import pytest

from api.store.writes import WriteService

KEY = {"coordinationEvents": "referenceId"}

ORDERS = [
    ("actors", "[{field: ROLE}]", ["a-3", "a-1", "a-2", "a-4"]),
    ("actors", "[{field: ROLE, nulls: FIRST}]", ["a-2", "a-4", "a-3", "a-1"]),
    ("actors", "[{field: ROLE, direction: DESC}]", ["a-2", "a-4", "a-1", "a-3"]),
    ("actors", "[{field: ROLE, direction: DESC, nulls: LAST}]", ["a-1", "a-3", "a-2", "a-4"]),
    (
        "actors",
        "[{field: ROLE, direction: DESC, nulls: LAST}, {field: ID, direction: DESC}]",
        ["a-1", "a-3", "a-4", "a-2"],
    ),
    ("actors", "[{field: NAME, direction: DESC}]", ["a-4", "a-3", "a-2", "a-1"]),
    ("actors", "[{field: ID, direction: DESC}]", ["a-4", "a-3", "a-2", "a-1"]),
    ("teams", "[{field: DESCRIPTION, nulls: FIRST}, {field: NAME, direction: DESC}]", ["t-2", "t-3", "t-1"]),
    ("goalStories", "[{field: TIMEFRAME_START, direction: DESC}]", ["g-3", "g-4", "g-2", "g-1"]),
    ("goalStories", "[{field: TIMEFRAME_START, direction: DESC, nulls: LAST}]", ["g-4", "g-2", "g-1", "g-3"]),
    ("goalStories", "[{field: TIMEFRAME_END}]", ["g-2", "g-1", "g-4", "g-3"]),
    (
        "goalStories",
        "[{field: PARENT_ID, nulls: FIRST}, {field: CREATED_AT, direction: DESC}]",
        ["g-4", "g-1", "g-3", "g-2"],
    ),
    ("goalStories", "[{field: TITLE}]", ["g-2", "g-1", "g-4", "g-3"]),
    ("goalStoryUpdates", "[{field: DATE, direction: DESC}]", ["u-4", "u-2", "u-3", "u-1"]),
    (
        "goalStoryUpdates",
        "[{field: DATE, direction: DESC}, {field: ID, direction: DESC}]",
        ["u-4", "u-3", "u-2", "u-1"],
    ),
    ("goalStoryUpdates", "[{field: PROGRESS_PERCENT}]", ["u-1", "u-2", "u-4", "u-3"]),
    ("goalStoryUpdates", "[{field: PROGRESS_PERCENT, direction: DESC}]", ["u-3", "u-4", "u-2", "u-1"]),
    ("goalStoryUpdates", "[{field: STATUS, nulls: FIRST}, {field: DATE}]", ["u-3", "u-2", "u-4", "u-1"]),
    ("teamCheckins", "[{field: CREATED_AT, direction: DESC}]", ["c-4", "c-3", "c-2", "c-1"]),
    ("teamCheckins", "[{field: ACTOR_ID}, {field: DATE, direction: DESC}]", ["c-4", "c-1", "c-2", "c-3"]),
    (
        "coordinationEvents",
        "[{field: CURSOR, direction: DESC}]",
        ["u-4", "u-3", "u-2", "u-1", "c-4", "c-3", "c-2", "c-1"],
    ),
    ("coordinationEvents", "[{field: OCCURRED_AT}]", ["u-1", "u-2", "u-3", "u-4", "c-1", "c-2", "c-3", "c-4"]),
    (
        "coordinationEvents",
        "[{field: EVENT_TYPE, direction: DESC}, {field: ACTOR_ID}, {field: OCCURRED_AT, direction: DESC}]",
        ["c-4", "c-1", "c-2", "c-3", "u-2", "u-1", "u-3", "u-4"],
    ),
]


async def _page(gql, field: str, arguments: str) -> dict:
    key = KEY.get(field, "id")
    arguments = f"({arguments})" if arguments else ""
    data = await gql(
        f"{{ {field}{arguments} {{ totalCount nodes {{ key: {key} }} edges {{ cursor node {{ "
        f"key: {key} }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
    )
    return data[field]


def _keys(page: dict) -> list[str]:
    return [n["key"] for n in page["nodes"]]


@pytest.mark.parametrize(("field", "order", "expected"), ORDERS)
async def test_order(gql, world, field, order, expected) -> None:
    assert _keys(await _page(gql, field, f"orderBy: {order}")) == expected


@pytest.mark.parametrize(("field", "order", "expected"), ORDERS)
@pytest.mark.parametrize("size", [1, 3])
async def test_paging_forward_and_backward_visits_every_row_once(gql, world, field, order, expected, size) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = await _page(gql, field, f"orderBy: {order}, first: {size}" + (f', after: "{after}"' if after else ""))
        assert len(page["nodes"]) <= size
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["totalCount"] == len(expected)
        seen += _keys(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected

    seen = []
    before = None
    while True:
        page = await _page(gql, field, f"orderBy: {order}, last: {size}" + (f', before: "{before}"' if before else ""))
        assert page["pageInfo"]["hasNextPage"] is (before is not None)
        seen = _keys(page) + seen
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert seen == expected


async def test_edges_of_the_range(gql, world) -> None:
    everything = await _page(gql, "actors", "")
    cursors = [e["cursor"] for e in everything["edges"]]
    first, last = cursors[0], cursors[-1]
    assert _keys(await _page(gql, "actors", f'after: "{last}"')) == []
    assert (await _page(gql, "actors", f'after: "{last}"'))["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    assert _keys(await _page(gql, "actors", f'before: "{first}"')) == []
    assert _keys(await _page(gql, "actors", f'last: 2, before: "{first}"')) == []
    assert _keys(await _page(gql, "actors", f'after: "{first}", before: "{last}"')) == ["a-2", "a-3"]
    assert _keys(await _page(gql, "actors", f'after: "{cursors[1]}", first: 1')) == ["a-3"]
    assert _keys(await _page(gql, "actors", "first: 4")) == ["a-1", "a-2", "a-3", "a-4"]
    assert (await _page(gql, "actors", "first: 4"))["pageInfo"]["hasNextPage"] is False
    assert (await _page(gql, "actors", "first: 3"))["pageInfo"]["hasNextPage"] is True
    assert (await _page(gql, "actors", "last: 4"))["pageInfo"]["hasPreviousPage"] is False
    assert (await _page(gql, "actors", "last: 3"))["pageInfo"]["hasPreviousPage"] is True
    empty = await _page(gql, "actors", "first: 0")
    assert empty["nodes"] == [] and empty["pageInfo"]["hasNextPage"] is True and empty["totalCount"] == 4
    assert _keys(await _page(gql, "actors", "last: 0")) == []
    # first and last together: the last ones of the first ones.
    both = await _page(gql, "actors", "first: 3, last: 2")
    assert _keys(both) == ["a-2", "a-3"] and both["pageInfo"]["hasPreviousPage"] is True
    assert both["pageInfo"]["hasNextPage"] is True
    assert _keys(await _page(gql, "actors", 'where: {id: {eq: "zz"}}, first: 3')) == []


async def test_total_count_ignores_the_page_and_follows_where(gql, world) -> None:
    page = await _page(gql, "teamCheckins", 'where: {teamId: {eq: "t-1"}}, first: 1')
    assert page["totalCount"] == 3 and len(page["nodes"]) == 1
    data = await gql(
        '{ team(id: "t-1") { checkins(first: 1, where: {date: {gt: "2026-05-18"}}) { totalCount nodes { id } } } }'
    )
    assert data["team"]["checkins"] == {"totalCount": 2, "nodes": [{"id": "c-2"}]}


async def test_nested_connections_page_per_parent(gql, world) -> None:
    query = """query($after: String) { teams(where: {id: {in: ["t-1", "t-2"]}}) { nodes { id
        checkins(first: 1, after: $after, orderBy: [{field: DATE, direction: DESC}]) {
          nodes { id } pageInfo { hasNextPage endCursor } } } } }"""
    teams = {t["id"]: t["checkins"] for t in (await gql(query))["teams"]["nodes"]}
    assert teams["t-1"]["nodes"] == [{"id": "c-4"}] and teams["t-1"]["pageInfo"]["hasNextPage"] is True
    assert teams["t-2"]["nodes"] == [{"id": "c-3"}] and teams["t-2"]["pageInfo"]["hasNextPage"] is False
    following = await gql(query, {"after": teams["t-1"]["pageInfo"]["endCursor"]})
    again = {t["id"]: t["checkins"]["nodes"] for t in following["teams"]["nodes"]}
    # The cursor is a position in the order, so it applies to every parent: t-2 has nothing before 2026-05-21.
    assert again == {"t-1": [{"id": "c-2"}], "t-2": [{"id": "c-3"}]}


async def test_cursors_survive_writes_around_them(gql, fresh_world) -> None:
    page = await _page(gql, "actors", "first: 2")
    assert _keys(page) == ["a-1", "a-2"]
    writer = WriteService(fresh_world)
    await writer.create(
        "actor",
        [
            {"id": "a-0", "actor_type": "agent", "name": "Zero"},
            {"id": "a-25", "actor_type": "agent", "name": "Between"},
        ],
    )
    await writer.delete_one("actor", "a-4")
    following = await _page(gql, "actors", f'first: 10, after: "{page["pageInfo"]["endCursor"]}"')
    assert _keys(following) == ["a-25", "a-3"]


async def test_default_and_maximum_page_size(gql, clean) -> None:
    await WriteService(clean).create(
        "actor", [{"id": f"x-{i:03}", "actor_type": "agent", "name": str(i)} for i in range(105)]
    )
    page = await _page(gql, "actors", "")
    assert len(page["nodes"]) == 100 and page["pageInfo"]["hasNextPage"] is True and page["totalCount"] == 105
    assert len((await _page(gql, "actors", "first: 100"))["nodes"]) == 100
    assert len((await _page(gql, "actors", "last: 100"))["nodes"]) == 100
    rest = await _page(gql, "actors", f'after: "{page["pageInfo"]["endCursor"]}"')
    assert _keys(rest) == [f"x-{i:03}" for i in range(100, 105)]
