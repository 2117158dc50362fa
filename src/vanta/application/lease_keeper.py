"""Short outbox leases kept alive by the process that holds them.

A worker that leases outbox rows (to send them, or while they wait for an endpoint's share)
renews those leases every quarter of their length while it runs. Leases can therefore be
short: a worker that dies (SIGKILL, a lost machine) stops renewing, and its rows are due
again within one lease, while a live worker that is slow (a 5 s timeout, a long queue for
send slots) keeps them however long its sends take, so nobody else sends them meanwhile.

A lease is named by its row and its number (the row's ``attempts`` when leased); a row
leased again after a lapse carries a new number, so a heartbeat can never renew a lease its
holder already lost. One background task per keeper runs only while something is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from vanta.application.clock import Clock, utcnow
from vanta.application.ports.records_orders import OutboxRecord
from vanta.application.ports.uow import UowFactory

log = logging.getLogger("vanta.leases")

__all__ = ["LeaseKeeper"]


@dataclass(eq=False)
class LeaseKeeper:
    uow_factory: UowFactory
    lease: timedelta
    clock: Clock = utcnow
    # Renew this often (default: a quarter of the lease, so three heartbeats may fail or be
    # late before the lease lapses).
    every_s: float | None = None
    renewals: int = 0  # heartbeats that reached the database
    gone: int = 0  # leases found gone while held (settled meanwhile, lapsed or taken over)
    # row id -> the lease numbers it may be under (two, briefly, while a lease taken again
    # by this process is being committed or rolled back): whichever the database has wins
    _held: dict[int, set[int]] = field(default_factory=dict, init=False, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    @property
    def interval_s(self) -> float:
        return self.every_s or max(0.05, self.lease.total_seconds() / 4)

    def held(self) -> dict[int, set[int]]:
        """Row id -> lease numbers of what is held now."""
        return {i: set(ns) for i, ns in self._held.items()}

    def hold(self, leases: Iterable[tuple[int, int]]) -> None:
        """Keep these (row id, lease number) leases alive until dropped."""
        for i, n in leases:
            self._held.setdefault(i, set()).add(n)
        loop = asyncio.get_running_loop()
        if self._held and (self._task is None or self._task.done()
                           or self._task.get_loop() is not loop):
            self._task = loop.create_task(self._beat())

    def not_held(self, rows: Sequence[OutboxRecord]) -> list[OutboxRecord]:
        """``rows`` minus those this process is already working on: one whose heartbeat came
        too late and which was leased again here stays with the batch sending it, kept
        alive under its new lease number, instead of being sent a second time."""
        ours = [r for r in rows if r.id in self._held]
        self.hold((r.id, r.attempts) for r in ours)
        return [r for r in rows if r.id not in self._held]

    def drop(self, row_ids: Iterable[int]) -> None:
        """Stop renewing these rows (settled, handed back, or given up)."""
        for i in row_ids:
            self._held.pop(i, None)

    async def renew_once(self) -> list[int]:
        """One heartbeat: renew every held lease; those the database no longer has under
        their number are forgotten. The ids renewed."""
        snapshot = self.held()
        wanted = sorted((i, n) for i, ns in snapshot.items() for n in ns)
        if not wanted:
            return []
        async with self.uow_factory() as uow:
            renewed = await uow.outbox.renew_many(wanted, self.clock(), self.lease)
            await uow.commit()
        self.renewals += 1
        alive = set(renewed)
        for i in set(snapshot) - alive:
            # under none of its numbers: settled meanwhile, or lost; nothing left to renew
            # (unless it was held again, under another number, while this beat ran)
            if self._held.get(i) == snapshot[i]:
                del self._held[i]
                self.gone += 1
        return sorted(alive)

    async def _beat(self) -> None:
        while self._held:
            await asyncio.sleep(self.interval_s)
            if not self._held:
                break
            try:
                await self.renew_once()
            except Exception as e:  # the database is away: try again at the next beat
                log.warning("could not renew outbox leases", extra={
                    "held": len(self._held), "error": repr(e)})

    async def close(self) -> None:
        """Stop the heartbeat (what is held lapses by itself)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
