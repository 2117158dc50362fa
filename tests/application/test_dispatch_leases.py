"""Short leases kept alive by their holder: a live dispatcher whose sends outlast the lease
many times over is never taken over (no child sent twice), and once it stops renewing (its
process died) another dispatcher takes its rows within one lease."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.application.conftest import World
from vanta.application.dispatch import DispatchConfig, Dispatcher
from vanta.application.ports.delivery import SendResult

LEASE = timedelta(seconds=8)


class HangingSender:
    """Every send waits until ``release``; counts the sends per URL."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        self.sent.append(url)
        await self.release.wait()
        return SendResult(200, 1, "", None)


async def _beats(d: Dispatcher, n: int = 3) -> None:
    """Let the holder's heartbeat run ``n`` times (it beats every few milliseconds here)."""
    start = d.keeper.renewals
    for _ in range(500):
        if d.keeper.renewals >= start + n:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the heartbeat did not run")


def _second(world: World, sender: object) -> Dispatcher:
    return Dispatcher(uow_factory=world.db.uow, sender=sender,  # type: ignore[arg-type]
                      secrets=world.secrets, clock=world.clock,
                      config=DispatchConfig(retry_schedule=(1.0, 5.0), batch=16,
                                            concurrency=4, per_endpoint=4, lease=LEASE))


async def test_a_live_holder_is_never_taken_over_and_a_dead_one_within_a_lease(
        world: World) -> None:
    for _ in range(3):
        await world.follower()
    await world.submit()
    world.dispatcher.config.lease = LEASE
    held = HangingSender()
    world.dispatcher.sender = held
    world.dispatcher.keeper.every_s = 0.01
    first = asyncio.create_task(world.dispatcher.run_once())
    try:
        for _ in range(200):
            if len(held.sent) == 3:
                break
            await asyncio.sleep(0.005)
        assert len(held.sent) == 3
        other = HangingSender()
        other.release.set()
        second = _second(world, other)
        # 40 s of the clock, five leases: the holder's heartbeat keeps every row its own
        for _ in range(8):
            world.clock.advance(5)
            await _beats(world.dispatcher)
            assert await second.run_once() == 0
        assert other.sent == [] and set(world.dispatcher.keeper.held()) != set()

        # the holder dies: its process stops, nothing it held is renewed or recorded
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await world.dispatcher.keeper.close()
        world.clock.advance(LEASE.total_seconds() - 1)
        assert await second.run_once() == 0  # still inside the last renewed lease
        world.clock.advance(1.001)
        assert await second.run_once() == 3  # one lease after the last heartbeat
        assert sorted(other.sent) == sorted(held.sent)  # each child once more, no more
        await world.drain()
        assert await second.run_once() == 0
        assert len(other.sent) == 3
    finally:
        held.release.set()
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)


async def test_a_slow_send_keeps_its_row_until_its_answer_is_recorded(world: World) -> None:
    for _ in range(2):
        await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    world.dispatcher.config.lease = LEASE
    held = HangingSender()
    world.dispatcher.sender = held
    world.dispatcher.keeper.every_s = 0.01
    first = asyncio.create_task(world.dispatcher.run_once())
    for _ in range(200):
        if len(held.sent) == 2:
            break
        await asyncio.sleep(0.005)
    world.clock.advance(30)  # far past the lease it was claimed with
    await _beats(world.dispatcher)
    held.release.set()
    assert await first == 2
    states = {(await world.child(c.fo_id)).state for c in sub.expansion.children}
    assert states == {"ack"}
    assert world.dispatcher.keeper.held() == {}  # recorded: nothing left to renew
    assert len(held.sent) == 2


class FlakyDb:
    """The world's unit of work, failing ``failures`` times at commit (a database restart)."""

    def __init__(self, inner: object, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def __call__(self, readonly: bool = False) -> object:
        uow = self.inner(readonly)  # type: ignore[operator]
        flaky = self
        commit = uow.commit

        async def failing_commit() -> None:
            if flaky.failures > 0:
                flaky.failures -= 1
                raise ConnectionError("the database is restarting")
            await commit()
        uow.commit = failing_commit
        return uow


async def test_answers_wait_out_a_short_database_outage_instead_of_being_sent_again(
        world: World) -> None:
    for _ in range(3):
        await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    held = HangingSender()
    world.dispatcher.sender = held
    first = asyncio.create_task(world.dispatcher.run_once())
    for _ in range(200):
        if len(held.sent) == 3:
            break
        await asyncio.sleep(0.005)
    world.dispatcher.uow_factory = FlakyDb(world.db.uow, failures=2)  # type: ignore[assignment]
    held.release.set()
    assert await asyncio.wait_for(first, 5) == 3
    states = {(await world.child(c.fo_id)).state for c in sub.expansion.children}
    assert states == {"ack"}  # recorded once the database answered again: nothing re-sent
    world.clock.advance(60)
    world.dispatcher.uow_factory = world.db.uow
    assert await world.dispatcher.run_once() == 0
    assert len(held.sent) == 3


async def test_a_row_this_process_still_sends_is_not_sent_again_by_its_next_batch(
        world: World) -> None:
    for _ in range(2):
        await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    world.dispatcher.config.lease = LEASE
    held = HangingSender()
    world.dispatcher.sender = held
    world.dispatcher.keeper.every_s = 3600  # its heartbeat comes far too late
    first = asyncio.create_task(world.dispatcher.run_once())
    for _ in range(200):
        if len(held.sent) == 2:
            break
        await asyncio.sleep(0.005)
    world.clock.advance(LEASE.total_seconds() + 1)  # lapsed: the next claim leases them again
    assert await world.dispatcher.run_once() == 0  # ...but they stay with the first batch
    assert len(held.sent) == 2
    before = world.dispatcher.keeper.held()
    assert await world.dispatcher.keeper.renew_once() == sorted(before)  # the new numbers
    held.release.set()
    assert await first == 2
    assert {(await world.child(c.fo_id)).state for c in sub.expansion.children} == {"ack"}
    assert len(held.sent) == 2
