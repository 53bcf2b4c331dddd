"""Every where operator of every field type, and and/or/not, against the seeded world."""

from __future__ import annotations

import pytest

CASES = [
    # IDFilter
    ("actors", '{id: {eq: "a-1"}}', ["a-1"]),
    ("actors", '{id: {neq: "a-1"}}', ["a-2", "a-3", "a-4"]),
    ("actors", '{id: {in: ["a-1", "a-3", "zz"]}}', ["a-1", "a-3"]),
    ("actors", "{id: {in: []}}", []),
    ("actors", '{id: {notIn: ["a-1", "a-3"]}}', ["a-2", "a-4"]),
    ("actors", '{id: {gt: "a-2"}}', ["a-3", "a-4"]),
    ("actors", '{id: {gte: "a-2"}}', ["a-2", "a-3", "a-4"]),
    ("actors", '{id: {lt: "a-2"}}', ["a-1"]),
    ("actors", '{id: {lte: "a-2"}}', ["a-1", "a-2"]),
    ("actors", '{id: {like: "a-%"}}', ["a-1", "a-2", "a-3", "a-4"]),
    ("actors", '{id: {ilike: "A-_"}}', ["a-1", "a-2", "a-3", "a-4"]),
    ("actors", "{id: {isNull: false}}", ["a-1", "a-2", "a-3", "a-4"]),
    ("goalStories", "{parentId: {isNull: true}}", ["g-1", "g-4"]),
    ("goalStories", '{parentId: {eq: "g-1"}}', ["g-2", "g-3"]),
    # StringFilter
    ("actors", '{name: {eq: "Ada"}}', ["a-1"]),
    ("actors", '{name: {neq: "Ada"}}', ["a-2", "a-3", "a-4"]),
    ("actors", '{name: {in: ["Ada", "Cy"]}}', ["a-1", "a-3"]),
    ("actors", '{name: {notIn: ["Ada", "Cy"]}}', ["a-2", "a-4"]),
    ("actors", '{name: {gt: "Bot"}}', ["a-3", "a-4"]),
    ("actors", '{name: {gte: "Bot"}}', ["a-2", "a-3", "a-4"]),
    ("actors", '{name: {lt: "Bot"}}', ["a-1"]),
    ("actors", '{name: {lte: "Bot"}}', ["a-1", "a-2"]),
    ("actors", '{name: {like: "D%"}}', []),
    ("actors", '{name: {ilike: "D%"}}', ["a-4"]),
    ("actors", "{role: {isNull: true}}", ["a-2", "a-4"]),
    ("actors", "{role: {isNull: false}}", ["a-1", "a-3"]),
    ("actors", '{timezone: {like: "%/%"}}', ["a-1", "a-3"]),
    ("teams", '{description: {ilike: "%api%"}}', ["t-1"]),
    # enum filters
    ("actors", "{actorType: {eq: AGENT}}", ["a-2"]),
    ("actors", "{actorType: {neq: AGENT}}", ["a-1", "a-3", "a-4"]),
    ("actors", "{actorType: {in: [AGENT, PERSON]}}", ["a-1", "a-2", "a-3", "a-4"]),
    ("actors", "{actorType: {notIn: [PERSON]}}", ["a-2"]),
    ("goalStoryUpdates", "{status: {eq: AT_RISK}}", ["u-2"]),
    ("goalStoryUpdates", "{status: {in: [ON_TRACK, COMPLETED]}}", ["u-1", "u-4"]),
    ("goalStoryUpdates", "{status: {isNull: true}}", ["u-3"]),
    ("goalStoryUpdates", "{status: {notIn: [ON_TRACK]}}", ["u-2", "u-4"]),
    # events, named by the row they record
    ("coordinationEvents", '{eventType: {eq: GOAL_STORY_UPDATE}, actorId: {eq: "a-1"}}', ["u-1", "u-2"]),
    ("coordinationEvents", '{eventType: {neq: GOAL_STORY_UPDATE}, actorId: {eq: "a-1"}}', ["c-1", "c-4"]),
    ("coordinationEvents", '{referenceId: {in: ["c-3", "u-3"]}}', ["c-3", "u-3"]),
    (
        "coordinationEvents",
        '{occurredAt: {lt: "2026-05-08T10:30:00Z"}, eventType: {in: [GOAL_STORY_UPDATE]}}',
        ["u-1", "u-2"],
    ),
    # DateFilter
    ("teamCheckins", '{date: {eq: "2026-05-19"}}', ["c-2"]),
    ("teamCheckins", '{date: {neq: "2026-05-19"}}', ["c-1", "c-3", "c-4"]),
    ("teamCheckins", '{date: {in: ["2026-05-19", "2026-05-21"]}}', ["c-2", "c-4"]),
    ("teamCheckins", '{date: {notIn: ["2026-05-19", "2026-05-21"]}}', ["c-1", "c-3"]),
    ("teamCheckins", '{date: {gt: "2026-05-19"}}', ["c-3", "c-4"]),
    ("teamCheckins", '{date: {gte: "2026-05-19"}}', ["c-2", "c-3", "c-4"]),
    ("teamCheckins", '{date: {lt: "2026-05-19"}}', ["c-1"]),
    ("teamCheckins", '{date: {lte: "2026-05-19"}}', ["c-1", "c-2"]),
    ("teamCheckins", '{teamId: {eq: "t-1"}, date: {gte: "2026-05-18", lte: "2026-05-20"}}', ["c-1", "c-2"]),
    # DateTimeFilter
    ("teamCheckins", '{createdAt: {eq: "2026-05-18T08:00:00Z"}}', ["c-1"]),
    ("teamCheckins", '{createdAt: {neq: "2026-05-18T10:00:00+02:00"}}', ["c-2", "c-3", "c-4"]),
    ("teamCheckins", '{createdAt: {in: ["2026-05-19T10:00:00Z", "2026-05-20T12:00:00+02:00"]}}', ["c-2", "c-3"]),
    ("teamCheckins", '{createdAt: {notIn: ["2026-05-19T10:00:00Z"]}}', ["c-1", "c-3", "c-4"]),
    ("teamCheckins", '{createdAt: {gt: "2026-05-19T10:00:00Z"}}', ["c-3", "c-4"]),
    ("teamCheckins", '{createdAt: {gte: "2026-05-19T10:00:00Z"}}', ["c-2", "c-3", "c-4"]),
    ("teamCheckins", '{createdAt: {lt: "2026-05-19T10:00:00Z"}}', ["c-1"]),
    ("teamCheckins", '{createdAt: {lte: "2026-05-19T10:00:00Z"}}', ["c-1", "c-2"]),
    ("teamCheckins", "{createdAt: {isNull: true}}", []),
    # IntFilter
    ("goalStoryUpdates", "{progressPercent: {eq: 30}}", ["u-2"]),
    ("goalStoryUpdates", "{progressPercent: {neq: 30}}", ["u-1", "u-4"]),
    ("goalStoryUpdates", "{progressPercent: {in: [10, 100]}}", ["u-1", "u-4"]),
    ("goalStoryUpdates", "{progressPercent: {notIn: [10, 100]}}", ["u-2"]),
    ("goalStoryUpdates", "{progressPercent: {gt: 10}}", ["u-2", "u-4"]),
    ("goalStoryUpdates", "{progressPercent: {gte: 30}}", ["u-2", "u-4"]),
    ("goalStoryUpdates", "{progressPercent: {lt: 30}}", ["u-1"]),
    ("goalStoryUpdates", "{progressPercent: {lte: 30}}", ["u-1", "u-2"]),
    ("goalStoryUpdates", "{progressPercent: {isNull: true}}", ["u-3"]),
    # list filters
    ("teams", '{memberIds: {contains: ["a-1"]}}', ["t-1"]),
    ("teams", '{memberIds: {contains: ["a-1", "a-2"]}}', ["t-1"]),
    ("teams", '{memberIds: {containedBy: ["a-1", "a-2", "a-3"]}}', ["t-1", "t-2"]),
    ("teams", '{memberIds: {overlaps: ["a-3", "a-9"]}}', ["t-2"]),
    ("teams", "{memberIds: {isNull: true}}", ["t-3"]),
    ("teamCheckins", '{next: {contains: ["ship"]}}', ["c-1", "c-3"]),
    ("teamCheckins", '{previously: {overlaps: ["crawl", "mockups"]}}', ["c-2", "c-3"]),
    ("teamCheckins", "{blockers: {isNull: false}}", ["c-1"]),
    ("goalStories", '{teamIds: {contains: ["t-2"]}}', ["g-2"]),
    ("goalStories", '{actorIds: {overlaps: ["a-1"]}}', ["g-1", "g-2"]),
    # timeframe
    ("goalStories", "{timeframe: {isNull: true}}", ["g-3"]),
    ("goalStories", "{timeframe: {isNull: false}}", ["g-1", "g-2", "g-4"]),
    ("goalStories", '{timeframe: {start: {gte: "2026-02-01"}}}', ["g-2", "g-4"]),
    ("goalStories", '{timeframe: {end: {lt: "2026-03-31"}}}', ["g-2"]),
    ("goalStories", '{timeframe: {start: {lte: "2026-03-01"}, end: {gte: "2026-03-01"}}}', ["g-1"]),
    ("goalStories", '{timeframe: {start: {eq: "2026-04-01"}}}', ["g-4"]),
    ("goalStories", '{timeframe: {start: {in: ["2026-04-01", "2026-01-01"]}}}', ["g-1", "g-4"]),
    ("goalStories", "{timeframe: {end: {isNull: true}}}", ["g-3"]),
    # event cursor
    ("coordinationEvents", '{cursor: {gt: "0"}, actorId: {eq: "a-3"}}', ["c-3", "u-4"]),
    ("coordinationEvents", '{cursor: {lt: "0"}}', []),
    # and / or / not
    ("actors", '{or: [{name: {eq: "Ada"}}, {role: {isNull: true}}]}', ["a-1", "a-2", "a-4"]),
    ("actors", "{and: [{actorType: {eq: PERSON}}, {role: {isNull: true}}]}", ["a-4"]),
    ("actors", "{not: {actorType: {eq: PERSON}}}", ["a-2"]),
    ("actors", '{not: {or: [{id: {eq: "a-1"}}, {id: {eq: "a-2"}}]}}', ["a-3", "a-4"]),
    ("actors", "{or: []}", []),
    ("actors", "{and: []}", ["a-1", "a-2", "a-3", "a-4"]),
    ("actors", "{}", ["a-1", "a-2", "a-3", "a-4"]),
    ("actors", "{or: [{}]}", ["a-1", "a-2", "a-3", "a-4"]),
    ("actors", '{actorType: {eq: PERSON}, or: [{name: {like: "A%"}}, {name: {like: "C%"}}]}', ["a-1", "a-3"]),
]


@pytest.mark.parametrize(("field", "where", "expected"), CASES)
async def test_where(gql, world, field, where, expected) -> None:
    key = "referenceId" if field == "coordinationEvents" else "id"
    data = await gql(f"{{ {field}(where: {where}) {{ totalCount nodes {{ key: {key} }} }} }}")
    connection = data[field]
    assert sorted(n["key"] for n in connection["nodes"]) == expected
    assert connection["totalCount"] == len(expected)


async def test_where_through_variables(gql, world) -> None:
    data = await gql(
        "query($w: TeamCheckinWhere) { teamCheckins(where: $w) { nodes { id } } }",
        {"w": {"date": {"gte": "2026-05-20"}, "actorId": {"in": ["a-1", "a-3"]}}},
    )
    assert [n["id"] for n in data["teamCheckins"]["nodes"]] == ["c-3", "c-4"]
