"""The embedded dispatcher's loop: claim due rows in batches until told to stop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from vanta.application.bridged import confirm_fills

if TYPE_CHECKING:
    from vanta.application.dispatch import Dispatcher

Begun = asyncio.Future[tuple[int, int]]  # a batch has begun: (rows claimed, sends started)


async def run_forever(d: Dispatcher, poll_seconds: float, stop: asyncio.Event) -> None:
    """While a batch waits for slow sends, start another on the free slots (up to
    ``max_batches`` open), so slow sends do not hold back the rows behind them; on
    ``stop``, finish what was started."""
    running: set[asyncio.Task[int]] = set()
    try:
        while not stop.is_set():
            while running and not d.may_add_batch(len(running)):
                await asyncio.wait(running, timeout=0.02,
                                   return_when=asyncio.FIRST_COMPLETED)
            # cleared before the claim, so a wake-up signalled while it runs is kept
            d.wakeup.clear()
            begun: Begun = asyncio.get_running_loop().create_future()
            limit = d.reserve(d.free_slots()) if running else 0
            task = asyncio.create_task(d.run_once(begun, limit=limit or None, reserved=limit))
            running.add(task)
            task.add_done_callback(running.discard)
            pair: list[asyncio.Future[Any]] = [begun, task]
            await asyncio.wait(pair, return_when=asyncio.FIRST_COMPLETED)
            claimed, started = begun.result() if begun.done() else (0, 0)
            if d.brokers is not None:
                await confirm_fills(d.uow_factory, d.brokers, clock=d.clock, journal=d.journal)
            if claimed and (started or len(running) <= 1):
                continue
            # nothing due, or an extra batch whose rows all waited for a full endpoint:
            # wait for a batch to end (or new work) instead of claiming them again
            waiters: list[asyncio.Future[Any]] = [
                       asyncio.create_task(d.wakeup.wait()),
                       asyncio.create_task(stop.wait()),
                       *(asyncio.ensure_future(asyncio.shield(t)) for t in running)]
            await asyncio.wait(waiters, timeout=poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
    finally:
        if running:
            await asyncio.gather(*running, return_exceptions=True)

