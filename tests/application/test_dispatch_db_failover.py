"""The database goes away between a send and the recording of its answer (a primary failing
over): the dispatcher keeps trying to record while it holds the lease, so the child is
acknowledged once and never sent a second time."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from tests.application.conftest import World
from vanta.application.ports.delivery import SendResult


class _Down:
    async def __aenter__(self) -> Any:
        raise ConnectionError("the primary is gone")

    async def __aexit__(self, *_: object) -> None:
        return None


def _outage_after_send(world: World, failures: int) -> dict[str, int]:
    """The next ``failures`` units of work after the first send fail to connect."""
    left = {"n": 0}
    real_send, real_uow = world.sender.send, world.dispatcher.uow_factory

    async def send(url: str, headers: dict[str, str], body: bytes) -> SendResult:
        result = await real_send(url, headers, body)
        left["n"] = failures
        return result

    def uow(readonly: bool = False) -> Any:
        if left["n"] > 0:
            left["n"] -= 1
            return _Down()
        return real_uow(readonly) if readonly else real_uow()

    world.sender.send = send  # type: ignore[method-assign]
    world.dispatcher.uow_factory = uow
    return left


async def test_answers_are_recorded_once_the_database_is_back(world: World) -> None:
    await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    [fo] = [c.fo_id for c in sub.expansion.children]
    left = _outage_after_send(world, failures=3)
    assert await world.dispatcher.run_once() == 1
    assert left["n"] == 0  # the three failed attempts were retried through
    child = await world.child(fo)
    assert (child.state, child.dispatch_attempts) == ("ack", 1)
    world.clock.advance(3600)  # long past every lease: nothing goes out again
    await world.drain()
    assert len(world.sender.requests) == 1


async def test_recording_gives_up_when_the_lease_would_lapse(world: World) -> None:
    world.dispatcher.config = replace(world.dispatcher.config, lease=timedelta(seconds=0.3))
    await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    [fo] = [c.fo_id for c in sub.expansion.children]
    left = _outage_after_send(world, failures=1000)
    t0 = time.monotonic()
    assert await world.dispatcher.run_once() == 0  # the batch failed (logged)
    assert time.monotonic() - t0 < 2  # gave up with the lease, not later
    left["n"] = 0
    assert (await world.child(fo)).state == "sent"  # goes again once the lease lapses
