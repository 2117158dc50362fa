"""Delivering child orders: lease an outbox row, sign, POST, record the attempt, move state."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from vanta.application.clock import Clock, utcnow
from vanta.application.dispatch_loop import Begun, run_forever
from vanta.application.dispatch_send import answer_groups, send_one
from vanta.application.dispatch_steps import (
    MAINTENANCE_RECHECK,
    OPEN_CHILD_STATES,
    BatchOutcome,
    Decided,
    Endpoint,
    Prepared,
    cancel,
    collect_answers,
    dead_letter,
    endpoint_of,
    needs_order,
    next_state_of,
    prepare_attempt,
    record_answers_while_leased,
    release_leases,
    report,
    signing_refs,
)
from vanta.application.lease_keeper import LeaseKeeper
from vanta.application.manager_orders import DISPATCH_TOPIC
from vanta.application.observability import attempts_started
from vanta.application.ports.brokers import BrokerGateways
from vanta.application.ports.delivery import OutboxLease, SendResult, WebhookSender
from vanta.application.ports.journal import NO_JOURNAL, Journal
from vanta.application.ports.metrics import NO_METRICS, Metrics
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_orders import (
    ChildOrderRecord,
    OutboxRecord,
)
from vanta.application.ports.secrets import SecretReader
from vanta.application.ports.tracer import NOOP_TRACER, Tracer
from vanta.application.ports.uow import UnitOfWork, UowFactory
from vanta.domain.orders import CHILD_ORDER_TABLE, ChildOrderState

log = logging.getLogger("vanta.dispatch")
RowsOf = Callable[[UnitOfWork], Awaitable[Sequence[OutboxRecord]]]
__all__ = ["BatchOutcome", "DispatchConfig", "Dispatcher", "Prepared", "endpoint_of",
           "signing_refs"]


@dataclass
class DispatchConfig:
    retry_schedule: Sequence[float] = (1.0, 5.0, 15.0, 60.0)
    jitter_fraction: float = 0.2
    # Short: the holder renews it while it works on the row (``LeaseKeeper``), so a worker
    # that dies frees its rows within one lease, however long a live worker's sends take.
    lease: timedelta = timedelta(seconds=8)
    batch: int = 64
    concurrency: int = 32
    # Children sent to one endpoint (scheme, host, port) per batch: the sender's own limit,
    # so no child waits for an endpoint slot with its attempt's timeout already running.
    per_endpoint: int = 4
    # Batches open at once: while a batch waits for a slow send, another starts on the free
    # slots (taking no more rows than there are free slots), so a slow send holds its own
    # slot, not the rows behind it.
    max_batches: int = 16
    # While a batch waits for slow sends, what has answered is recorded once no answer came
    # for this long (see ``answer_groups``); None: once, when every send has ended.
    record_every_s: float | None = 0.2


@dataclass
class Dispatcher:
    uow_factory: UowFactory
    sender: WebhookSender
    secrets: SecretReader
    config: DispatchConfig = field(default_factory=DispatchConfig)
    clock: Clock = utcnow
    rng: random.Random = field(default_factory=random.Random)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    brokers: BrokerGateways | None = None
    metrics: Metrics = NO_METRICS
    tracer: Tracer = NOOP_TRACER
    journal: Journal = NO_JOURNAL
    # Shared by every batch this dispatcher runs at once: children started per endpoint and
    # not yet answered, and the send slots (``config.concurrency``) of the running loop.
    _in_flight: dict[Endpoint, int] = field(default_factory=dict, init=False, repr=False)
    _sends: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = field(
        default=None, init=False, repr=False)
    _busy: int = field(default=0, init=False, repr=False)  # sends started and not ended
    _reserved: int = field(default=0, init=False, repr=False)  # slots of batches starting
    keeper: LeaseKeeper = field(init=False, repr=False)  # renews what this process holds

    def __post_init__(self) -> None:
        self.keeper = LeaseKeeper(self.uow_factory, self.config.lease, self.clock)

    def free_slots(self) -> int:
        """Send slots neither sending nor promised to a batch being started."""
        return self.config.concurrency - self._busy - self._reserved

    def may_add_batch(self, open_batches: int) -> bool:
        """Whether a batch beyond the usual ones may start now: only on free slots, so its
        sends start at once and no row waits for a slot with its lease running."""
        return (open_batches < self.config.max_batches
                and self.free_slots() >= max(1, self.config.concurrency // 4))

    def reserve(self, n: int) -> int:
        """Promise ``n`` slots to a batch about to start (handed back once it has begun)."""
        self._reserved += n
        return n

    async def run_once(self, begun: Begun | None = None, *,
                       limit: int | None = None, reserved: int = 0) -> int:
        """Deliver what is due now; the outbox rows handled. ``begun``: see Begun."""
        async def claim(uow: UnitOfWork) -> Sequence[OutboxRecord]:
            return self.keeper.not_held(await uow.outbox.claim_due(
                DISPATCH_TOPIC, self.clock(), limit or self.config.batch, self.config.lease))
        try:
            # claimed in the transaction that starts the attempts: one transaction fewer
            rows, res = await self._deliver(claim, reserved, hand_back=True, begun=begun)
        except Exception:  # the database went away mid-batch: the leases lapse, rows return
            log.exception("dispatch batch failed")
            return 0
        for row_id, error in res.failed.items():
            log.error("delivery failed unexpectedly", extra={"outbox_id": row_id,
                                                             "error": repr(error)})
        return len(rows)

    async def run_forever(self, poll_seconds: float, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` (see ``dispatch_loop.run_forever``)."""
        await run_forever(self, poll_seconds, stop)

    async def deliver_leased(self, leases: Sequence[OutboxLease], lease: timedelta,
                             reserved: int = 0) -> tuple[list[OutboxRecord], BatchOutcome]:
        """Deliver the rows the leases of bus messages name: the transaction that starts
        the attempts first renews those still live (``take_many``). Returns the rows taken
        (the others were stale), with their new expiry, and the outcome."""
        async def take(uow: UnitOfWork) -> Sequence[OutboxRecord]:
            return self.keeper.not_held(await uow.outbox.take_many(leases, self.clock(), lease))
        return await self._deliver(take, reserved)

    async def _deliver(self, rows_of: RowsOf, reserved: int = 0, *, hand_back: bool = False,
                       begun: Begun | None = None
                       ) -> tuple[list[OutboxRecord], BatchOutcome]:
        with self.tracer.span("dispatch.batch"):
            try:
                return await self._deliver_batch(rows_of, reserved, hand_back, begun)
            finally:
                if begun is not None and not begun.done():
                    begun.set_result((0, 0))

    async def _deliver_batch(self, rows_of: RowsOf, reserved: int, hand_back: bool,
                             begun: Begun | None) -> tuple[list[OutboxRecord], BatchOutcome]:
        """Deliver a batch: one transaction leases the rows (``rows_of``) and starts every
        attempt (state ``sent``, an ``in_flight`` attempt row each); the sends run at once;
        the answers are recorded (attempts, states, outbox rows, audit events) as a group,
        or in groups while a slow send is still out. A send that raises stays ``sent``
        with its lease and goes again (as a lost attempt) once it lapses; a database error
        does so for the whole batch. Rows beyond an endpoint's share are not started: with
        ``hand_back`` their leases are handed back at once, else the caller holds them."""
        outcome = BatchOutcome()
        try:
            rows, prepared = await self._begin_batch(rows_of, outcome.deferred)
        finally:
            self._reserved -= reserved  # the promised slots become its sends (below)
        self._busy += len(prepared)
        if begun is not None:
            begun.set_result((len(rows), len(prepared)))
        if hand_back and outcome.deferred:
            try:
                await release_leases(self.uow_factory, rows, set(outcome.deferred))
            except Exception:  # their leases lapse instead; this batch's sends go on
                log.exception("could not hand back deferred rows")
            outcome.deferred = []
        if not prepared:
            return rows, outcome
        # kept alive while the sends run, however long they take; dropped once recorded
        self.keeper.lease, self.keeper.clock = self.config.lease, self.clock
        self.keeper.hold((row.id, row.attempts) for row, _ in prepared)
        sem = self._send_slots()

        async def send(p: Prepared) -> SendResult:
            try:
                async with sem:
                    return await send_one(p, self.sender, self.metrics, self.tracer,
                                          self.clock, self.uow_factory)
            finally:
                self._busy -= 1
                self._release_endpoints([p.endpoint])

        tasks = {asyncio.ensure_future(send(p)): (row, p) for row, p in prepared}
        try:
            # a batch whose sends end close together is recorded once; one that waits for a
            # slow send records what has answered meanwhile, so it is not held back
            async for done in answer_groups(tasks, self.config.record_every_s):
                answered = collect_answers(done, tasks, outcome.failed)
                await self._finish_batch(answered)
                self.keeper.drop(row.id for row, _, _ in answered)
        finally:
            for t in tasks:
                t.cancel()  # only reached undone when this batch itself is cancelled
            # what is left (a send that raised, a failed write) lapses and goes again
            self.keeper.drop(row.id for row, _ in prepared)
        return rows, outcome

    def _send_slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sends is None or self._sends[0] is not loop:
            self._sends = (loop, asyncio.Semaphore(self.config.concurrency))
        return self._sends[1]

    def _admit(self, key: Endpoint) -> bool:
        """Count one more child in flight to ``key`` if its share has room."""
        n = self._in_flight.get(key, 0)
        if n >= self.config.per_endpoint:
            return False
        self._in_flight[key] = n + 1
        return True

    def _release_endpoints(self, keys: Iterable[Endpoint | None]) -> None:
        for key in keys:
            if key is None:
                continue
            n = self._in_flight.get(key, 0) - 1
            if n > 0:
                self._in_flight[key] = n
            else:
                self._in_flight.pop(key, None)

    async def _begin_batch(
        self, rows_of: RowsOf,
        deferred: list[int],
    ) -> tuple[list[OutboxRecord], list[tuple[OutboxRecord, Prepared]]]:
        admitted: dict[int, Endpoint] = {}
        out: list[tuple[OutboxRecord, Prepared]] = []
        try:
            rows = await self._start_attempts(rows_of, deferred, admitted, out)
        except BaseException:  # nothing of this batch will be sent
            self._release_endpoints(admitted.values())
            raise
        return rows, out

    async def _start_attempts(self, rows_of: RowsOf, deferred: list[int],
                              admitted: dict[int, Endpoint],
                              out: list[tuple[OutboxRecord, Prepared]]
                              ) -> list[OutboxRecord]:
        now = self.clock()
        async with self.uow_factory() as uow:
            outbox_rows = list(await rows_of(uow))
            if not outbox_rows:
                return []
            children = await uow.child_orders.get_many_unscoped(
                r.payload["fo_id"] for r in outbox_rows)
            followers = await uow.followers.get_many_unscoped(
                c.follower_id for c in children.values())
            to_send = await self._triage(uow, outbox_rows, children, followers, deferred,
                                         admitted, now)
            moved: dict[str, int] = {}
            for expect, rows in to_send.items():
                ids = [r.payload["fo_id"] for r in rows]
                got = await uow.child_orders.update_many(
                    ids, expect_state=expect, state=ChildOrderState.SENT.value,
                    count_attempt=True, updated_at=now)
                if expect == ChildOrderState.SENT.value:
                    # The worker that leased these died mid-attempt. They go again with the
                    # same webhook-id (the receiver de-duplicates), within the same budget.
                    await uow.attempts.mark_lost_many(list(got))
                moved.update(got)
            # Logged before sending, so an attempt lost with its worker is still visible.
            await uow.attempts.add_many([
                {"fo_id": fo_id, "attempt_no": n, "started_at": now, "status_code": None,
                 "latency_ms": 0, "response_excerpt": None, "error": None,
                 "outcome": "in_flight"} for fo_id, n in moved.items()])
            # the order is read only for what has no stored body (redeliveries, brokers)
            need = list(needs_order(to_send, followers, children, moved))
            orders = await uow.manager_orders.get_many_unscoped(children[f].mo_id for f in need)
            legs = await uow.legs.for_children(need)  # bridged legs, bodies rendered here
            await uow.commit()
        attempts_started(self.journal, children, moved, to_send)
        for rows in to_send.values():
            for row in rows:
                fo_id = row.payload["fo_id"]
                if fo_id not in moved:  # another worker moved it first
                    self._release_endpoints([admitted.pop(row.id, None)])
                    continue
                child = children[fo_id]
                p = prepare_attempt(self.brokers, self.secrets, child,
                                    followers[child.follower_id], orders.get(child.mo_id),
                                    moved[fo_id], now, admitted.get(row.id),
                                    row.payload.get("body"), legs.get(fo_id, ()))
                tp = row.payload.get("traceparent")
                out.append((row, p if tp is None else replace(p, traceparent=tp)))
        return outbox_rows

    async def _triage(self, uow: UnitOfWork, outbox_rows: list[OutboxRecord],
                      children: Mapping[str, ChildOrderRecord],
                      followers: Mapping[str, FollowerRecord],
                      deferred: list[int], admitted: dict[int, Endpoint],
                      now: datetime) -> dict[str, list[OutboxRecord]]:
        """Settle the rows that need no attempt (finished, held, cancelled, parked) and
        return the others by the state their child leaves; rows beyond an endpoint's share
        go to ``deferred``."""
        held = await uow.vaults.under_maintenance(c.vault_id for c in children.values())
        budget = len(self.config.retry_schedule) + 1
        done: list[int] = []
        later: list[tuple[int, datetime]] = []
        to_send: dict[str, list[OutboxRecord]] = {}
        for row in outbox_rows:
            child = children.get(row.payload["fo_id"])
            if child is None or child.state not in OPEN_CHILD_STATES:
                done.append(row.id)
                continue
            if child.vault_id in held:
                # held, not dropped: delivered once maintenance is lifted
                later.append((row.id, now + MAINTENANCE_RECHECK))
                continue
            state = child.state
            follower = followers[child.follower_id]
            if state is not ChildOrderState.SENT and (follower.kill_switch or
                                                      follower.paused):
                # A kill switch acts at once: what is still queued is withdrawn, not sent.
                reason = "kill_switch" if follower.kill_switch else "paused"
                await cancel(uow, row, child, state, reason, now, self.journal)
            elif follower.webhook_disabled_at is not None:
                # Parked, not lost: an operator redelivers once the endpoint is fixed.
                error = f"endpoint disabled: {follower.webhook_disabled_reason}"
                await dead_letter(uow, row, child, state, error, now, self.metrics,
                                  self.journal)
            elif state is ChildOrderState.SENT and child.dispatch_attempts >= budget:
                # The worker died during the last attempt the budget allows.
                await uow.attempts.mark_lost(child.fo_id)
                await dead_letter(uow, row, child, state,
                                  "the worker stopped during the last attempt", now,
                                  self.metrics, self.journal)
            else:
                if not follower.bridged_brokers:
                    # registration gives every follower without a broker a URL
                    key = endpoint_of(follower.webhook_url or "")
                    if not self._admit(key):
                        deferred.append(row.id)
                        continue
                    admitted[row.id] = key
                if state is not ChildOrderState.SENT:
                    CHILD_ORDER_TABLE.check(state, ChildOrderState.SENT)
                to_send.setdefault(state.value, []).append(row)
        await uow.outbox.complete_many(done, now)
        await uow.outbox.reschedule_many(later)
        return to_send

    async def _finish_batch(self, answered: Sequence[tuple[OutboxRecord, Prepared, SendResult]]
                            ) -> None:
        if not answered:
            return
        now = self.clock()
        decided: list[Decided] = []
        for row, p, result in answered:
            next_state, delay = next_state_of(p.attempt_no, result, self.config.retry_schedule,
                                              self.config.jitter_fraction, self.rng.random)
            CHILD_ORDER_TABLE.check(ChildOrderState.SENT, next_state)
            error = result.error or (None if next_state is ChildOrderState.ACK
                                     else f"HTTP {result.status}")
            decided.append((row, p, result, next_state, delay, error))
        settled, children = await record_answers_while_leased(self.uow_factory, decided, now)
        report(self.metrics, settled, children, now, self.journal)
        self.journal.flush()
