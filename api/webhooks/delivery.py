"""Delivering coordination events to webhooks: per webhook in cursor order, one request in flight.

Every process runs a `Deliverer`. Each tick it renews the leases it holds and
claims webhooks that nobody holds (api/store/webhooks.py), and keeps one
`Worker` task per webhook it holds. So one process at a time delivers a
webhook; when it dies, its lease runs out and another claims it within a
lease's time; at a graceful shutdown it gives its leases up at once.

A worker reads the events after the webhook's cursor through the live feed
(`LiveFeed.subscribe_batches` with the webhook's filters: replayed from the
table, then live, in cursor order) and sends them one at a time. Each attempt
is logged; an acknowledged one (any 2xx) moves the cursor in the same
statement, fenced by the lease. A failed one (another status, a timeout, a
refused connection or address) is tried again after the next wait of the
retry schedule, jittered, or after the receiver's `Retry-After` when that is
longer. 410 Gone, or a schedule run out, disables the webhook and keeps its
cursor, so enabling it resumes with the event it stopped at. The state after
each attempt is saved, so whoever takes over carries on the same schedule.

At-least-once: a worker stopped between a receiver's answer and the save of
its acknowledgement sends that one event again when the webhook resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api import __version__
from api.config import Settings
from api.entities import entity
from api.live import LiveFeed, SubscriberOverflow
from api.plan import Column, Condition, Embed, ReadPlan
from api.store import Reader, WebhookAttempt, WebhookStore
from api.webhooks import payload, slack, ssrf
from api.webhooks.filters import webhook_filter
from api.webhooks.signing import signed_headers

log = logging.getLogger("coco.webhooks")

CLAIM_BATCH = 16
# Events whose references are read at once, ahead of their sending (a backlog is read in such steps).
READ_AHEAD = 64
# How much of a receiver's answer the log keeps.
EXCERPT_BYTES = 500
# A receiver's Retry-After is honoured up to this long.
MAX_RETRY_AFTER_S = 3600.0
JITTER = 0.2
PRUNE_EVERY_S = 600.0
USER_AGENT = f"coco-webhooks/{__version__}"


class _Stop(Exception):
    """The worker must end: its webhook was disabled, or its lease is someone else's."""


@dataclass(frozen=True)
class Message:
    event_id: str
    cursor: int
    body: bytes


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status: int | None
    latency_ms: float
    error: str | None = None
    retry_after: float | None = None


def retry_delay(
    schedule: Sequence[float], failed: int, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """The wait after the `failed`-th failed attempt at one event: the schedule's step, give or take
    a fifth (so that receivers back from an outage are not hit by every webhook at once), or the
    receiver's Retry-After when that is longer."""
    step = schedule[failed - 1]
    delay = step * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number of seconds, or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class Deliverer:
    """This process's share of the webhooks: leases renewed and claimed each tick, a worker per webhook held."""

    def __init__(
        self, settings: Settings, store: WebhookStore, reader: Reader, live: LiveFeed, *, owner: str | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.reader = reader
        self.live = live
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease_s = settings.webhook_lease_s
        self.tick_s = self.lease_s / 4
        self._workers: dict[str, Worker] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._renewed_at = time.monotonic()
        self._pruned_at = 0.0

    @property
    def held(self) -> list[str]:
        """The ids of the webhooks this process delivers now."""
        return [id for id, worker in self._workers.items() if not worker.task.done()]

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="coco-webhooks")

    def wake(self) -> None:
        """Look at the webhooks now (one was created or changed here), not at the next tick."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._stop_workers(list(self._workers))
        try:
            # Briefly: a database that does not answer must not hold the shutdown up.
            async with asyncio.timeout(2):
                await self.store.release(self.owner)
        except Exception as error:  # the leases run out by themselves; another process only waits longer
            log.warning("webhooks: could not give up the leases at shutdown (%s)", error)

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
                self._renewed_at = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away, say: keep ticking
                log.warning("webhooks: renewing and claiming leases failed (%s)", error)
                if time.monotonic() - self._renewed_at > self.lease_s and self._workers:
                    # Our leases may have run out and been claimed elsewhere: stop sending until renewed.
                    log.warning("webhooks: leases not renewed for %.0f s; pausing delivery", self.lease_s)
                    await self._stop_workers(list(self._workers))
            await self._prune()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()

    async def _tick(self) -> None:
        held = await self.store.renew(self.owner, self.lease_s)
        claimed = await self.store.claim(self.owner, self.lease_s, CLAIM_BATCH)
        for hook in claimed:
            log.info("webhooks: delivering webhook %s from cursor %d", hook.id, hook.cursor)
        rows = {hook.id: hook for hook in [*held, *claimed]}
        await self._stop_workers([id for id in self._workers if id not in rows])
        for hook in rows.values():
            worker = self._workers.get(hook.id)
            if worker is not None and not worker.task.done() and worker.version == hook.version:
                continue
            if worker is not None:
                await self._stop_workers([hook.id])
            self._workers[hook.id] = Worker(self, hook.id, hook.version)

    async def _stop_workers(self, ids: list[str]) -> None:
        workers = [self._workers.pop(id) for id in ids if id in self._workers]
        for worker in workers:
            worker.task.cancel()
        await asyncio.gather(*(w.task for w in workers), return_exceptions=True)

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        try:
            forgotten = await self.store.prune(self.settings.webhook_log_days)
        except Exception as error:
            log.warning("webhooks: pruning the delivery log failed (%s)", error)
            return
        if forgotten:
            log.info(
                "webhooks: forgot %d delivery attempts older than %d days", forgotten, self.settings.webhook_log_days
            )


class Worker:
    """Delivers one webhook's events in cursor order, one request at a time, for as long as its task runs."""

    def __init__(self, deliverer: Deliverer, id: str, version: int) -> None:
        self.deliverer = deliverer
        self.id = id
        self.version = version
        self.task = asyncio.create_task(self._run(), name=f"coco-webhook-{id}")

    async def _run(self) -> None:
        try:
            await self._deliver_all()
        except _Stop:
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the next tick starts the worker again, from the saved state
            log.warning("webhooks: webhook %s stopped (%s); resuming from its cursor", self.id, error)

    async def _deliver_all(self) -> None:
        d = self.deliverer
        hook = await d.store.get(self.id)
        if hook is None or not hook.enabled or hook.lease_owner != d.owner:
            return
        self.hook = hook
        # The state after the last saved attempt: failed attempts at the next event, and the wait before the next.
        self.failed = hook.attempts
        self.wait = hook.retry_in if hook.attempts else None
        cursor = hook.cursor
        where = webhook_filter(hook)
        # Imported by the first webhook a worker delivers: httpx (with the rich and click its command line
        # brings) is memory every worker would otherwise hold though most servers deliver no webhook.
        import httpx

        self.timeouts = httpx.Timeout(d.settings.webhook_timeout_s).as_dict()
        # One connection pool per webhook: it connects to one host only, checked address by checked address
        # (so a kept connection is never reused for another host's name), and its connection stays open between
        # events. httpx's transport alone, not its client: a transport follows no redirect and reads no proxy
        # from the environment (a proxy would bypass the checks), and each request costs a third less.
        async with httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
        ) as self.transport:
            while True:
                try:
                    batches = d.live.subscribe_batches(where, after=cursor)
                except RuntimeError:  # the live feed has not reached the database yet
                    await asyncio.sleep(d.tick_s)
                    continue
                try:
                    async for batch in batches:
                        for start in range(0, len(batch), READ_AHEAD):
                            for message in await self._messages(batch[start : start + READ_AHEAD]):
                                await self._deliver(message)
                                cursor = message.cursor
                except SubscriberOverflow:
                    continue  # a long wait let the feed run a queue ahead: read on from the table
                finally:
                    await batches.aclose()

    async def _messages(self, rows: Sequence[dict[str, Any]]) -> list[Message]:
        """The requests for these events, their references read together (one read per kind of event)."""
        references = await self._references(rows)
        messages = []
        for row in rows:
            event = payload.event_document(row)
            reference = references.get((event["event_type"], event["reference_id"]))
            messages.append(
                Message(event["id"], row["cursor"], payload.body(self.hook.format, event, row["cursor"], reference))
            )
        return messages

    async def _references(self, rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The check-ins and updates the events record, as stored now (with the names Slack's message
        shows), by (event type, id); a deleted one is missing."""
        wanted: dict[str, list[str]] = {}
        for row in rows:
            wanted.setdefault(row["event_type"], []).append(row["reference_id"])
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for entity_name, ids in wanted.items():
            unique = list(dict.fromkeys(ids))
            # A plan's statement is kept per shape, and a list's length is part of its shape: padded to a
            # power of two, the reads of any batch size share a handful of statements.
            padded = unique + [unique[-1]] * (_power_of_two(len(unique)) - len(unique))
            embeds: tuple[Embed, ...] = ()
            if self.hook.format == "slack":
                embeds = tuple(
                    Embed(key, relation, ReadPlan(_target(entity_name, relation), columns=(Column(field, field),)))
                    for key, (relation, field) in slack.NAMES[entity_name].items()
                )
            plan = ReadPlan(entity_name, where=Condition("id", "in", padded), embeds=embeds)
            for document in json.loads(await self.deliverer.reader.json_array(plan)):
                found[entity_name, document["id"]] = document
        return found

    async def _deliver(self, message: Message) -> None:
        """Send until acknowledged; raises _Stop when the webhook is disabled or the lease is lost."""
        d = self.deliverer
        schedule = d.settings.webhook_retry_schedule_s
        while True:
            if self.wait:
                await asyncio.sleep(self.wait)
            self.wait = None
            attempt = self.failed + 1
            outcome = await self._attempt(message)
            if outcome.delivered:
                record = self._record(message, attempt, outcome, None)
                if not await d.store.record(self.id, d.owner, record, attempts=0):
                    raise _Stop("the lease is lost")
                self.failed = 0
                return
            disable = None
            if outcome.status == 410:
                disable = "the receiver answered 410 Gone"
            elif attempt > len(schedule):
                disable = f"gave up after {attempt} failed attempts at event cursor {message.cursor}: {outcome.error}"
            delay = None if disable else retry_delay(schedule, attempt, outcome.retry_after)
            record = self._record(message, attempt, outcome, delay)
            if not await d.store.record(self.id, d.owner, record, attempts=attempt, disable=disable):
                raise _Stop("the lease is lost")
            if disable:
                log.warning("webhooks: webhook %s disabled: %s", self.id, disable)
                raise _Stop(disable)
            self.failed, self.wait = attempt, delay

    @staticmethod
    def _record(message: Message, attempt: int, outcome: Outcome, retry_in: float | None) -> WebhookAttempt:
        return WebhookAttempt(
            event_id=message.event_id,
            event_cursor=message.cursor,
            attempt=attempt,
            delivered=outcome.delivered,
            status=outcome.status,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            retry_in=retry_in,
        )

    async def _attempt(self, message: Message) -> Outcome:
        import httpx  # imported by _deliver_all already

        settings = self.deliverer.settings
        started = time.perf_counter()

        def failed(error: str, status: int | None = None, retry_after: float | None = None) -> Outcome:
            return Outcome(False, status, (time.perf_counter() - started) * 1000, error[:EXCERPT_BYTES], retry_after)

        try:
            target = await ssrf.target(self.hook.url, allow_private=settings.webhook_allow_private)
        except ssrf.Refused as refused:
            return failed(f"refused: {refused}")
        headers = {
            "host": target.host_header,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signed_headers(self.hook.secret, message.event_id, message.body),
        }
        try:
            request = httpx.Request(
                "POST",
                target.url,
                content=message.body,
                headers=headers,
                extensions={"timeout": self.timeouts, **target.extensions},
            )
            async with asyncio.timeout(settings.webhook_timeout_s):
                response = await self.transport.handle_async_request(request)
                excerpt = bytearray()
                try:
                    async for chunk in response.aiter_raw():
                        excerpt += chunk
                        if len(excerpt) >= EXCERPT_BYTES:
                            break
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return failed(f"timed out after {settings.webhook_timeout_s:g} s")
        except httpx.ConnectError as error:
            return failed(f"could not connect: {error or type(error).__name__}")
        except (httpx.HTTPError, OSError) as error:
            return failed(f"{type(error).__name__}: {error}")
        latency = (time.perf_counter() - started) * 1000
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code, latency)
        text = bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", "replace")
        location = response.headers.get("location")
        status = f"HTTP {response.status_code}" + (f" (redirect to {location}, not followed)" if location else "")
        return failed(
            f"{status}: {text}" if text else status,
            response.status_code,
            parse_retry_after(response.headers.get("retry-after")),
        )


def _power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()


def _target(entity_name: str, relation: str) -> str:
    found = entity(entity_name).relation(relation)
    assert found is not None
    return found.target
