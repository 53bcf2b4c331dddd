"""The connections-held harness (`make bench-held`) works at a tiny size: both populations
held by client processes against a real server, every event counted per transport, the
workers' memory sampled. No load and no timing verdict here; that is the benchmark."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.writes import WriteService
from bench import held, subscriptions


async def test_both_populations_held_at_once_and_every_event_counted(
    server_url: str, database_url: str, clean: AsyncEngine
) -> None:
    writer = WriteService(clean)
    await writer.create("actor", [{"id": "p-1", "actor_type": "person", "name": "One"}])
    await writer.create("team", [{"id": "t-1", "name": "One", "member_ids": ["p-1"]}])
    held_moments = []

    report = await held.hold(
        server_url,
        database_url,
        sse=20,
        ws=5,
        events=3,
        pace_s=0.01,
        actor_id="p-1",
        team_id="t-1",
        # The test's server runs in this process: it is the one worker.
        worker_pids=lambda: [os.getpid()],
        per_process=8,
        on_held=lambda: held_moments.append(True),
    )

    assert held_moments == [True]
    assert (report.sse.connections, report.sse.client_processes, report.sse.receipts, report.sse.expected) == (
        20,
        3,
        60,
        60,
    )
    assert (report.ws.connections, report.ws.client_processes, report.ws.receipts, report.ws.expected) == (5, 1, 15, 15)
    assert report.sse.errors == [] and report.ws.errors == []
    assert set(report.sse.latency_ms) == set(report.ws.latency_ms) == {"p50", "p95", "p99", "max"}
    [worker] = report.workers
    assert worker.pid == os.getpid() and worker.peak_rss_mb >= (worker.held_rss_mb or 0) > 0
    # The 25 connections were accepted by this process between the two snapshots.
    assert worker.connections is not None and worker.connections >= 25
    assert report.verdicts["every_event_delivered"] is True
    assert report.limits["nofile"] >= 25
    text = "\n".join(held.table(report))
    assert "60/60" in text and "15/15" in text and "every event delivered: met" in text
    json.dumps(report.as_dict())  # what --json writes


def test_client_processes_take_at_most_their_share() -> None:
    clients = subscriptions.Clients("http://127.0.0.1:1", 20, 1, 1.0, per_process=7)
    assert clients.shares == [7, 7, 6]
    assert subscriptions.Clients("http://127.0.0.1:1", 1000, 1, 1.0).shares == [500, 500]


def test_limits_below_the_run_stop_it_with_what_to_raise() -> None:
    with pytest.raises(SystemExit, match="file descriptors"):
        held.raise_fd_limit(10**12)
    if held.PORT_RANGE.exists():
        with pytest.raises(SystemExit, match="ephemeral ports"):
            held.check_ports(10**6)


def test_a_lost_receipt_or_a_heavy_worker_misses_its_target() -> None:
    def delivery(transport: str, receipts: int) -> held.Delivery:
        return held.Delivery(transport, 10, 1, receipts, 10, {"p50": 1, "p95": 2, "p99": 3, "max": 4})

    worker = held.Worker(1, 100.0, 150.0, 199.0, 10)
    ok = held.Held(delivery("sse", 10), delivery("graphql", 10), 1, 10, 1.0, [worker], 1.0, [0.0], {})
    assert ok.verdicts == {"sse_p99": True, "every_event_delivered": True, "workers_lasted": True, "memory": True}
    short = held.Held(delivery("sse", 9), delivery("graphql", 10), 1, 10, 1.0, [worker], 1.0, [0.0], {})
    assert short.verdicts["sse_p99"] is False and short.verdicts["every_event_delivered"] is False
    heavy = held.Held(
        delivery("sse", 10), delivery("graphql", 10), 1, 10, 1.0, [held.Worker(1, 100.0, 150.0, 201.0, 10)], 1.0, [], {}
    )
    assert heavy.verdicts["memory"] is False
    killed = held.Held(
        delivery("sse", 10),
        delivery("graphql", 10),
        1,
        10,
        1.0,
        [held.Worker(1, 1.0, 1.0, 1.0, 10, lasted=False)],
        1.0,
        [],
        {},
    )
    assert killed.verdicts["workers_lasted"] is False and "gone before the end" in "\n".join(held.table(killed))
    assert "MISSED" in "\n".join(held.table(heavy))
