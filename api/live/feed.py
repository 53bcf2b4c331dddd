"""The live feed: new coordination events read once per wake-up, fanned out to subscribers.

Cursors are handed out in commit order (see api/store/events.py): once the feed has
read cursor N, every event below N is either read or never will be. So the
feed keeps one number, the last cursor it fanned out, and after any wake-up
(a notification, a reconnect) reads what lies beyond it: nothing is read
twice, nothing is skipped, however notifications were coalesced or lost.

One read serves every subscriber: it carries one boolean per distinct
subscriber filter (`Match`), so a thousand subscribers cost one statement.
A subscriber whose filter the read did not know yet (it subscribed while the
read was running) gets a `Gap` instead, and reads that range itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from api import metrics
from api.entities import entity
from api.errors import InvalidInput, Unavailable
from api.live.filters import after_cursor, teams_filter, up_to_cursor
from api.live.subscriber import Gap, Item, Sink, Subscriber, SubscriberOverflow, Wake
from api.plan import Column, Filter, Match, OrderTerm, ReadPlan, Visible, all_of
from api.store import NOTIFY_CHANNEL, Listener, Reader, current_scope

log = logging.getLogger("coco.live")

EVENT = "coordination_event"
# The CoCo document plus the cursor.
DOCUMENT = tuple(Column(f.name, f.name) for f in entity(EVENT).fields)
DOCUMENT_KEYS = tuple(c.key for c in DOCUMENT)
BY_CURSOR = (OrderTerm("cursor"),)
REPLAY_PAGE = 500
MAX_BACKOFF_S = 2.0
CONNECT_ERRORS = (OSError, TimeoutError, Unavailable)


class LiveFeed:
    def __init__(self, database_url: str, reader: Reader, *, queue_size: int = 1000) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.reader = reader
        self.queue_size = queue_size
        # A read fans out at most half a queue at once, so that one large write
        # does not overflow a subscriber that keeps up.
        self.batch_size = max(1, min(REPLAY_PAGE, queue_size // 2))
        self._listener = Listener(database_url, NOTIFY_CHANNEL, self._wake_up, announce=self._announced)
        # The highest cursor a notification announced (writers notify the last cursor they
        # committed), and whether something may have committed unannounced (before the
        # LISTEN, or while its connection was down): then only the table knows where it ends.
        self._announced_cursor: int | None = None
        self._unannounced = True
        self._wake = asyncio.Event()
        self._position: int | None = None
        self._subscribers: set[Subscriber] = set()
        self._filters: dict[str, Filter] = {}
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        # Reads that fanned events out: one per wake-up whatever the number of subscribers.
        self.reads = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def position(self) -> int | None:
        """The last cursor fanned out (None before `start`)."""
        return self._position

    async def start(self) -> None:
        """Listen and find where the table ends; if the database cannot be reached yet,
        keep trying in the background (subscribing is refused until then)."""
        try:
            await self._begin()
        except CONNECT_ERRORS as error:
            log.warning("live events: database unreachable at start (%s); retrying in the background", error)
            self._starting = asyncio.create_task(self._begin_eventually(), name="coco-live-start")

    async def _begin(self) -> None:
        # LISTEN first, then read where the table ends: whatever commits after
        # that read is notified, whatever committed before it is at or below it.
        await self._listener.start()
        try:
            self._position = await self._latest_cursor()
        except BaseException:
            await self._listener.stop()
            raise
        self._task = asyncio.create_task(self._pump(), name="coco-live-feed")

    async def _begin_eventually(self) -> None:
        backoff = 0.05
        while True:
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            try:
                await self._begin()
            except CONNECT_ERRORS:
                continue
            log.warning("live events: started")
            return

    async def stop(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
            self._starting = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._listener.stop()
        for sub in self._subscribers:
            sub.close()
        self._subscribers.clear()
        self._position = None

    def subscribe(
        self, where: Filter | None = None, after: int | None = None, team_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every event matching `where` (and the team) with cursor > `after`, once each, in
        cursor order: first replayed from the table, then live. Without `after`, from where
        the feed is: every event committed after this call returns, and those committed just
        before it that the feed had not fanned out yet. A caller limited to teams gets only the
        events it may read (`api.plan.Scope`), live and replayed. Raises `SubscriberOverflow` when the
        subscriber falls a queue behind. The documents are shared between subscribers: do
        not modify them."""
        return _one_by_one(self.subscribe_batches(where, after, team_id))

    def subscribe_batches(
        self,
        where: Filter | None = None,
        after: int | None = None,
        team_id: str | None = None,
        sink: Sink | None = None,
    ) -> AsyncGenerator[Sequence[dict[str, Any]], None]:
        """`subscribe`, in batches: each time the subscriber wakes, every event it has
        waiting (at least one), so that a consumer that can write many at once (an event
        stream) takes one turn per batch rather than one per event. With `sink`, a live
        batch that finds the consumer idle is handed to `sink` by the feed itself (see
        `Subscriber.offer`); whatever it does not take comes through the iterator."""
        sub, chosen = self._register(where, after, team_id, sink, None)
        return self._deliver(sub, chosen)

    def attach(
        self,
        where: Filter | None = None,
        after: int | None = None,
        team_id: str | None = None,
        *,
        sink: Sink,
        wake: Wake,
    ) -> Attachment:
        """`subscribe_batches` for a consumer with no task waiting on it (an event stream: one task
        per connection, waiting for the client to leave). Every live batch that finds the queue
        empty is offered to `sink`; whenever something is queued instead (the replay, a batch the
        sink refused) or the subscription ends, `wake` is called, and the consumer iterates
        `Attachment.pending` until the queue is empty again."""
        sub, chosen = self._register(where, after, team_id, sink, wake)
        return Attachment(self, sub, chosen)

    def _register(
        self, where: Filter | None, after: int | None, team_id: str | None, sink: Sink | None, wake: Wake | None
    ) -> tuple[Subscriber, Filter | None]:
        if self._position is None:
            raise RuntimeError("the live feed is not running (not started, or the database is not reachable yet)")
        # The caller's scope is part of the subscriber's filter: the feed reads for every subscriber at
        # once, outside any request, so the caller's scope cannot be added there.
        scope = current_scope()
        chosen = all_of(
            where,
            teams_filter([team_id]) if team_id is not None else None,
            Visible(scope) if scope is not None else None,
        )
        key = None
        if chosen is not None:
            key = repr(chosen)
            self._filters.setdefault(key, chosen)
        now = self._position
        start = now if after is None else after
        # Registered right away (not at the first iteration), so nothing committed
        # after subscribe() returns can be missed.
        sub = Subscriber(key, self.queue_size, covered=max(start, now), delivered=start, sink=sink, wake=wake)
        if start < now:
            sub.offer(Gap(start, now), now)
        self._subscribers.add(sub)
        return sub, chosen

    # ------------------------------------------------------------ subscriber side

    async def _deliver(self, sub: Subscriber, where: Filter | None) -> AsyncGenerator[Sequence[dict[str, Any]], None]:
        try:
            while True:
                items = await sub.next_items()
                if items is None:
                    if sub.error is not None:
                        raise sub.error
                    if sub.overflowed:
                        raise SubscriberOverflow(sub.delivered, self.queue_size)
                    return
                # Closed here, not left to the loop's finalizer, should this generator be closed mid-batch.
                async with contextlib.aclosing(self._batches(sub, items, where)) as batches:
                    async for batch in batches:
                        yield batch
        finally:
            self._drop(sub)

    async def _batches(
        self, sub: Subscriber, items: list[Item], where: Filter | None
    ) -> AsyncGenerator[Sequence[dict[str, Any]], None]:
        """What `items` (taken from `sub`'s queue) hold for the consumer, gaps read from the table."""
        # sub.delivered: every matching event up to there was yielded (or taken by the sink).
        pending: Sequence[dict[str, Any]] = ()
        for item in items:
            if isinstance(item, Gap):
                if pending:
                    metrics.LIVE_EVENTS_DELIVERED.inc(len(pending))
                    yield pending
                    sub.delivered, pending = pending[-1]["cursor"], ()
                async for page in self._replay(where, max(item.after, sub.delivered), item.upto):
                    metrics.LIVE_EVENTS_DELIVERED.inc(len(page))
                    yield page
                    sub.delivered = page[-1]["cursor"]
                    if sub.overflowed:
                        raise SubscriberOverflow(sub.delivered, self.queue_size)
                sub.delivered = max(sub.delivered, item.upto)
            else:
                top = pending[-1]["cursor"] if pending else sub.delivered
                if item[0]["cursor"] <= top:  # replayed already
                    item = [doc for doc in item if doc["cursor"] > top]
                if item:
                    # The feed's batch itself when it comes alone (the common case): no copy.
                    pending = item if not pending else [*pending, *item]
        if pending:
            metrics.LIVE_EVENTS_DELIVERED.inc(len(pending))
            yield pending
            sub.delivered = pending[-1]["cursor"]

    async def _replay(self, where: Filter | None, after: int, upto: int) -> AsyncIterator[list[dict[str, Any]]]:
        """The events in (after, upto] from the table, a page at a time (no empty page)."""
        while after < upto:
            plan = ReadPlan(
                EVENT,
                where=all_of(after_cursor(after), up_to_cursor(upto), where),
                order=BY_CURSOR,
                limit=REPLAY_PAGE,
                columns=DOCUMENT,
            )
            rows = await self._read(plan, retry=True)
            if rows:
                yield rows
            if len(rows) < REPLAY_PAGE:
                return
            after = rows[-1]["cursor"]

    def _drop(self, sub: Subscriber) -> None:
        sub.close()
        self._subscribers.discard(sub)
        if sub.key is not None and not any(s.key == sub.key for s in self._subscribers):
            self._filters.pop(sub.key, None)

    # ------------------------------------------------------------ feed side

    def _wake_up(self) -> None:
        # A wake-up without a cursor: the LISTEN connection is new.
        self._unannounced = True
        self._wake.set()

    def _announced(self, payload: str) -> None:
        try:
            cursor = int(payload)
        except ValueError:
            self._wake_up()
            return
        if self._announced_cursor is None or cursor > self._announced_cursor:
            self._announced_cursor = cursor
        self._wake.set()

    async def _pump(self) -> None:
        backoff = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while await self._read_new():
                    pass
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep the feed alive; the next try starts from the same cursor
                log.warning("live events: reading new events failed (%s); retrying", error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self._wake.set()

    async def _read_new(self) -> bool:
        """Read and fan out the next batch; True when there may be more."""
        assert self._position is not None
        if not self._subscribers:
            # Nobody to fan out to: move to where the table ends rather than read every new
            # event (a bulk write's thousand, in every worker). Cursors are in commit order and
            # notifications arrive in commit order, so the last cursor announced, or else the
            # last one visible (one index probe), is a point up to which all is committed.
            if not self._unannounced and self._announced_cursor is not None:
                self._position = max(self._position, self._announced_cursor)
                return False
            self._unannounced = False  # a reconnect during the probe sets it again
            try:
                latest = await self._latest_cursor()
            except BaseException:
                self._unannounced = True
                raise
            # Whoever subscribed during the probe is served by the read below, from the old position.
            if not self._subscribers:
                self._position = max(self._position, latest)
                return False
        filters = dict(self._filters)
        plan = self._batch_plan(filters)
        limit = plan.limit
        try:
            rows = await self._read(plan)
        except InvalidInput:
            # One subscriber's filter cannot be evaluated (say, a bad regular expression):
            # close that subscriber with the error, and keep serving the others.
            if await self._fail_bad_filters(filters):
                return True
            raise
        if not rows:
            return False
        last = rows[-1]["cursor"]
        # Each filter's events are picked once, and the one tuple is offered to all its subscribers.
        documents = tuple({k: row[k] for k in DOCUMENT_KEYS} for row in rows) if filters else tuple(rows)
        matching: dict[str | None, tuple[dict[str, Any], ...]] = {None: documents}
        for i, key in enumerate(filters):
            column = f"m{i}"
            matching[key] = tuple(doc for row, doc in zip(rows, documents, strict=True) if row[column])
        handed = 0
        for sub in list(self._subscribers):
            docs = matching.get(sub.key)
            if docs is None:
                delivered = sub.offer(Gap(sub.covered, last), last) if last > sub.covered else True
            else:
                if docs and docs[0]["cursor"] <= sub.covered:
                    docs = tuple(doc for doc in docs if doc["cursor"] > sub.covered)
                delivered = sub.offer(docs, last) if docs else True
                sub.advance(last)
                handed += sub.handed
                sub.handed = 0
            if not delivered:
                if sub.overflowed:
                    metrics.LIVE_OVERFLOWS.inc()
                self._drop(sub)
        if handed:
            metrics.LIVE_EVENTS_DELIVERED.inc(handed)
        self._position = last
        self.reads += 1
        return len(rows) == limit

    def _batch_plan(self, filters: dict[str, Filter]) -> ReadPlan:
        assert self._position is not None
        matches = tuple(Match(f"m{i}", where) for i, where in enumerate(filters.values()))
        return ReadPlan(
            EVENT,
            where=after_cursor(self._position),
            order=BY_CURSOR,
            limit=self._limit(),
            columns=DOCUMENT,
            matches=matches,
        )

    def _limit(self) -> int:
        # With nobody to overflow, catch up in big steps.
        return self.batch_size if self._subscribers else REPLAY_PAGE

    async def _fail_bad_filters(self, filters: dict[str, Filter]) -> int:
        assert self._position is not None
        failed = 0
        for key, where in filters.items():
            probe = ReadPlan(
                EVENT,
                where=after_cursor(self._position),
                order=BY_CURSOR,
                limit=self.batch_size,
                columns=DOCUMENT[:1],
                matches=(Match("m", where),),
            )
            try:
                await self._read(probe)
            except InvalidInput as error:
                for sub in [s for s in self._subscribers if s.key == key]:
                    sub.fail(error)
                    self._drop(sub)
                    failed += 1
        return failed

    async def _latest_cursor(self) -> int:
        plan = ReadPlan(
            EVENT, order=(OrderTerm("cursor", descending=True),), limit=1, columns=(Column("cursor", "cursor"),)
        )
        rows = await self._read(plan)
        return rows[0]["cursor"] if rows else 0

    async def _read(self, plan: ReadPlan, *, retry: bool = False) -> list[dict[str, Any]]:
        backoff = 0.05
        while True:
            try:
                rows: list[dict[str, Any]] = json.loads(await self.reader.json_array(plan))
                return rows
            except Unavailable:
                if not retry or self._task is None:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


class Attachment:
    """A subscription whose consumer has no task waiting on it (`LiveFeed.attach`)."""

    __slots__ = ("feed", "sub", "where")

    def __init__(self, feed: LiveFeed, sub: Subscriber, where: Filter | None) -> None:
        self.feed = feed
        self.sub = sub
        self.where = where

    async def pending(self) -> AsyncGenerator[Sequence[dict[str, Any]], None]:
        """Whatever is queued, in batches (the replay read from the table), until the queue is
        empty; raises as `subscribe_batches` does (overflow, a filter's error)."""
        sub = self.sub
        while items := sub.take():
            async with contextlib.aclosing(self.feed._batches(sub, items, self.where)) as batches:
                async for batch in batches:
                    yield batch
        if sub.error is not None:
            raise sub.error
        if sub.overflowed:
            raise SubscriberOverflow(sub.delivered, self.feed.queue_size)

    @property
    def ended(self) -> bool:
        """The feed closed the subscription (it stopped) and nothing is left to take."""
        return self.sub.closed

    def close(self) -> None:
        self.feed._drop(self.sub)


async def _one_by_one(batches: AsyncIterator[Sequence[dict[str, Any]]]) -> AsyncIterator[dict[str, Any]]:
    try:
        async for batch in batches:
            for document in batch:
                yield document
    finally:
        await batches.aclose()  # type: ignore[attr-defined]
