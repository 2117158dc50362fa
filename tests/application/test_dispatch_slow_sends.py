"""A slow send holds its own slot only: the other answers of its batch are recorded while it
waits, and the next batch starts while a send slot is free."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from tests.application.conftest import World
from vanta.application.ports.delivery import SendResult

SLOW = "https://hooks.example/0"


class HeldSender:
    """The world's scripted sender, except that sends to ``SLOW`` wait for ``release``."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.held = 0

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        if url == SLOW:
            self.held += 1
            await self.release.wait()
        return await self.inner.send(url, headers, body)  # type: ignore[attr-defined,no-any-return]


async def _states(w: World, fos: Iterable[str]) -> dict[str, str]:
    return {fo: (await w.child(fo)).state for fo in fos}


async def _until(cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():  # type: ignore[misc]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_answers_are_recorded_while_a_slow_send_still_waits(world: World) -> None:
    slow_fid = await world.follower()  # hooks.example/0
    for _ in range(2):
        await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    (slow_fo,) = [c.fo_id for c in sub.expansion.children if c.follower_id == slow_fid]
    fast = [c.fo_id for c in sub.expansion.children if c.follower_id != slow_fid]
    sender = HeldSender(world.sender)
    world.dispatcher.sender = sender
    world.dispatcher.config.record_every_s = 0.01
    batch = asyncio.create_task(world.dispatcher.run_once())

    async def fast_acked() -> bool:
        return set((await _states(world, fast)).values()) == {"ack"}
    await _until(fast_acked)
    assert (await world.child(slow_fo)).state == "sent" and not batch.done()
    sender.release.set()
    assert await batch == 3
    assert (await world.child(slow_fo)).state == "ack"


async def test_the_next_batch_starts_while_a_slow_send_holds_one_slot(world: World) -> None:
    slow_fid = await world.follower()  # hooks.example/0
    for _ in range(2):
        await world.follower()
    first = await world.submit(id="M-1")
    sender = HeldSender(world.sender)
    world.dispatcher.sender = sender
    world.dispatcher.config.record_every_s = 0.01
    world.dispatcher.config.max_batches = 8  # VANTA_DISPATCHER_MAX_BATCHES
    stop = asyncio.Event()
    loop = asyncio.create_task(world.dispatcher.run_forever(0.01, stop))
    try:
        async def first_held() -> bool:
            return sender.held == 1
        await _until(first_held)
        second = await world.submit(id="M-2")
        assert first.expansion is not None and second.expansion is not None
        later = [c.fo_id for c in second.expansion.children if c.follower_id != slow_fid]

        async def second_acked() -> bool:
            return set((await _states(world, later)).values()) == {"ack"}
        await _until(second_acked)  # while the first order's slow send still waits
        assert sender.held == 2 and not sender.release.is_set()
        sender.release.set()

        async def all_acked() -> bool:
            fos = [c.fo_id for e in (first, second)
                   for c in e.expansion.children]  # type: ignore[union-attr]
            return set((await _states(world, fos)).values()) == {"ack"}
        await _until(all_acked)
    finally:
        sender.release.set()
        stop.set()
        await asyncio.wait_for(loop, 5)
