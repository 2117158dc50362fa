"""The dispatch consumer: take ``mirror.dispatch`` messages from the bus and deliver them.

A message names the leases of one or more rows (``dispatch_messages``); the rows are gathered
into batches (what arrived within a few milliseconds, up to ``batch``), and a message is
acked once every row it names is settled. ``Dispatcher.deliver_leased`` *takes* the
batch's outbox rows with one compare-and-set that renews each row's lease — only if the row
is still open, still leased, and still on the lease its message was published for — in the
same transaction that starts their attempts, delivers them, and completes or reschedules
each.
A message whose row was not taken is stale (the row is done, was rescheduled for a later
retry, or went out again under a newer lease) and is acked without a delivery. A row the
batch deferred (its endpoint's share was full) waits, its message unacked and its lease
held, until a running batch finishes and frees room, then goes into the next batch (a nak
would spend one of the message's limited redeliveries); a delivery that raised is nak'd with
a delay (the lease still holds the row for that redelivery). Up to ``max_batches`` batches
run at once; the dispatcher's send slots and per-endpoint shares are shared between them, so
an endpoint never gets more than its share from one worker. While a message waits, one
heartbeat task for the whole consumer tells the bus every ``heartbeat_s`` that it is still
in progress.
``drain()`` — what SIGTERM calls — stops pulling, lets in-flight deliveries finish, and
returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from vanta.application.bus import Bus, BusMessage, Subscription
from vanta.application.dispatch import Dispatcher
from vanta.application.ports.delivery import OutboxLease
from vanta.application.trace_hops import received
from vanta.entrypoints.workers.dispatch_messages import CHUNK, decode
from vanta.entrypoints.workers.relay import DISPATCH_SUBJECT

log = logging.getLogger("vanta.consumer")

DISPATCH_DURABLE = "mirror-dispatch"


@dataclass(eq=False)
class _Waiting:
    lease: OutboxLease  # as the message names it; a held row's is renewed by its take
    done: asyncio.Future[str]


class Consumer:
    def __init__(self, dispatcher: Dispatcher, bus: Bus, concurrency: int = 16, *,
                 subject: str = DISPATCH_SUBJECT, durable: str = DISPATCH_DURABLE,
                 error_nak_delay_s: float = 2.0, heartbeat_s: float | None = 2.0,
                 lease: timedelta | None = None, batch: int | None = None,
                 batch_window_s: float = 0.005,
                 max_batches: int = 2) -> None:
        self.dispatcher = dispatcher
        self.bus = bus
        self.batch = max(1, batch or concurrency)
        # Batches overlap (one records its answers while the next sends); the dispatcher's
        # shared send slots and per-endpoint shares bound them together.
        self.max_batches = max(1, max_batches)
        # Beyond max_batches, a batch starts on free send slots, up to the dispatcher's
        # max_batches open: a slow send holds its slot, not the next batch.
        self.max_open = max(self.max_batches, dispatcher.config.max_batches)
        # Pull enough that the next batch is already here when one finishes; a message
        # carries up to CHUNK rows and stays unacked until its slowest row is settled.
        self.concurrency = max(2, math.ceil((self.max_open + 1) * self.batch / CHUNK) + 1)
        self.subject = subject
        self.durable = durable
        self.error_nak_delay_s = error_nak_delay_s
        self.heartbeat_s = heartbeat_s
        self.batch_window_s = batch_window_s
        self.lease = lease or dispatcher.config.lease
        self._sub: Subscription | None = None
        self._waiting: list[_Waiting] = []
        self._arrived = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self._held: list[_Waiting] = []  # deferred: retried once a batch frees room
        self._live: set[BusMessage] = set()  # handed to a handler, not yet acked or nak'd
        self._beats: asyncio.Task[None] | None = None
        self.delivered = 0  # delivered (acked after its row was settled)
        self.skipped = 0    # stale messages acked without a delivery
        self.failed = 0     # the delivery raised: nak'd for a redelivery
        self.deferred = 0   # times a row waited for its endpoint's share (retried in-process)
        self.batches = 0

    async def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run_batches())
        if self._beats is None and self.heartbeat_s:
            self._beats = asyncio.create_task(self._heartbeats(self.heartbeat_s))
        if self._sub is None:
            self._sub = await self.bus.subscribe(self.subject, self.durable, self.handle,
                                                 concurrency=self.concurrency)

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        beats, self._beats = self._beats, None
        for t in [runner, beats, *self._batches]:
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def drain(self) -> None:
        """Stop pulling, finish what is in flight, then return."""
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.drain()  # the handlers wait on the batch runner, which still runs
        await self._stop_runner()

    async def abort(self) -> None:
        """Stop at once without acking what is in flight (tests: a worker that dies)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.cancel()
        await self._stop_runner()
        await self.dispatcher.keeper.close()  # a dead worker renews nothing

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.drain()

    async def _run_batches(self) -> None:
        while True:
            await self._arrived.wait()
            if len(self._waiting) < self.batch and self._batches:
                # while a batch runs, let the rest of a burst join the next one; an idle
                # consumer starts at once (a lone order's child would only wait)
                await asyncio.sleep(self.batch_window_s)
            # Beyond max_batches, a batch starts only on free send slots and takes no more
            # rows than there are, so none waits for a slot with its lease running.
            extra = len(self._batches) >= self.max_batches
            if extra and not self.dispatcher.may_add_batch(len(self._batches)):
                await asyncio.wait(self._batches, timeout=0.02,
                                   return_when=asyncio.FIRST_COMPLETED)
                continue
            n = min(self.batch, self.dispatcher.free_slots()) if extra else self.batch
            items, self._waiting = self._waiting[:n], self._waiting[n:]
            if not self._waiting:
                self._arrived.clear()
            items = [w for w in items if not w.done.done()]  # a cancelled handler's
            if items:
                reserved = self.dispatcher.reserve(len(items)) if extra else 0
                task = asyncio.create_task(self._run_batch(items, reserved))
                self._batches.add(task)
                task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        if self._held:  # this batch's sends freed their endpoints: the held rows go next
            self._waiting[:0], self._held = self._held, []
            self._arrived.set()

    async def _run_batch(self, items: list[_Waiting], reserved: int = 0) -> None:
        self.batches += 1
        # held rows are taken again by this batch (which renews them) or found gone
        self.dispatcher.keeper.drop(w.lease.row_id for w in items)
        try:
            taken, res = await self.dispatcher.deliver_leased([w.lease for w in items],
                                                              self.lease, reserved)
            rows = {r.id: r for r in taken}
        except Exception as e:
            for w in items:
                if not w.done.done():
                    w.done.set_exception(e)
            return
        for w in items:
            row_id = w.lease.row_id
            if w.done.done():
                continue
            if row_id not in rows:
                w.done.set_result("skipped")
            elif row_id in res.failed:
                w.done.set_exception(res.failed[row_id])
            elif row_id in res.deferred:
                self.deferred += 1
                # taken but not started: this consumer holds the lease, and keeps it alive
                # until a batch takes it again by its number (the heartbeat moves its expiry)
                number = rows[row_id].attempts
                w.lease = OutboxLease(row_id, number)
                self.dispatcher.keeper.hold([(row_id, number)])
                if self._batches - {asyncio.current_task()}:
                    self._held.append(w)  # retried when a running batch finishes
                else:
                    self._waiting.insert(0, w)  # nothing else runs: room is free now
                    self._arrived.set()
            else:
                w.done.set_result("delivered")

    async def _heartbeats(self, every_s: float) -> None:
        """Restart the ack wait of every message still waiting for its batch: one task for
        the consumer instead of one per message."""
        while True:
            await asyncio.sleep(every_s)
            live = list(self._live)
            results = await asyncio.gather(*(m.in_progress() for m in live),
                                           return_exceptions=True)
            failed = sum(isinstance(r, Exception) for r in results)
            if failed:  # the bus is away: the messages come again, their rows stay leased
                log.warning("in-progress signals failed", extra={"messages": failed})

    async def handle(self, msg: BusMessage) -> None:
        """One message names one or more leases (see ``dispatch_messages``); each joins the
        batches on its own, and the message is acked once all of them are settled, or nak'd
        if a delivery raised (its redelivery skips the rows that were settled)."""
        try:
            leases = decode(msg.data)
        except (ValueError, KeyError, TypeError):
            log.error("malformed dispatch message dropped", extra={"data": msg.data[:200]})
            await msg.ack()
            return
        received(msg.headers, leases[0].row_id)
        loop = asyncio.get_running_loop()
        waiting = [_Waiting(lease, loop.create_future()) for lease in leases]
        self._waiting.extend(waiting)
        self._arrived.set()
        self._live.add(msg)
        try:
            outcomes = await asyncio.gather(*(w.done for w in waiting), return_exceptions=True)
        except asyncio.CancelledError:
            self._live.discard(msg)
            for w in waiting:
                w.done.cancel()
            raise
        self._live.discard(msg)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        for o in outcomes:
            if o == "skipped":
                self.skipped += 1
            elif o == "delivered":
                self.delivered += 1
        if errors:
            self.failed += len(errors)
            log.error("delivery failed; the message will come again",
                      extra={"rows": [w.lease.row_id for w, o in zip(waiting, outcomes,
                                                                      strict=True)
                                      if isinstance(o, BaseException)],
                             "error": repr(errors[0]), "delivery": msg.num_delivered})
            await msg.nak(self.error_nak_delay_s)
            return
        await msg.ack()
