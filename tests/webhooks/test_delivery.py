"""Delivery to real receivers: signed, in cursor order, retried, disabled and resumed, filtered, Slack's format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook as Verifier

from api.store.writes import WriteService
from tests.conftest import RunningServer

from .conftest import Admin, Answer, Received, Receiver, checkins, cursors_of


async def received(receiver: Receiver, count: int) -> list[Received]:
    return await asyncio.to_thread(receiver.wait_for, count)


async def until(check: Callable[[], object], what: str) -> None:
    """Poll an async condition until it holds (the server works in its own thread)."""
    deadline = asyncio.get_running_loop().time() + 20.0
    while not await check():  # type: ignore[misc]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_events_arrive_signed_in_cursor_order_with_the_rest_representation(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine, receiver: Receiver
) -> None:
    with served() as base:
        async with Admin(base) as admin:
            hook = await admin.create(receiver.url, description="all events")
            assert hook["secret"].startswith("whsec_") and hook["enabled"]
            expected = await checkins(hooks_engine, 12)
            # A bulk write's events, and a goal story update's, come in the same order.
            writer = WriteService(hooks_engine)
            bulk = await writer.create(
                "team_checkin",
                [{"actor_id": "a-2", "team_id": "t-1", "date": "2026-05-19", "blockers": [f"b{i}"]} for i in range(5)],
            )
            update = await writer.create(
                "goal_story_update",
                [{"actor_id": "a-1", "goal_story_id": "g-1", "date": "2026-05-19", "title": "T", "content": "C"}],
            )
            expected += [e["seq"] for e in bulk.events] + [update.events[0]["seq"]]
            got = await received(receiver, len(expected))
            async with httpx.AsyncClient(base_url=base) as rest:
                for message in got:
                    verified = Verifier(hook["secret"]).verify(message.body, message.headers)
                    event = verified["data"]["event"]
                    assert message.id == event["id"]
                    assert verified["type"] == f"coordination_event.{event['event_type']}"
                    assert verified["timestamp"] == event["occurred_at"]
                    assert isinstance(verified["data"]["cursor"], str)  # opaque, as GraphQL and SSE give it
                    assert message.headers["content-type"] == "application/json"
                    shown = (await rest.get("/coordination_events", params={"id": f"eq.{event['id']}"})).json()
                    assert shown == [event]
                    resource = "team_checkins" if event["event_type"] == "team_checkin" else "goal_story_updates"
                    stored = (await rest.get(f"/{resource}", params={"id": f"eq.{event['reference_id']}"})).json()
                    assert stored == [verified["data"]["reference"]]
            assert cursors_of(got) == expected
            # A signature made with another secret, or over another body, does not verify.
            other = Verifier("whsec_" + "A" * 43)
            for bad in (
                lambda: other.verify(got[0].body, got[0].headers),
                lambda: Verifier(hook["secret"]).verify(got[1].body, got[0].headers),
            ):
                try:
                    bad()
                except Exception as error:
                    assert type(error).__name__ == "WebhookVerificationError"
                else:
                    raise AssertionError("a forged message verified")

            async def saved() -> bool:
                return (await admin.webhook(hook["id"]))["cursor"] == str(expected[-1])

            await until(saved, "the last cursor to be saved")
            state = await admin.webhook(hook["id"])
            assert state["deliveredCount"] == len(expected) and state["failedCount"] == 0
            log = state["deliveries"]
            assert [int(d["eventCursor"]) for d in reversed(log)] == expected
            assert all(d["delivered"] and d["status"] == 200 and d["attempt"] == 1 for d in log)
    assert len(receiver.received) == len(expected)


async def test_a_failing_answer_is_retried_before_the_next_event(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    with Receiver(lambda i, got: Answer(500 if i < 2 else 200)) as receiver, served() as base:
        async with Admin(base) as admin:
            hook = await admin.create(receiver.url)
            expected = await checkins(hooks_engine, 3)
            got = await received(receiver, 5)
            # The first event three times (500, 500, then 200), with the same webhook-id, then the others.
            assert cursors_of(got) == [expected[0]] * 3 + expected[1:]
            assert len({m.id for m in got[:3]}) == 1
            for message in got:
                Verifier(hook["secret"]).verify(message.body, message.headers)

            async def logged() -> bool:
                return len((await admin.webhook(hook["id"]))["deliveries"]) == 5

            await until(logged, "five attempts in the log")
            first = [
                d
                for d in reversed((await admin.webhook(hook["id"]))["deliveries"])
                if int(d["eventCursor"]) == expected[0]
            ]
            assert [(d["attempt"], d["status"], d["delivered"]) for d in first] == [
                (1, 500, False),
                (2, 500, False),
                (3, 200, True),
            ]
            assert first[0]["error"].startswith("HTTP 500") and first[0]["retryAt"] is not None
            assert first[2]["error"] is None and first[2]["retryAt"] is None


async def test_a_timeout_is_retried(served: Callable[..., RunningServer], hooks_engine: AsyncEngine) -> None:
    # The first answer comes after twice the timeout: the attempt fails and the event is sent again. The
    # timeout leaves room for a busy machine's slowest answer, so that only the first attempt times out.
    with Receiver(lambda i, got: Answer(delay=4.0 if i == 0 else 0)) as receiver, served(webhook_timeout_s=2) as base:
        async with Admin(base) as admin:
            hook = await admin.create(receiver.url)
            expected = await checkins(hooks_engine, 2)
            got = await received(receiver, 3)
            assert cursors_of(got) == [expected[0], expected[0], expected[1]]
            log = (await admin.webhook(hook["id"]))["deliveries"]
            timed_out = [d for d in log if not d["delivered"]]
            assert len(timed_out) == 1 and timed_out[0]["status"] is None
            assert timed_out[0]["error"] == "timed out after 2 s"
            assert timed_out[0]["latencyMs"] >= 1900


async def test_a_refused_connection_is_retried_until_the_receiver_listens(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    from tests.processes import free_port

    port = free_port()
    with served(webhook_retry_schedule_s=(0.2,) * 50) as base:
        async with Admin(base) as admin:
            hook = await admin.create(f"http://127.0.0.1:{port}/hook")
            expected = await checkins(hooks_engine, 2)

            async def refused_twice() -> bool:
                log = (await admin.webhook(hook["id"]))["deliveries"]
                return len(log) >= 2

            await until(refused_twice, "two refused attempts")
            log = (await admin.webhook(hook["id"]))["deliveries"]
            assert all(not d["delivered"] and d["error"].startswith("could not connect") for d in log)
            assert {int(d["eventCursor"]) for d in log} == {expected[0]}
            with Receiver(port=port) as receiver:
                got = await received(receiver, 2)
                assert cursors_of(got) == expected


async def test_429_waits_for_retry_after(served: Callable[..., RunningServer], hooks_engine: AsyncEngine) -> None:
    answers = lambda i, got: Answer(429, {"Retry-After": "1"}) if i == 0 else Answer()  # noqa: E731
    with Receiver(answers) as receiver, served() as base:
        async with Admin(base) as admin:
            hook = await admin.create(receiver.url)
            expected = await checkins(hooks_engine, 1)
            first, second = await received(receiver, 2)
            assert cursors_of([first, second]) == expected * 2
            # The schedule says 0.1 s; the receiver asked for 1 s.
            assert second.at - first.at >= 0.95
            log = (await admin.webhook(hook["id"]))["deliveries"]
            limited = [d for d in log if d["status"] == 429]
            assert len(limited) == 1 and limited[0]["retryAt"] > limited[0]["attemptedAt"]


async def metric(base: str, name: str, webhook: str) -> float:
    async with httpx.AsyncClient(base_url=base) as client:
        text = (await client.get("/metrics")).text
    prefix = f'{name}{{webhook="{webhook}"}} '
    values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
    assert len(values) == 1, f"{prefix!r} not in /metrics"
    return values[0]


async def test_410_disables_and_enabling_resumes_with_nothing_lost(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    gone: set[int] = set()

    def answer(index: int, got: Received) -> Answer:
        return Answer(410) if int(json.loads(got.body)["data"]["cursor"]) in gone else Answer()

    with Receiver(answer) as receiver, served() as base:
        async with Admin(base) as admin:
            hook = await admin.create(receiver.url)
            first = await checkins(hooks_engine, 3)
            gone.add(first[2])
            await received(receiver, 3)

            async def disabled() -> bool:
                return not (await admin.webhook(hook["id"]))["enabled"]

            await until(disabled, "the webhook to be disabled")
            state = await admin.webhook(hook["id"])
            assert state["disabledReason"] == "the receiver answered 410 Gone"
            assert state["cursor"] == str(first[1])
            later = await checkins(hooks_engine, 2)
            # What waits shows on /metrics: the refused event and the two written since.
            assert await metric(base, "coco_webhook_disabled", hook["id"]) == 1
            assert await metric(base, "coco_webhook_lag_events", hook["id"]) == 3
            assert await metric(base, "coco_webhook_lag_seconds", hook["id"]) > 0
            assert await metric(base, "coco_webhook_delivered_total", hook["id"]) == 2
            assert await metric(base, "coco_webhook_failed_total", hook["id"]) == 1

            gone.clear()
            assert (await admin.enable(hook["id"]))["enabled"]
            got = await received(receiver, 6)
            # The refused event once more, then the later ones; nothing was sent while disabled.
            assert cursors_of(got) == [*first, first[2], *later]

            async def caught_up() -> bool:
                return await metric(base, "coco_webhook_lag_events", hook["id"]) == 0

            await until(caught_up, "the lag to drop to 0")
            assert await metric(base, "coco_webhook_disabled", hook["id"]) == 0
            assert await metric(base, "coco_webhook_lag_seconds", hook["id"]) == 0
    assert len(receiver.received) == 6


async def test_an_exhausted_schedule_disables_and_keeps_the_cursor(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    failing = [True]
    with (
        Receiver(lambda i, got: Answer(503) if failing[0] else Answer()) as receiver,
        served(webhook_retry_schedule_s=(0.05, 0.05)) as base,
    ):
        async with Admin(base) as admin:
            hook = await admin.create(receiver.url)
            expected = await checkins(hooks_engine, 2)
            await received(receiver, 3)

            async def disabled() -> bool:
                return not (await admin.webhook(hook["id"]))["enabled"]

            await until(disabled, "the webhook to be disabled")
            state = await admin.webhook(hook["id"])
            assert state["disabledReason"].startswith(f"gave up after 3 failed attempts at event cursor {expected[0]}")
            assert "HTTP 503" in state["disabledReason"]
            assert [d["attempt"] for d in reversed(state["deliveries"])] == [1, 2, 3]
            assert int(state["cursor"]) < expected[0]
            failing[0] = False
            await admin.enable(hook["id"])
            got = await received(receiver, 5)
            assert cursors_of(got) == [expected[0]] * 4 + [expected[1]]
            after = await admin.webhook(hook["id"])
            assert after["deliveries"][-1]["attempt"] == 1  # the schedule started afresh


async def test_filters_by_event_type_team_and_actor(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    writer = WriteService(hooks_engine)

    async def checkin(actor: str, team: str) -> int:
        result = await writer.create("team_checkin", [{"actor_id": actor, "team_id": team, "date": "2026-05-20"}])
        return result.events[0]["seq"]

    async def update(actor: str, goal: str) -> int:
        document = {"actor_id": actor, "goal_story_id": goal, "date": "2026-05-20", "title": "T", "content": "C"}
        return (await writer.create("goal_story_update", [document])).events[0]["seq"]

    with Receiver() as updates, Receiver() as frontend, Receiver() as bot, served() as base:
        async with Admin(base) as admin:
            await admin.create(updates.url, eventTypes=["GOAL_STORY_UPDATE"])
            await admin.create(frontend.url, teamIds=["t-2"])
            both = await admin.create(bot.url, actorIds=["a-2"], teamIds=["t-2"])
            assert both["actorIds"] == ["a-2"] and both["teamIds"] == ["t-2"] and both["eventTypes"] is None
            c1 = await checkin("a-1", "t-1")
            c2 = await checkin("a-3", "t-2")
            c3 = await checkin("a-2", "t-1")
            u1 = await update("a-1", "g-1")
            u2 = await update("a-3", "g-2")
            c4 = await checkin("a-2", "t-2")
            # The last event matches every webhook: whatever one should not get would have come before it.
            last = await update("a-2", "g-2")
            assert c1 and c3
            assert cursors_of(await received(updates, 3)) == [u1, u2, last]
            assert cursors_of(await received(frontend, 4)) == [c2, u2, c4, last]
            assert cursors_of(await received(bot, 2)) == [c4, last]


async def test_slack_format(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine, receiver: Receiver
) -> None:
    writer = WriteService(hooks_engine)
    with served() as base:
        async with Admin(base) as admin:
            hook = await admin.create(receiver.url, format="SLACK")
            assert hook["format"] == "SLACK"
            checkin = await writer.create(
                "team_checkin",
                [
                    {
                        "actor_id": "a-1",
                        "team_id": "t-1",
                        "date": "2026-05-21",
                        "previously": ["API <v2> & docs"],
                        "next": ["ship"],
                        "blockers": ["waiting on review", "no staging"],
                    }
                ],
            )
            await writer.create(
                "goal_story_update",
                [
                    {
                        "actor_id": "a-3",
                        "goal_story_id": "g-2",
                        "date": "2026-05-21",
                        "title": "Vendor late",
                        "content": "The vendor slipped a week.",
                        "status": "at_risk",
                        "progress_percent": 30,
                    }
                ],
            )
            # The reference is read as it is stored when its event is sent: edit once both were sent.
            await received(receiver, 2)
            await writer.update_one("team_checkin", checkin.rows[0]["id"], {"blockers": None})
            got = await received(receiver, 3)
    for message in got:
        Verifier(hook["secret"]).verify(message.body, message.headers, json_parse=False)
        assert set(json.loads(message.body)) == {"text"}
    posted, updated, edited = (json.loads(m.body)["text"] for m in got)
    assert posted == (
        "*Ada* checked in for *Backend* (2026-05-21)\n"
        "Done: API &lt;v2&gt; &amp; docs\n"
        "Next: ship\n"
        ":no_entry: *Blocked:* waiting on review; no staging"
    )
    assert (
        updated == "*Cy* posted an update on *Site*: Vendor late (:warning: at risk, 30%)\n> The vendor slipped a week."
    )
    assert edited.startswith("*Ada* edited their check-in for *Backend*") and "Blocked" not in edited
