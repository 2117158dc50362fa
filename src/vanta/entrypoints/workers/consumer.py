"""The dispatch consumer: take ``mirror.dispatch`` messages from the bus and deliver them.

For each message it loads the outbox row and *takes* it with one compare-and-set that renews
the row's lease — only if the row is still open, still leased, and still on the lease the
message was published for. Otherwise the message is stale (the row is done, was rescheduled
for a later retry, or went out again under a newer lease) and is acked without a delivery.
Then ``Dispatcher.deliver`` does the work and completes or reschedules the row; the message
is acked. An exception naks it with a delay (the lease still holds the row for this
delivery's redelivery). ``drain()`` — what SIGTERM calls — stops pulling, lets in-flight
deliveries finish, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from vanta.adapters.db.repositories import aware
from vanta.adapters.db.tables import outbox
from vanta.application.bus import Bus, BusMessage, Subscription
from vanta.application.dispatch import Dispatcher
from vanta.entrypoints.workers.relay import DISPATCH_SUBJECT

log = logging.getLogger("vanta.consumer")

DISPATCH_DURABLE = "mirror-dispatch"


class Consumer:
    def __init__(self, dispatcher: Dispatcher, bus: Bus, concurrency: int = 16, *,
                 subject: str = DISPATCH_SUBJECT, durable: str = DISPATCH_DURABLE,
                 error_nak_delay_s: float = 2.0, heartbeat_s: float | None = 10.0,
                 lease: timedelta | None = None) -> None:
        self.dispatcher = dispatcher
        self.bus = bus
        self.concurrency = max(1, concurrency)
        self.subject = subject
        self.durable = durable
        self.error_nak_delay_s = error_nak_delay_s
        self.heartbeat_s = heartbeat_s
        self.lease = lease or dispatcher.config.lease
        self._sub: Subscription | None = None
        self.delivered = 0  # deliver() returned
        self.skipped = 0    # stale messages acked without a delivery
        self.failed = 0     # deliver() raised: nak'd for a redelivery

    async def start(self) -> None:
        if self._sub is None:
            self._sub = await self.bus.subscribe(self.subject, self.durable, self.handle,
                                                 concurrency=self.concurrency)

    async def drain(self) -> None:
        """Stop pulling, finish what is in flight, then return."""
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.drain()

    async def abort(self) -> None:
        """Stop at once without acking what is in flight (tests: a worker that dies)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.cancel()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.drain()

    async def take(self, outbox_id: int, lease_no: int | None) -> dict[str, Any] | None:
        """Renew the row's lease if this message is still the live one; the row, or None."""
        now = self.dispatcher.clock()
        # Leased (a rescheduled row has no lock until the relay leases it again, bumping
        # attempts), open, and on this message's lease. No clock comparison: a consumer on
        # another host with a skewed clock must not skip live messages.
        conds = [outbox.c.id == outbox_id, outbox.c.done_at.is_(None),
                 outbox.c.locked_until.is_not(None)]
        if lease_no is not None:
            conds.append(outbox.c.attempts == lease_no)
        async with self.dispatcher.uow_factory() as uow:
            conn = uow.outbox.conn
            res = await conn.execute(update(outbox).where(*conds)
                                     .values(locked_until=now + self.lease))
            if res.rowcount != 1:
                return None
            r = (await conn.execute(select(outbox).where(outbox.c.id == outbox_id))).first()
            await uow.commit()
        if r is None:
            return None
        return {k: aware(v) if k in ("created_at", "available_at", "locked_until", "done_at")
                else v for k, v in r._mapping.items()}

    @contextlib.asynccontextmanager
    async def _heartbeat(self, msg: BusMessage) -> AsyncIterator[None]:
        if not self.heartbeat_s:
            yield
            return

        async def beat() -> None:
            assert self.heartbeat_s
            while True:
                await asyncio.sleep(self.heartbeat_s)
                await msg.in_progress()

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def handle(self, msg: BusMessage) -> None:
        try:
            body: Mapping[str, Any] = json.loads(msg.data)
            outbox_id = int(body["outbox_id"])
            lease_no = int(body["lease"]) if body.get("lease") is not None else None
        except (ValueError, KeyError, TypeError):
            log.error("malformed dispatch message dropped", extra={"data": msg.data[:200]})
            await msg.ack()
            return
        try:
            row = await self.take(outbox_id, lease_no)
            if row is None:
                self.skipped += 1
                await msg.ack()
                return
            async with self._heartbeat(msg):
                await self.dispatcher.deliver(row)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed += 1
            log.exception("delivery failed; the message will come again",
                          extra={"outbox_id": outbox_id, "delivery": msg.num_delivered})
            await msg.nak(self.error_nak_delay_s)
            return
        self.delivered += 1
        await msg.ack()
