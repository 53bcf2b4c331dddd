"""Every mutation over HTTP, with the coordination event rule checked in the table itself."""

from __future__ import annotations

import uuid

import pytest
from graphql_helpers import counts, stored_events

EVENT = "coordinationEvent { id cursor eventType referenceId actorId occurredAt reference { __typename } }"


async def test_create_actor_with_and_without_id(gql, clean) -> None:
    data = await gql(
        'mutation { createActor(input: {id: "p-1", actorType: PERSON, name: "Quinn Reed", '
        'role: "Product Manager", timezone: "America/Chicago"}) { actor { id actorType name role '
        "timezone teams { totalCount } } } }"
    )
    assert data["createActor"]["actor"] == {
        "id": "p-1",
        "actorType": "PERSON",
        "name": "Quinn Reed",
        "role": "Product Manager",
        "timezone": "America/Chicago",
        "teams": {"totalCount": 0},
    }
    data = await gql('mutation { createActor(input: {actorType: AGENT, name: "Research Bot"}) { actor { id role } } }')
    generated = data["createActor"]["actor"]
    assert uuid.UUID(generated["id"]) and generated["role"] is None
    assert (await counts(clean))["actors"] == 2
    assert await stored_events(clean) == []


async def test_create_team_and_goal_story(gql, clean) -> None:
    await gql(
        'mutation { createActors(input: [{id: "p-1", actorType: PERSON, name: "P"}, '
        '{id: "b-1", actorType: AGENT, name: "B"}]) { actors { id } } }'
    )
    team = await gql(
        'mutation { createTeam(input: {id: "t-1", name: "Product", description: "Core", '
        'memberIds: ["p-1", "b-1"]}) { team { id name description memberIds members { id } } } }'
    )
    assert team["createTeam"]["team"] == {
        "id": "t-1",
        "name": "Product",
        "description": "Core",
        "memberIds": ["p-1", "b-1"],
        "members": [{"id": "p-1"}, {"id": "b-1"}],
    }
    story = await gql("""mutation { createGoalStory(input: {id: "g-1", title: "Onboarding", teamIds: ["t-1"],
        actorIds: ["p-1", "b-1"], timeframe: {start: "2026-01-06", end: "2026-03-31"},
        createdAt: "2026-01-05T12:00:00-06:00"}) { goalStory { id title timeframe { start end } createdAt
        teams { id } actors { id } parent { id } } } }""")
    assert story["createGoalStory"]["goalStory"] == {
        "id": "g-1",
        "title": "Onboarding",
        "timeframe": {"start": "2026-01-06", "end": "2026-03-31"},
        "createdAt": "2026-01-05T18:00:00+00:00",
        "teams": [{"id": "t-1"}],
        "actors": [{"id": "p-1"}, {"id": "b-1"}],
        "parent": None,
    }
    child = await gql(
        'mutation { createGoalStory(input: {id: "g-2", title: "Docs", parentId: "g-1"}) '
        "{ goalStory { parent { id } } } }"
    )
    assert child["createGoalStory"]["goalStory"]["parent"] == {"id": "g-1"}
    assert await stored_events(clean) == []


async def test_create_checkin_and_update_record_one_event_each(gql, fresh_world) -> None:
    before = await stored_events(fresh_world)
    data = await gql(f"""mutation {{ createTeamCheckin(input: {{actorId: "a-1", teamId: "t-1", date: "2026-05-22",
        previously: ["a"], next: ["b"], blockers: ["c"]}}) {{ teamCheckin {{ id date createdAt actor {{ id }} }}
        {EVENT} }} }}""")
    checkin = data["createTeamCheckin"]["teamCheckin"]
    event = data["createTeamCheckin"]["coordinationEvent"]
    assert event["eventType"] == "TEAM_CHECKIN" and event["referenceId"] == checkin["id"]
    assert event["actorId"] == "a-1" and event["occurredAt"] == checkin["createdAt"]
    assert event["reference"] == {"__typename": "TeamCheckin"}
    assert await stored_events(fresh_world) == [*before, ("team_checkin", checkin["id"], "a-1")]

    data = await gql(f"""mutation {{ createGoalStoryUpdate(input: {{id: "u-9", actorId: "a-2", goalStoryId: "g-1",
        date: "2026-05-22", title: "On track", content: "Fine", status: ON_TRACK, progressPercent: 70}}) {{
        goalStoryUpdate {{ id status progressPercent goalStory {{ id }} }} {EVENT} }} }}""")
    assert data["createGoalStoryUpdate"]["goalStoryUpdate"] == {
        "id": "u-9",
        "status": "ON_TRACK",
        "progressPercent": 70,
        "goalStory": {"id": "g-1"},
    }
    event2 = data["createGoalStoryUpdate"]["coordinationEvent"]
    assert event2["eventType"] == "GOAL_STORY_UPDATE" and int(event2["cursor"]) > int(event["cursor"])
    assert await stored_events(fresh_world) == [
        *before,
        ("team_checkin", checkin["id"], "a-1"),
        ("goal_story_update", "u-9", "a-2"),
    ]


async def test_bulk_create_is_atomic_with_one_event_per_row(gql, fresh_world) -> None:
    before = await stored_events(fresh_world)
    data = await gql("""mutation { createTeamCheckins(input: [
        {id: "n-1", actorId: "a-1", teamId: "t-1", date: "2026-06-01"},
        {id: "n-2", actorId: "a-2", teamId: "t-1", date: "2026-06-01"},
        {id: "n-3", actorId: "a-3", teamId: "t-2", date: "2026-06-01"}]) {
        teamCheckins { id } coordinationEvents { referenceId cursor } } }""")
    payload = data["createTeamCheckins"]
    assert [c["id"] for c in payload["teamCheckins"]] == ["n-1", "n-2", "n-3"]
    assert [e["referenceId"] for e in payload["coordinationEvents"]] == ["n-1", "n-2", "n-3"]
    assert len(await stored_events(fresh_world)) == len(before) + 3

    unchanged = await counts(fresh_world)
    errors = await gql.errors("""mutation { createGoalStoryUpdates(input: [
        {actorId: "a-1", goalStoryId: "g-1", date: "2026-06-01", title: "ok", content: "ok"},
        {actorId: "a-1", goalStoryId: "g-404", date: "2026-06-01", title: "bad", content: "bad"}]) {
        goalStoryUpdates { id } } }""")
    assert errors[0]["extensions"]["code"] == "CONFLICT" and errors[0]["extensions"]["ids"] == ["g-404"]
    assert await counts(fresh_world) == unchanged

    data = await gql("mutation { createActors(input: []) { actors { id } } }")
    assert data["createActors"]["actors"] == []
    data = await gql(
        'mutation { createGoalStories(input: [{id: "r-1", title: "R"}, {id: "r-2", title: "S", '
        'parentId: "r-1"}]) { goalStories { id parentId } } }'
    )
    assert data["createGoalStories"]["goalStories"] == [
        {"id": "r-1", "parentId": None},
        {"id": "r-2", "parentId": "r-1"},
    ]
    data = await gql('mutation { createTeams(input: [{id: "t-8", name: "Eight"}]) { teams { id } } }')
    assert data["createTeams"]["teams"] == [{"id": "t-8"}]


@pytest.mark.parametrize(
    ("mutation", "entity_id", "change", "selection", "expected"),
    [
        ("updateTeamCheckin", "c-1", '{blockers: ["new"]}', "blockers next", {"blockers": ["new"], "next": ["ship"]}),
        ("updateTeamCheckin", "c-1", "{next: null}", "blockers next", {"blockers": ["review"], "next": None}),
        ("updateTeamCheckin", "c-1", '{date: "2026-05-17"}', "date", {"date": "2026-05-17"}),
        (
            "updateGoalStoryUpdate",
            "u-1",
            "{status: PAUSED, progressPercent: null}",
            "status progressPercent title",
            {"status": "PAUSED", "progressPercent": None, "title": "Kickoff"},
        ),
        ("updateGoalStoryUpdate", "u-3", '{content: "Rewritten"}', "content", {"content": "Rewritten"}),
    ],
)
async def test_a_substantive_update_records_one_event(
    gql, fresh_world, mutation, entity_id, change, selection, expected
) -> None:
    before = await stored_events(fresh_world)
    payload = (
        await gql(
            f'mutation {{ {mutation}(id: "{entity_id}", input: {change}) {{ '
            f"row: {mutation[6].lower()}{mutation[7:]} {{ {selection} }} {EVENT} }} }}"
        )
    )[mutation]
    assert payload["row"] == expected
    assert payload["coordinationEvent"]["referenceId"] == entity_id
    after = await stored_events(fresh_world)
    assert after[:-1] == before and after[-1][1] == entity_id


@pytest.mark.parametrize(
    ("mutation", "entity_id", "change"),
    [
        ("updateTeamCheckin", "c-1", '{next: ["ship"], teamId: "t-1"}'),
        ("updateTeamCheckin", "c-2", "{}"),
        ("updateTeamCheckin", "c-2", "{blockers: null}"),
        ("updateGoalStoryUpdate", "u-1", "{status: ON_TRACK, progressPercent: 10}"),
    ],
)
async def test_a_no_op_update_records_no_event(gql, fresh_world, mutation, entity_id, change) -> None:
    before = await stored_events(fresh_world)
    payload = (await gql(f'mutation {{ {mutation}(id: "{entity_id}", input: {change}) {{ {EVENT} }} }}'))[mutation]
    assert payload["coordinationEvent"] is None
    assert await stored_events(fresh_world) == before


async def test_update_without_events(gql, fresh_world) -> None:
    data = await gql(
        'mutation { updateActor(id: "a-1", input: {role: null, name: "Ada L."}) { actor { id name role timezone } } }'
    )
    assert data["updateActor"]["actor"] == {"id": "a-1", "name": "Ada L.", "role": None, "timezone": "Europe/London"}
    data = await gql('mutation { updateTeam(id: "t-3", input: {memberIds: ["a-4"]}) { team { members { id } } } }')
    assert data["updateTeam"]["team"]["members"] == [{"id": "a-4"}]
    data = await gql(
        'mutation { updateGoalStory(id: "g-3", input: {timeframe: {start: "2026-07-01", '
        'end: "2026-07-31"}, parentId: null}) { goalStory { parentId timeframe { start end } } } }'
    )
    assert data["updateGoalStory"]["goalStory"] == {
        "parentId": None,
        "timeframe": {"start": "2026-07-01", "end": "2026-07-31"},
    }
    data = await gql(
        'mutation { updateGoalStory(id: "g-3", input: {timeframe: null}) { goalStory { timeframe { start } } } }'
    )
    assert data["updateGoalStory"]["goalStory"]["timeframe"] is None


async def test_delete_returns_the_row_and_keeps_its_events(gql, fresh_world) -> None:
    before = await stored_events(fresh_world)
    data = await gql('mutation { deleteTeamCheckin(id: "c-2") { deletedId teamCheckin { id actorId previously } } }')
    assert data["deleteTeamCheckin"] == {
        "deletedId": "c-2",
        "teamCheckin": {"id": "c-2", "actorId": "a-2", "previously": ["crawl", "sum"]},
    }
    data = await gql('mutation { deleteGoalStoryUpdate(id: "u-3") { goalStoryUpdate { id title } } }')
    assert data["deleteGoalStoryUpdate"]["goalStoryUpdate"] == {"id": "u-3", "title": "Draft"}
    assert await stored_events(fresh_world) == before
    assert (await gql('{ teamCheckin(id: "c-2") { id } }'))["teamCheckin"] is None
    data = await gql(
        'mutation { deleteActor(id: "a-4") { actor { name } } deleteTeam(id: "t-3") { team { id } } '
        'deleteGoalStory(id: "g-4") { goalStory { title } } }'
    )
    assert data == {
        "deleteActor": {"actor": {"name": "dee"}},
        "deleteTeam": {"team": {"id": "t-3"}},
        "deleteGoalStory": {"goalStory": {"title": "Marketing"}},
    }
    left = await counts(fresh_world)
    assert (left["actors"], left["teams"], left["goal_stories"]) == (3, 2, 3)


async def test_deleting_a_referenced_row_is_a_conflict_naming_the_referrers(gql, fresh_world) -> None:
    before = await counts(fresh_world)
    errors = await gql.errors('mutation { deleteActor(id: "a-3") { actor { id } } }')
    extensions = errors[0]["extensions"]
    assert extensions["code"] == "CONFLICT" and extensions["reason"] == "referenced"
    assert extensions["referrers"] == {
        "teams": ["t-2"],
        "team_checkins": ["c-3"],
        "goal_stories": ["g-2"],
        "goal_story_updates": ["u-4"],
        "coordination_events": extensions["referrers"]["coordination_events"],
    }
    assert await counts(fresh_world) == before
    errors = await gql.errors('mutation { deleteGoalStory(id: "g-1") { goalStory { id } } }')
    assert errors[0]["extensions"]["code"] == "CONFLICT"
    assert await counts(fresh_world) == before


async def test_update_through_variables_left_out_stays_and_null_clears(gql, fresh_world) -> None:
    mutation = """mutation($id: ID!, $input: UpdateTeamCheckinInput!) { updateTeamCheckin(id: $id, input: $input) {
        teamCheckin { next blockers previously } coordinationEvent { referenceId } } }"""
    before = await stored_events(fresh_world)
    data = await gql(mutation, {"id": "c-1", "input": {"blockers": None}})
    assert data["updateTeamCheckin"] == {
        "teamCheckin": {"next": ["ship"], "blockers": None, "previously": None},
        "coordinationEvent": {"referenceId": "c-1"},
    }
    data = await gql(mutation, {"id": "c-1", "input": {}})
    assert data["updateTeamCheckin"]["coordinationEvent"] is None
    assert data["updateTeamCheckin"]["teamCheckin"]["next"] == ["ship"]
    assert len(await stored_events(fresh_world)) == len(before) + 1


async def test_payloads_serve_the_rows_as_a_query_reads_them(gql, fresh_world) -> None:
    # The payloads are built from the rows the write service stored, not read back: every
    # kind of value (a half timeframe, sub-second timestamps, lists, nulls) must come out as a read.
    story = "id title description actorIds teamIds parentId timeframe { start end } createdAt"
    made = await gql(f"""mutation {{ createGoalStory(input: {{id: "g-9", title: "Half", teamIds: ["t-2", "t-1"],
        parentId: "g-1", timeframe: {{start: "2026-02-01"}}, createdAt: "2026-01-05T12:00:00.123456-06:00"}})
        {{ goalStory {{ {story} }} }} }}""")
    assert made["createGoalStory"]["goalStory"] == (await gql(f'{{ goalStory(id: "g-9") {{ {story} }} }}'))["goalStory"]
    assert made["createGoalStory"]["goalStory"]["timeframe"] == {"start": "2026-02-01", "end": None}

    checkin = "id actorId teamId date next previously blockers createdAt"
    made = await gql(f"""mutation {{ createTeamCheckins(input: [{{id: "c-8", actorId: "a-1", teamId: "t-1",
        date: "2026-05-22", next: ["b", "a"]}}, {{id: "c-9", actorId: "a-2", teamId: "t-1", date: "2026-05-23",
        blockers: []}}]) {{ teamCheckins {{ {checkin} }} }} }}""")
    read = await gql(f'{{ a: teamCheckin(id: "c-8") {{ {checkin} }} b: teamCheckin(id: "c-9") {{ {checkin} }} }}')
    assert made["createTeamCheckins"]["teamCheckins"] == [read["a"], read["b"]]

    changed = await gql(f"""mutation {{ updateGoalStory(id: "g-9", input: {{timeframe: {{start: "2026-02-01",
        end: "2026-02-28"}}, description: "Now whole"}}) {{ goalStory {{ {story} }} }} }}""")
    read = await gql(f'{{ goalStory(id: "g-9") {{ {story} }} }}')
    assert changed["updateGoalStory"]["goalStory"] == read["goalStory"]
    before = (await gql(f'{{ teamCheckin(id: "c-9") {{ {checkin} }} }}'))["teamCheckin"]
    removed = await gql(f'mutation {{ deleteTeamCheckin(id: "c-9") {{ teamCheckin {{ {checkin} }} deletedId }} }}')
    assert removed["deleteTeamCheckin"] == {"teamCheckin": before, "deletedId": "c-9"}
