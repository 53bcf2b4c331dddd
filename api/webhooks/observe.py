"""Per-webhook figures for /metrics, read from the database when Prometheus scrapes.

Counts and state live in each webhook's row (whichever process delivered), so
every process, and every replica, reports the same figures for a webhook: take
`max` across instances rather than `sum`. The lag is what the webhook has yet to
send: the events after its cursor that match its filters, and the age of the
oldest of them (by its occurred_at; 0 when none waits).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from api.live.feed import BY_CURSOR, EVENT
from api.live.filters import after_cursor
from api.plan import Column, ReadPlan, all_of
from api.store import Reader, Webhook, WebhookStore
from api.webhooks.filters import webhook_filter


class _Figures:
    """A collector of figures read beforehand (collectors are synchronous; the reads are not)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


async def lag(reader: Reader, hook: Webhook) -> tuple[int, float]:
    """Events waiting for the webhook, and how old the oldest of them is in seconds."""
    where = all_of(after_cursor(hook.cursor), webhook_filter(hook))
    waiting = await reader.count(ReadPlan(EVENT, where=where))
    if not waiting:
        return 0, 0.0
    oldest = ReadPlan(EVENT, where=where, order=BY_CURSOR, limit=1, columns=(Column("occurred_at", "occurred_at"),))
    rows = json.loads(await reader.json_array(oldest))
    if not rows:
        return waiting, 0.0
    occurred = dt.datetime.fromisoformat(rows[0]["occurred_at"])
    return waiting, max(0.0, (dt.datetime.now(dt.UTC) - occurred).total_seconds())


async def exposition(store: WebhookStore, reader: Reader) -> bytes:
    """The webhook metrics in Prometheus's text format."""
    delivered = CounterMetricFamily(
        "coco_webhook_delivered", "Events acknowledged by the webhook's receiver", labels=["webhook"]
    )
    failed = CounterMetricFamily(
        "coco_webhook_failed", "Failed delivery attempts (each retry counts)", labels=["webhook"]
    )
    disabled = GaugeMetricFamily("coco_webhook_disabled", "1 while the webhook is disabled", labels=["webhook"])
    lag_events = GaugeMetricFamily("coco_webhook_lag_events", "Events waiting to be delivered", labels=["webhook"])
    lag_seconds = GaugeMetricFamily(
        "coco_webhook_lag_seconds", "Age of the oldest event waiting to be delivered", labels=["webhook"]
    )
    for hook in await store.all():
        waiting, age = await lag(reader, hook)
        delivered.add_metric([hook.id], hook.delivered_count)
        failed.add_metric([hook.id], hook.failed_count)
        disabled.add_metric([hook.id], 0 if hook.enabled else 1)
        lag_events.add_metric([hook.id], waiting)
        lag_seconds.add_metric([hook.id], age)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures([delivered, failed, disabled, lag_events, lag_seconds]))
    return generate_latest(registry)
