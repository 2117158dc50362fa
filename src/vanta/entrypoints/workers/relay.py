"""The outbox relay: lease due outbox rows and publish them to the bus in chunks.

The database stays the source of truth. The relay leases rows exactly as
``Dispatcher.run_once`` does (``claim_due`` commits the lease and bumps ``attempts``) and
publishes to ``mirror.dispatch`` one message per chunk of rows naming each row's lease (its
number and expiry; the format is in ``dispatch_messages``), with a message id derived from
those leases. It never completes a row: the consumer's ``deliver`` completes or reschedules
it. Consequences, per row of a chunk:

* a relay that publishes the same lease again (a retried publish, a crash between publish and
  acknowledgement) reuses the message id, and the bus drops the copy;
* a row whose lease runs out before any consumer took it (the message was lost, or is still
  queued) is leased again with ``attempts + 1``: a *new* message; the consumer recognises the
  older one by its ``lease`` number and skips it;
* one lease is taken by one consumer: taking it moves its expiry, so a second copy of the
  message (redelivered because the first was not acknowledged in time, say while the bus was
  away) finds a different ``until`` and is skipped, instead of sending the child again. If the
  consumer that took it dies, the row goes out again once its lease lapses, on a new message;
* a publish that fails hands the lease back at once (unless a consumer renewed it meanwhile),
  so the row goes out again on the next poll rather than after the lease;
* the claim itself is short (``claim_lease``): a relay killed between claiming and publishing
  holds its rows for seconds, not for the whole wait in the bus. Once the bus has stored a
  message, its leases are handed over to the longer ``lease`` (the time a message may wait
  in the bus before its rows are published again). The message names both expiries, since a
  consumer may take a row before the hand-over is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from vanta.application.bus import Bus
from vanta.application.clock import Clock, utcnow
from vanta.application.manager_orders import DISPATCH_TOPIC
from vanta.application.ports.delivery import OutboxLease
from vanta.application.ports.records_orders import OutboxRecord
from vanta.application.ports.uow import UowFactory
from vanta.application.trace_hops import relay_span
from vanta.entrypoints.workers.dispatch_messages import (
    CHUNK,
    chunks,
    encode,
    encode_batch,
    message_id,
)

log = logging.getLogger("vanta.relay")

DISPATCH_SUBJECT = "mirror.dispatch"
DEFAULT_RELAY_LEASE = timedelta(seconds=120)
DEFAULT_CLAIM_LEASE = timedelta(seconds=8)
__all__ = ["DEFAULT_CLAIM_LEASE", "DEFAULT_RELAY_LEASE", "DISPATCH_SUBJECT", "Relay",
           "RelayPublishError", "encode", "message_id"]


class Relay:
    def __init__(self, uow_factory: UowFactory, bus: Bus,
                 lease: timedelta = DEFAULT_RELAY_LEASE, *, subject: str = DISPATCH_SUBJECT,
                 topic: str = DISPATCH_TOPIC, batch: int = 256, poll_seconds: float = 0.1,
                 publish_concurrency: int = 64, publish_tries: int = 3,
                 max_backoff_s: float = 5.0, clock: Clock = utcnow,
                 wakeup: asyncio.Event | None = None, chunk: int = CHUNK,
                 claim_lease: timedelta = DEFAULT_CLAIM_LEASE) -> None:
        self.uow_factory = uow_factory
        self.bus = bus
        self.lease = lease
        self.claim_lease = min(claim_lease, lease)
        self.subject = subject
        self.topic = topic
        self.batch = batch
        self.chunk = max(1, chunk)
        self.poll_seconds = poll_seconds
        self.publish_tries = max(1, publish_tries)
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self.wakeup = wakeup or asyncio.Event()
        self._sem = asyncio.Semaphore(max(1, publish_concurrency))
        self.published = 0  # rows of new messages the bus stored
        self.duplicates = 0  # rows of publishes the bus recognised by message id and dropped
        self.released = 0  # leases handed back after a failed publish

    async def _publish(self, rows: Sequence[OutboxRecord],
                       until: datetime | None = None) -> bool:
        body, mid = encode_batch(rows, until)
        # the order's trace continues here (a span when tracing is on), then in the headers;
        # a chunk's rows are children of one order, so the first row's trace is theirs
        async with self._sem, relay_span(rows[0].payload) as headers:
            for i in range(self.publish_tries):
                try:
                    return await self.bus.publish(self.subject, body, mid, headers)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if i == self.publish_tries - 1:
                        raise
                    # same lease, same message id: the bus de-duplicates if it did land
                    await asyncio.sleep(0.2 * 2 ** i)
        raise AssertionError("unreachable")

    async def _release(self, rows: list[OutboxRecord]) -> None:
        """Hand back leases whose message may not exist, unless a consumer already took the
        row (it renews the lease, which changes ``locked_until``)."""
        try:
            async with self.uow_factory() as uow:
                released = await uow.outbox.release_unclaimed(
                    [OutboxLease(r.id, r.attempts, r.locked_until) for r in rows])
                await uow.commit()
            self.released += released
        except Exception:  # the database is away too: the leases lapse by themselves
            log.exception("could not hand back leases after a failed publish")

    async def _hand_over(self, rows: list[OutboxRecord], until: datetime) -> None:
        """The bus holds these rows now: their short claims become its longer wait."""
        try:
            async with self.uow_factory() as uow:
                await uow.outbox.hand_over(
                    [OutboxLease(r.id, r.attempts, r.locked_until) for r in rows], until)
                await uow.commit()
        except Exception:  # the claims lapse sooner: the rows are published again, not lost
            log.exception("could not hand leases over to the bus")

    async def run_once(self) -> int:
        """Lease what is due and publish it; returns how many rows were leased. Raises when
        some publish failed (after handing those leases back)."""
        now = self.clock()
        async with self.uow_factory() as uow:
            rows = await uow.outbox.claim_due(self.topic, now, self.batch, self.claim_lease)
            await uow.commit()
        if not rows:
            return 0
        # the expiry the leases get once their message is stored (none: the claim's own)
        until = now + self.lease if self.lease > self.claim_lease else None
        parts = list(chunks(rows, self.chunk))
        results = await asyncio.gather(*(self._publish(c, until) for c in parts),
                                       return_exceptions=True)
        failed: list[OutboxRecord] = []
        stored: list[OutboxRecord] = []
        error: BaseException | None = None
        for part, res in zip(parts, results, strict=True):
            if isinstance(res, BaseException):
                failed.extend(part)
                error = error or res
                continue
            stored.extend(part)
            if res:
                self.published += len(part)
            else:
                self.duplicates += len(part)
        if until is not None and stored:
            await self._hand_over(stored, until)
        if failed:
            await self._release(failed)
            raise RelayPublishError(f"{len(failed)} of {len(rows)} publishes failed") \
                from error
        return len(rows)

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self.wakeup.wait()),
                   asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; errors (database or bus away) back off and retry."""
        backoff = self.poll_seconds
        while not stop.is_set():
            # cleared before the claim, so a wake-up signalled while it runs is kept
            self.wakeup.clear()
            try:
                n = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("relay pass failed; retrying", extra={"error": repr(e),
                                                                  "in_s": backoff})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(self.max_backoff_s, backoff * 2)
                continue
            backoff = self.poll_seconds
            if n >= self.batch:
                continue  # more may be due right now
            await self._sleep(self.poll_seconds, stop)


class RelayPublishError(RuntimeError):
    pass
