"""The one-task writer both live transports share (`api.live.rounds`)."""

from __future__ import annotations

import asyncio

from api.live.rounds import Rounds


class Sends(Rounds[str]):
    """Writes names into `written`; a name in `stuck` waits until its gate opens, as a client not reading."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.reading: asyncio.Event | None = None
        self.holding: asyncio.Task[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def write(self, item: str, round_: asyncio.Task[None]) -> None:
        self.tasks.append(round_)
        if item == "read" and self.reading is not None:  # a wait of the round's own, not a client's
            self.holding = round_
            await self.reading.wait()
            self.holding = None
            self.check_soon(round_)
        gate = self.gates.get(item)
        if gate is not None:
            await gate.wait()
        self.written.append(item)

    def holds(self, round_: asyncio.Task[None]) -> bool:
        return self.holding is round_


async def until(condition, turns: int = 1000) -> None:
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("not reached")


async def test_items_are_written_in_order_from_one_task() -> None:
    sends = Sends()
    for name in "abc":
        sends.push(name)
    await until(lambda: sends.round is None)
    assert sends.written == ["a", "b", "c"]
    assert len(set(sends.tasks)) == 1 and not sends.waiting


async def test_a_send_waiting_on_its_client_keeps_only_itself() -> None:
    sends = Sends()
    sends.gates["stuck"] = asyncio.Event()
    for name in ("a", "stuck", "b", "c"):
        sends.push(name)
    await until(lambda: sends.written == ["a", "b", "c"])
    stuck_round = sends.tasks[1]
    assert sends.waiting == {stuck_round} and sends.round is None
    sends.push("d")  # a new round, not the one that waits
    await until(lambda: sends.written[-1] == "d")
    sends.gates["stuck"].set()
    await until(lambda: not sends.waiting)
    assert sends.written == ["a", "b", "c", "d", "stuck"]


async def test_a_round_waiting_on_its_own_read_keeps_the_queue() -> None:
    sends = Sends()
    sends.reading = asyncio.Event()
    for name in ("read", "a"):
        sends.push(name)
    for _ in range(20):
        await asyncio.sleep(0)
    assert sends.written == [] and not sends.waiting  # not handed on: "a" waits behind the read
    sends.reading.set()
    await until(lambda: sends.round is None)
    assert sends.written == ["read", "a"] and len(set(sends.tasks)) == 1
