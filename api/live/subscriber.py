"""One subscriber's bounded queue, filled by the feed and drained by the subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class SubscriberOverflow(Exception):
    """The subscriber fell more than its queue behind the feed and was dropped.

    Nothing after `last_cursor` was delivered; subscribe again with
    `after=last_cursor` to carry on without a gap."""

    def __init__(self, last_cursor: int, queue_size: int) -> None:
        super().__init__(
            f"subscriber fell more than {queue_size} events behind and was closed; resume with after={last_cursor}"
        )
        self.last_cursor = last_cursor


@dataclass(frozen=True)
class Gap:
    """Events in (after, upto] that the subscriber must read from the table itself:
    its replay, or a batch the feed read before it knew this subscriber's filter."""

    after: int
    upto: int


# Events in cursor order, shared by every subscriber the feed offered them to: never modified.
Batch = Sequence[dict[str, Any]]
Item = Batch | Gap
# Hands a batch straight to the consumer (say, writes it to a socket) without waking its task;
# False when it cannot right now, and the batch is queued as usual.
Sink = Callable[[Batch], bool]
# Tells a consumer without a task waiting on the queue (see `Subscriber.wake`) that something is queued or it ended.
Wake = Callable[[], None]


class Subscriber:
    """Written to only by the feed, synchronously, so it never waits for the reader.

    The queue holds batches (one per read of the feed) and gaps; its bound counts
    events (a gap counts as one), so batching changes when a subscriber wakes,
    never when it overflows.

    Its consumer either waits on the queue (`next_items`, a task per subscriber) or has no
    task waiting (`wake` given: an event stream among thousands): then every batch that finds
    the queue empty is offered to the sink, and `wake` is called where a waiting task would be
    woken, for the consumer to `take` what was queued."""

    __slots__ = (
        "_items",
        "_queued",
        "_waiter",
        "closed",
        "covered",
        "delivered",
        "error",
        "handed",
        "key",
        "overflowed",
        "queue_size",
        "sink",
        "wake",
    )

    def __init__(
        self,
        key: str | None,
        queue_size: int,
        covered: int,
        *,
        delivered: int = 0,
        sink: Sink | None = None,
        wake: Wake | None = None,
    ) -> None:
        # Which match column of the feed's read says whether an event is for us (None: every event).
        self.key = key
        self.queue_size = queue_size
        # Every event up to this cursor is in the queue or was before (or is not for us).
        self.covered = covered
        # Every event for us up to this cursor has been handed to the consumer.
        self.delivered = delivered
        self.sink = sink
        self.wake = wake
        self.overflowed = False
        self.closed = False
        self.error: Exception | None = None
        # A list, not a deque: only appended to and taken whole, and an empty deque is ten times its size.
        self._items: list[Item] = []
        # Events the sink took and the delivered counter has not counted yet (see `offer`).
        self.handed = 0
        self._queued = 0  # events in the queue
        # The reader's wake-up while it waits (a bare future: one per wait, nothing else).
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, item: Item, covered: int) -> bool:
        """Queue a batch or a gap; False (and the subscriber is dropped) when it does not fit."""
        if self.overflowed or self.closed:
            return False
        if (
            self.sink is not None
            and (self.wake is not None or (self._waiter is not None and not self._waiter.done()))
            and not self._items
            and not isinstance(item, Gap)
            and item[0]["cursor"] > self.delivered
            and self.sink(item)
        ):
            # The consumer was idle with nothing queued, and took the batch at once:
            # the same order and the same bound, one task wake-up fewer. The feed counts these
            # once per batch (`handed`): a multiprocess counter's increment per subscriber costs
            # as much as the subscriber's write at thousands of streams.
            self.handed += len(item)
            self.delivered = item[-1]["cursor"]
            self.covered = max(self.covered, covered)
            return True
        size = 1 if isinstance(item, Gap) else len(item)
        if self._queued + size > self.queue_size:
            self.overflowed = True
            self._clear()  # the subscriber resumes from the table; free the memory now
            self._wake()
            return False
        self._items.append(item)
        self._queued += size
        self.covered = max(self.covered, covered)
        self._wake()
        return True

    def advance(self, covered: int) -> None:
        """Events up to `covered` were seen and none was for this subscriber."""
        self.covered = max(self.covered, covered)

    def fail(self, error: Exception) -> None:
        """End the subscription with `error` (raised to the subscriber once it gets here)."""
        self.error = error
        self._clear()
        self.close()

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def next_items(self) -> list[Item] | None:
        """Everything queued, oldest first, once there is something; None once closed and
        drained. Raises nothing itself: the caller checks `overflowed` and reports
        `delivered`."""
        while not self._items:
            if self.overflowed or self.closed:
                return None
            # Made before waiting and resolved by every offer, so no wake-up is lost.
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.overflowed:
            return None
        items, self._items = self._items, []
        self._queued = 0
        return items

    def take(self) -> list[Item]:
        """Everything queued, oldest first, without waiting ([] when nothing is, or once overflowed)."""
        if self.overflowed or not self._items:
            return []
        items, self._items = self._items, []
        self._queued = 0
        return items

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif self.wake is not None:
            self.wake()

    def _clear(self) -> None:
        self._items = []
        self._queued = 0
