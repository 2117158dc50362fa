"""Delivering child orders: lease an outbox row, sign, POST, record the attempt, move state."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

from vanta.adapters import metrics
from vanta.adapters.db.repositories import OutboxLease
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.adapters.webhooks.sender import SendResult
from vanta.adapters.webhooks.signing import signature_headers
from vanta.application.bridged import (
    BrokerRegistry,
    broker_order,
    confirm_fills,
    submit_to_broker,
)
from vanta.application.brokers import BrokerGateway, BrokerOrder
from vanta.application.clock import Clock, iso, utcnow
from vanta.application.manager_orders import DISPATCH_TOPIC
from vanta.application.payloads import dispatch_body
from vanta.domain.delivery import Outcome, classify, parse_retry_after, retry_delay
from vanta.domain.orders import (
    CHILD_ORDER_TABLE,
    ChildOrderState,
    ManagerOrderState,
)

log = logging.getLogger("vanta.dispatch")
Endpoint = tuple[str, str, int | None]  # scheme, host, port
OPEN_CHILD_STATES = (ChildOrderState.PENDING.value, ChildOrderState.SENT.value,
                     ChildOrderState.RETRY.value)
MAINTENANCE_RECHECK = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One attempt, ready to go: a signed webhook, or an order for the follower's broker."""

    url: str
    headers: dict[str, str]
    body: bytes
    attempt_no: int
    started: datetime
    gateway: BrokerGateway | None = None
    broker_order: BrokerOrder | None = None
    price: Decimal | None = None
    endpoint: Endpoint | None = None  # counted in the dispatcher's in-flight share until sent
    # The child as read when the attempt started; the answer only needs its fixed fields
    # (ids, tenant, creation time), so recording it reads nothing again.
    child: dict[str, Any] = field(default_factory=dict)


def signing_refs(follower: dict[str, Any], now: datetime) -> list[str]:
    """The current key, plus every previous key whose overlap window is still open."""
    refs = [follower["hmac_key_ref"]]
    for k in follower.get("webhook_keys") or []:
        until = k.get("not_after")
        if until is None or datetime.fromisoformat(until) > now:
            refs.append(k["ref"])
    return refs


class Sender(Protocol):
    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult: ...


class Secrets(Protocol):
    def get(self, ref: str) -> bytes: ...


@dataclass
class DispatchConfig:
    retry_schedule: Sequence[float] = (1.0, 5.0, 15.0, 60.0)
    jitter_fraction: float = 0.2
    lease: timedelta = timedelta(seconds=30)
    batch: int = 64
    concurrency: int = 32
    # Children sent to one endpoint (scheme, host, port) per batch: the sender's own limit,
    # so no child waits for an endpoint slot with its attempt's timeout already running.
    per_endpoint: int = 4


@dataclass
class BatchOutcome:
    """What a batch could not settle: sends that raised (their lease lapses and they go
    again as lost attempts) and rows deferred to the next batch (an endpoint was full)."""

    failed: dict[int, Exception] = field(default_factory=dict)
    deferred: list[int] = field(default_factory=list)


@functools.lru_cache(maxsize=4096)
def endpoint_of(url: str) -> Endpoint:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


@dataclass
class Dispatcher:
    uow_factory: Callable[[], SqlUnitOfWork]
    sender: Sender
    secrets: Secrets
    config: DispatchConfig = field(default_factory=DispatchConfig)
    clock: Clock = utcnow
    rng: random.Random = field(default_factory=random.Random)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    brokers: BrokerRegistry | None = None
    # Shared by every batch this dispatcher runs at once: children started per endpoint and
    # not yet answered, and the send slots (``config.concurrency``) of the running loop.
    _in_flight: dict[Endpoint, int] = field(default_factory=dict, init=False, repr=False)
    _sends: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = field(
        default=None, init=False, repr=False)

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many outbox rows were handled."""
        async def claim(uow: SqlUnitOfWork) -> Sequence[dict[str, Any]]:
            return await uow.outbox.claim_due(DISPATCH_TOPIC, self.clock(), self.config.batch,
                                              self.config.lease)
        try:
            # claimed in the transaction that starts the attempts: one transaction fewer
            rows, res = await self._deliver(claim)
            if res.deferred:
                async with self.uow_factory() as uow:
                    await uow.outbox.release_many(res.deferred)
                    await uow.commit()
        except Exception:  # the database went away mid-batch: the leases lapse, rows return
            log.exception("dispatch batch failed")
            return 0
        for row_id, error in res.failed.items():
            log.error("delivery failed unexpectedly", extra={"outbox_id": row_id,
                                                             "error": repr(error)})
        return len(rows)

    async def run_forever(self, poll_seconds: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # cleared before the claim, so a wake-up signalled while it runs is kept
            self.wakeup.clear()
            handled = await self.run_once()
            if self.brokers is not None:
                await confirm_fills(self.uow_factory, self.brokers, clock=self.clock)
            if handled:
                continue
            waiters = [asyncio.create_task(self.wakeup.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waiters, timeout=poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def deliver_leased(self, leases: Sequence[OutboxLease],
                             lease: timedelta) -> tuple[list[dict[str, Any]], BatchOutcome]:
        """Deliver the rows known by the leases their bus messages name: the transaction
        that starts the attempts first renews the leases that are still live
        (``OutboxRepository.take_many``), so taking a batch costs no transaction of its own.
        Returns the rows taken (the others were stale), with their new expiry, and the
        outcome."""
        async def take(uow: SqlUnitOfWork) -> Sequence[dict[str, Any]]:
            return await uow.outbox.take_many(leases, self.clock(), lease)
        return await self._deliver(take)

    async def _deliver(
        self, rows_of: Callable[[SqlUnitOfWork], Awaitable[Sequence[dict[str, Any]]]]
    ) -> tuple[list[dict[str, Any]], BatchOutcome]:
        """Deliver a batch with two transactions for the whole of it: one leases the rows
        (``rows_of``), starts every attempt (state ``sent``, an ``in_flight`` attempt row
        each); the sends run concurrently; one records every answer (attempts, states,
        outbox rows, one run of audit events). Sends that raise stay ``sent`` with their
        lease, so they go out again (as a lost attempt) once it lapses; a database error
        raises for the whole batch, with the same effect. Rows beyond an endpoint's share
        are not started: the caller hands them back (``deferred``)."""
        outcome = BatchOutcome()
        rows, prepared = await self._begin_batch(rows_of, outcome.deferred)
        if not prepared:
            return rows, outcome
        sem = self._send_slots()

        async def send(p: Prepared) -> SendResult:
            try:
                async with sem:
                    if p.gateway is not None:
                        assert p.broker_order is not None
                        return await submit_to_broker(p.gateway, p.broker_order, p.price)
                    return await self.sender.send(p.url, p.headers, p.body)
            finally:
                self._release_endpoints([p.endpoint])

        results = await asyncio.gather(*(send(p) for _, p in prepared),
                                       return_exceptions=True)
        answered: list[tuple[dict[str, Any], Prepared, SendResult]] = []
        for (row, p), res in zip(prepared, results, strict=True):
            if isinstance(res, asyncio.CancelledError):
                raise res
            if isinstance(res, Exception):
                outcome.failed[row["id"]] = res
            elif isinstance(res, BaseException):
                raise res
            else:
                answered.append((row, p, res))
        await self._finish_batch(answered)
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
        self, rows_of: Callable[[SqlUnitOfWork], Awaitable[Sequence[dict[str, Any]]]],
        deferred: list[int],
    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], Prepared]]]:
        admitted: dict[int, Endpoint] = {}
        out: list[tuple[dict[str, Any], Prepared]] = []
        try:
            rows = await self._start_attempts(rows_of, deferred, admitted, out)
        except BaseException:  # nothing of this batch will be sent
            self._release_endpoints(admitted.values())
            raise
        return rows, out

    async def _start_attempts(
        self, rows_of: Callable[[SqlUnitOfWork], Awaitable[Sequence[dict[str, Any]]]],
        deferred: list[int], admitted: dict[int, Endpoint],
        out: list[tuple[dict[str, Any], Prepared]],
    ) -> list[dict[str, Any]]:
        now = self.clock()
        budget = len(self.config.retry_schedule) + 1
        async with self.uow_factory() as uow:
            outbox_rows = list(await rows_of(uow))
            if not outbox_rows:
                return []
            children = await uow.child_orders.get_many_unscoped(
                r["payload"]["fo_id"] for r in outbox_rows)
            held = await uow.vaults.under_maintenance(c["vault_id"] for c in children.values())
            followers = await uow.followers.get_many_unscoped(
                c["follower_id"] for c in children.values())
            done: list[int] = []
            later: list[tuple[int, datetime]] = []
            to_send: dict[str, list[dict[str, Any]]] = {}
            for row in outbox_rows:
                child = children.get(row["payload"]["fo_id"])
                if child is None or child["state"] not in OPEN_CHILD_STATES:
                    done.append(row["id"])
                    continue
                if child["vault_id"] in held:
                    # held, not dropped: delivered once maintenance is lifted
                    later.append((row["id"], now + MAINTENANCE_RECHECK))
                    continue
                state = ChildOrderState(child["state"])
                follower = followers[child["follower_id"]]
                if state is not ChildOrderState.SENT and (follower["kill_switch"] or
                                                          follower["paused"]):
                    # A kill switch acts at once: what is still queued is withdrawn, not sent.
                    reason = "kill_switch" if follower["kill_switch"] else "paused"
                    await self._cancel(uow, row, child, state, reason, now)
                elif follower["webhook_disabled_at"] is not None:
                    # Parked, not lost: an operator redelivers once the endpoint is fixed.
                    error = f"endpoint disabled: {follower['webhook_disabled_reason']}"
                    await self._dead_letter(uow, row, child, state, error, now)
                elif state is ChildOrderState.SENT and child["dispatch_attempts"] >= budget:
                    # The worker died during the last attempt the budget allows.
                    await uow.attempts.mark_lost(child["fo_id"])
                    await self._dead_letter(uow, row, child, state,
                                            "the worker stopped during the last attempt", now)
                else:
                    if not follower["bridged_brokers"]:
                        key = endpoint_of(follower["webhook_url"])
                        if not self._admit(key):
                            deferred.append(row["id"])
                            continue
                        admitted[row["id"]] = key
                    if state is not ChildOrderState.SENT:
                        CHILD_ORDER_TABLE.check(state, ChildOrderState.SENT)
                    to_send.setdefault(state.value, []).append(row)
            await uow.outbox.complete_many(done, now)
            await uow.outbox.reschedule_many(later)
            moved: dict[str, int] = {}
            for expect, rows in to_send.items():
                ids = [r["payload"]["fo_id"] for r in rows]
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
            orders = await uow.manager_orders.get_many_unscoped(
                children[f]["mo_id"] for f in moved)
            await uow.commit()
        for rows in to_send.values():
            for row in rows:
                fo_id = row["payload"]["fo_id"]
                if fo_id not in moved:  # another worker moved it first
                    self._release_endpoints([admitted.pop(row["id"], None)])
                    continue
                child = children[fo_id]
                out.append((row, self._prepare(child, followers[child["follower_id"]],
                                               orders[child["mo_id"]], moved[fo_id], now,
                                               admitted.get(row["id"]))))
        return outbox_rows

    def _prepare(self, child: dict[str, Any], follower: dict[str, Any],
                 order: dict[str, Any], attempt_no: int, now: datetime,
                 endpoint: Endpoint | None) -> Prepared:
        if follower["bridged_brokers"]:
            if self.brokers is None:
                raise RuntimeError("a bridged follower needs a broker registry")
            return Prepared("", {}, b"", attempt_no, now, self.brokers.for_follower(follower),
                            broker_order(child, order), order["ref_price"], child=child)
        keys = [self.secrets.get(ref) for ref in signing_refs(follower, now)]
        body = dispatch_body(child=child, order=order, follower=follower, ts=iso(now),
                             attempt_no=attempt_no)
        headers = signature_headers(keys, child["fo_id"], int(now.timestamp()), body)
        return Prepared(follower["webhook_url"], headers, body, attempt_no, now,
                        endpoint=endpoint, child=child)

    def _next_state(self, attempt_no: int,
                    result: SendResult) -> tuple[ChildOrderState, float | None]:
        # A refused target (private address, bad URL) will not become acceptable by waiting.
        outcome = Outcome.FAILED if result.refused else classify(result.status)
        if outcome is not Outcome.RETRY:
            return ChildOrderState(outcome.value), None
        delay = retry_delay(attempt_no, self.config.retry_schedule,
                            jitter_fraction=self.config.jitter_fraction,
                            unit_random=self.rng.random(),
                            retry_after=parse_retry_after(result.retry_after))
        return (ChildOrderState.DLQ, None) if delay is None else (ChildOrderState.RETRY, delay)

    async def _finish_batch(
        self, answered: Sequence[tuple[dict[str, Any], Prepared, SendResult]]
    ) -> None:
        if not answered:
            return
        now = self.clock()
        decided: list[tuple[dict[str, Any], Prepared, SendResult, ChildOrderState,
                            float | None, str | None]] = []
        for row, p, result in answered:
            next_state, delay = self._next_state(p.attempt_no, result)
            CHILD_ORDER_TABLE.check(ChildOrderState.SENT, next_state)
            error = result.error or (None if next_state is ChildOrderState.ACK
                                     else f"HTTP {result.status}")
            decided.append((row, p, result, next_state, delay, error))
        async with self.uow_factory() as uow:
            await uow.attempts.settle_many([
                {"fo_id": row["payload"]["fo_id"], "attempt_no": p.attempt_no,
                 "started_at": p.started, "status_code": r.status, "latency_ms": r.latency_ms,
                 "response_excerpt": r.response_excerpt, "error": r.error,
                 "outcome": state.value} for row, p, r, state, _, _ in decided])
            # Children that share every new value move together in one compare-and-set.
            groups: dict[tuple[Any, ...], list[str]] = {}
            for row, _, r, state, _, error in decided:
                groups.setdefault((state, error, r.broker_ref), []).append(
                    row["payload"]["fo_id"])
            moved: set[str] = set()
            for (state, error, broker_ref), ids in groups.items():
                extra: dict[str, Any] = {"dead_lettered_at": now} \
                    if state is ChildOrderState.DLQ else {}
                if broker_ref is not None:
                    extra["broker_order_ref"] = broker_ref
                moved.update(await uow.child_orders.update_many(
                    ids, expect_state=ChildOrderState.SENT.value, state=state.value,
                    last_error=error, updated_at=now, **extra))
            # A child someone else already settled keeps its attempt row and nothing more.
            settled = [d for d in decided if d[0]["payload"]["fo_id"] in moved]
            children = {row["payload"]["fo_id"]: p.child for row, p, *_ in settled}
            for row, _, r, _, _, _ in settled:
                if r.status == 410:
                    await self._disable_endpoint(uow, children[row["payload"]["fo_id"]], now)
            await uow.outbox.reschedule_many([
                (row["id"], now + timedelta(seconds=delay))
                for row, _, _, state, delay, _ in settled
                if state is ChildOrderState.RETRY and delay is not None])
            await uow.outbox.complete_many(
                [row["id"] for row, _, _, state, _, _ in settled
                 if state is not ChildOrderState.RETRY], now)
            await uow.audit.append_many([
                {"entity": "follower_order", "entity_id": row["payload"]["fo_id"],
                 "action": f"dispatch:{state.value}", "actor": "dispatcher",
                 "tenant_id": children[row["payload"]["fo_id"]]["tenant_id"],
                 "payload": {"attempt": p.attempt_no, "status": r.status, "error": r.error,
                             "latency_ms": r.latency_ms, "retry_in_s": delay}}
                for row, p, r, state, delay, _ in settled])
            await self._complete_orders(uow, {
                children[row["payload"]["fo_id"]]["mo_id"]
                for row, _, _, state, _, _ in settled if state is not ChildOrderState.RETRY})
            await uow.commit()
        for row, p, r, state, _, error in settled:
            child = children[row["payload"]["fo_id"]]
            self._report(child, p.attempt_no, r, state, error, now)

    def _report(self, child: dict[str, Any], attempt_no: int, result: SendResult,
                state: ChildOrderState, error: str | None, now: datetime) -> None:
        metrics.record_attempt(state.value, result.latency_ms)
        if state is ChildOrderState.ACK:
            metrics.record_ack((now - child["created_at"]).total_seconds() * 1000)
        if state is ChildOrderState.DLQ:
            log.error("ALERT dead letter: retries exhausted",
                      extra={"fo_id": child["fo_id"], "follower_id": child["follower_id"],
                             "error": error, "queue": "mirror_dispatch_dlx"})
        log.info("delivery attempt", extra={"fo_id": child["fo_id"], "mo_id": child["mo_id"],
                                            "follower_id": child["follower_id"],
                                            "attempt": attempt_no, "status": result.status,
                                            "outcome": state.value})

    async def _dead_letter(self, uow: SqlUnitOfWork, outbox_row: dict[str, Any],
                           child: dict[str, Any], state: ChildOrderState, error: str,
                           now: Any) -> None:
        CHILD_ORDER_TABLE.check(state, ChildOrderState.DLQ)
        if await uow.child_orders.update(child["fo_id"], expect_state=state.value,
                                         state=ChildOrderState.DLQ.value, last_error=error,
                                         dead_lettered_at=now, updated_at=now):
            await uow.audit.append(entity="follower_order", entity_id=child["fo_id"],
                                   action="dispatch:dlq", actor="dispatcher",
                                   tenant_id=child["tenant_id"], payload={"error": error})
            await self._maybe_complete_order(uow, child["mo_id"])
            metrics.DEAD_LETTERS.inc()
        await uow.outbox.complete(outbox_row["id"], now)

    async def _disable_endpoint(self, uow: SqlUnitOfWork, child: dict[str, Any],
                                now: Any) -> None:
        """410 Gone: the receiver says the endpoint no longer exists; stop sending to it."""
        await uow.followers.update(child["tenant_id"], child["follower_id"],
                                   webhook_disabled_at=now,
                                   webhook_disabled_reason="410 Gone", updated_at=now)
        await uow.audit.append(entity="follower", entity_id=child["follower_id"],
                               action="webhook_disabled", actor="dispatcher",
                               tenant_id=child["tenant_id"],
                               payload={"reason": "410 Gone", "fo_id": child["fo_id"]})
        log.error("ALERT webhook endpoint disabled after 410 Gone",
                  extra={"follower_id": child["follower_id"]})

    async def _cancel(self, uow: SqlUnitOfWork, outbox_row: dict[str, Any],
                      child: dict[str, Any], state: ChildOrderState, reason: str,
                      now: Any) -> None:
        CHILD_ORDER_TABLE.check(state, ChildOrderState.CANCELLED)
        if await uow.child_orders.update(child["fo_id"], expect_state=state.value,
                                         state=ChildOrderState.CANCELLED.value,
                                         skip_reason=reason, updated_at=now):
            await uow.audit.append(entity="follower_order", entity_id=child["fo_id"],
                                   action="dispatch:cancelled", actor="dispatcher",
                                   tenant_id=child["tenant_id"], payload={"reason": reason})
            await self._maybe_complete_order(uow, child["mo_id"])
        await uow.outbox.complete(outbox_row["id"], now)

    async def _maybe_complete_order(self, uow: SqlUnitOfWork, mo_id: str) -> None:
        await self._complete_orders(uow, {mo_id})

    async def _complete_orders(self, uow: SqlUnitOfWork, mo_ids: set[str]) -> None:
        """Mark each of ``mo_ids`` completed once none of its children is still open."""
        still_open = await uow.child_orders.open_counts(mo_ids, OPEN_CHILD_STATES)
        for mo_id in sorted(mo_ids - still_open.keys()):
            await uow.manager_orders.set_state(mo_id, ManagerOrderState.COMPLETED.value)
