"""Writing what the feed hands to idle consumers from one task, not one task per consumer.

Waking a thousand consumers' tasks to write one event each costs more than the writing itself. So the
feed's sink only queues an item (`push`), and one task (a round) writes the queued items in turn. ASGI
servers write at once unless a client is not reading; only then does a send wait. The round checks, on
the loop's next turn after it starts (`_check`), whether it is still writing: if so, one of its sends is
waiting, and a new round takes the rest of the queue while the old one finishes that one item alone. A
round may also wait on something that is not a client (a read shared by every consumer): `holds` says
so, and such a round keeps the queue.

SSE streams (`api.sse.stream.Writer`) and GraphQL subscriptions over graphql-transport-ws
(`api.graphql.fanout.FrameWriter`) both write this way."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class Rounds(Generic[Item]):
    def __init__(self) -> None:
        self.queue: deque[Item] = deque()
        # The round taking from the queue (None: nothing to write, or the last round waits on a client).
        self.round: asyncio.Task[None] | None = None
        # Rounds left with one send waiting on its client, held until they finish (the loop holds weak references).
        self.waiting: set[asyncio.Task[None]] = set()

    def push(self, item: Item) -> None:
        self.queue.append(item)
        if self.round is None:
            self.round = asyncio.get_running_loop().create_task(self._write())

    async def write(self, item: Item, round_: asyncio.Task[None]) -> None:
        """Write one item from `round_`; whatever fails is the consumer's end, so nothing may be raised."""
        raise NotImplementedError

    def holds(self, round_: asyncio.Task[None]) -> bool:
        """Whether `round_` waits on something other than a client (and keeps the queue meanwhile)."""
        return False

    def check_soon(self, round_: asyncio.Task[None]) -> None:
        """Look again on the loop's next turn whether `round_` waits on a client (after a wait of its own)."""
        asyncio.get_running_loop().call_soon(self._check, round_)

    def hand_on(self, round_: asyncio.Task[None]) -> None:
        """`round_` keeps only the send it waits on; a new round takes the rest of the queue."""
        self.waiting.add(round_)
        round_.add_done_callback(self.waiting.discard)
        self.round = asyncio.get_running_loop().create_task(self._write()) if self.queue else None

    async def _write(self) -> None:
        me = asyncio.current_task()
        assert me is not None  # a coroutine of a task (see `push`)
        self.check_soon(me)
        queue = self.queue
        while queue and self.round is me:
            await self.write(queue.popleft(), me)
        if self.round is me:
            self.round = None

    def _check(self, round_: asyncio.Task[None]) -> None:
        if self.round is round_ and not self.holds(round_):  # one of its sends waits for a client not reading
            self.hand_on(round_)


class Handed:
    """A consumer whose items a `Rounds` may hold (`busy`): what its own task writes waits for them."""

    __slots__ = ("_idle", "busy")

    def __init__(self) -> None:
        # Items handed to the writer and not written yet.
        self.busy = False
        self._idle: asyncio.Future[None] | None = None

    async def until_written(self) -> None:
        """Once the writer holds nothing of this consumer."""
        while self.busy:
            self._idle = asyncio.get_running_loop().create_future()
            try:
                await self._idle
            finally:
                self._idle = None

    def written(self) -> None:
        """The writer is done with this consumer's items (written, failed or dropped)."""
        self.busy = False
        idle = self._idle
        if idle is not None and not idle.done():
            idle.set_result(None)
