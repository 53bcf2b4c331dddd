"""Delivery across restarts and processes: nothing lost, at most the one event in flight repeated."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService
from tests.conftest import RunningServer
from tests.processes import free_port, running, wait_healthy

from .conftest import Admin, Answer, Received, Receiver, cursors_of, row

ROOT = Path(__file__).resolve().parents[2]


async def bulk(engine: AsyncEngine, count: int) -> list[int]:
    """`count` check-ins in one write: a backlog at once."""
    documents = [{"actor_id": "a-1", "team_id": "t-1", "date": "2026-05-22", "next": [f"n{i}"]} for i in range(count)]
    result = await WriteService(engine).create("team_checkin", documents)
    return [e["seq"] for e in result.events]


def assert_once_each_in_order(got: list[Received], expected: list[int], repeats_allowed: int) -> None:
    cursors = cursors_of(got)
    # In order (a repeat comes right after the first time), nothing missing, nothing foreign.
    assert cursors == sorted(cursors)
    assert sorted(set(cursors)) == expected
    repeated = [c for c, n in Counter(cursors).items() if n > 1]
    assert len(repeated) <= repeats_allowed and all(Counter(cursors)[c] == 2 for c in repeated), repeated


async def test_a_restart_in_the_middle_of_a_backlog_loses_nothing(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    # A slow receiver, so that the server stops with most of the backlog still to send.
    with Receiver(lambda i, got: Answer(delay=0.02)) as receiver:
        with served() as base:
            async with Admin(base) as admin:
                hook = await admin.create(receiver.url)
            expected = await bulk(hooks_engine, 60)
            await asyncio.to_thread(receiver.wait_for, 10)
        stopped_at = len(receiver.received)
        assert stopped_at < len(expected)
        saved = (await row(hooks_engine, hook["id"]))["cursor"]
        assert saved in expected[stopped_at - 2 : stopped_at]
        with served():
            await asyncio.to_thread(receiver.wait_until, lambda got: expected[-1] in cursors_of(got), "the last event")
            state = await row(hooks_engine, hook["id"])
            while state["cursor"] != expected[-1]:
                await asyncio.sleep(0.05)
                state = await row(hooks_engine, hook["id"])
    assert_once_each_in_order(receiver.received, expected, repeats_allowed=1)


def serve(database_url: str, port: int) -> list[object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCO_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        DATABASE_URL=database_url,
        COCO_PORT=str(port),
        COCO_WORKERS="1",
        COCO_MIGRATE_ON_START="0",
        COCO_LOG_LEVEL="warning",
        COCO_WEBHOOK_ALLOW_PRIVATE="true",
        COCO_WEBHOOK_RETRY_SCHEDULE_S="0.1,0.1,0.1,0.1,0.1",
        COCO_WEBHOOK_LEASE_S="1",
    )
    return [[sys.executable, "-m", "api", "serve"], env, ROOT]


async def test_two_processes_deliver_each_event_once_and_one_takes_over_when_the_other_dies(
    hooks_database: str, hooks_engine: AsyncEngine
) -> None:
    ports = [free_port(), free_port()]
    with ExitStack() as stack, Receiver(lambda i, got: Answer(delay=0.01)) as receiver:
        processes = [stack.enter_context(running(*serve(hooks_database, port))) for port in ports]  # type: ignore[arg-type]
        for process, port in zip(processes, ports, strict=True):
            await asyncio.to_thread(wait_healthy, process, port)
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        async with Admin(urls[0]) as admin:
            hook = await admin.create(receiver.url)
        # Events written through either process, one at a time.
        expected = []
        async with httpx.AsyncClient(timeout=30) as client:
            for i in range(20):
                response = await client.post(
                    f"{urls[i % 2]}/team_checkins",
                    json={"actor_id": "a-2", "team_id": "t-1", "date": "2026-05-22"},
                    headers={"Prefer": "return=representation"},
                )
                assert response.status_code == 201, response.text
        got = await asyncio.to_thread(receiver.wait_for, 20)
        expected = sorted(cursors_of(got))
        owner = (await row(hooks_engine, hook["id"]))["lease_owner"]
        holder = next(i for i, p in enumerate(processes) if f":{p.pid}:" in owner)

        # The holder dies without a word (no shutdown, no lease given up) in the middle of a backlog.
        expected += await bulk(hooks_engine, 40)
        await asyncio.to_thread(receiver.wait_for, 30)
        processes[holder].kill()
        killed_at = time.monotonic()
        processes[holder].wait()
        seen = len(receiver.received)
        everything = await asyncio.to_thread(
            receiver.wait_until, lambda got: expected[-1] in cursors_of(got), "the last event"
        )
        survivor = processes[1 - holder]
        assert f":{survivor.pid}:" in (await row(hooks_engine, hook["id"]))["lease_owner"]
        if seen < len(expected):
            resumed = next(r.at for r in receiver.received[seen:])
            # The lease is 1 s: the survivor claims it within a couple of its ticks after that.
            assert resumed - killed_at < 5.0
    assert_once_each_in_order(everything, expected, repeats_allowed=1)
    assert len(receiver.received) <= len(expected) + 1
