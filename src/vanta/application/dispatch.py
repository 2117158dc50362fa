"""Delivering child orders: lease an outbox row, sign, POST, record the attempt, move state."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from vanta.adapters import metrics
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

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many outbox rows were handled."""
        async with self.uow_factory() as uow:
            rows = await uow.outbox.claim_due(DISPATCH_TOPIC, self.clock(), self.config.batch,
                                              self.config.lease)
            await uow.commit()
        if not rows:
            return 0
        sem = asyncio.Semaphore(self.config.concurrency)

        async def one(row: dict[str, Any]) -> None:
            async with sem:
                try:
                    await self.deliver(row)
                except Exception:  # one bad row must not stop the others; its lease lapses
                    log.exception("delivery failed unexpectedly", extra={"outbox_id": row["id"]})

        await asyncio.gather(*(one(r) for r in rows))
        return len(rows)

    async def run_forever(self, poll_seconds: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            handled = await self.run_once()
            if self.brokers is not None:
                await confirm_fills(self.uow_factory, self.brokers, clock=self.clock)
            if handled:
                continue
            self.wakeup.clear()
            waiters = [asyncio.create_task(self.wakeup.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waiters, timeout=poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def deliver(self, outbox_row: dict[str, Any]) -> None:
        fo_id = outbox_row["payload"]["fo_id"]
        prepared = await self._begin_attempt(outbox_row, fo_id)
        if prepared is None:
            return
        if prepared.gateway is not None:
            assert prepared.broker_order is not None
            result = await submit_to_broker(prepared.gateway, prepared.broker_order,
                                            prepared.price)
        else:
            result = await self.sender.send(prepared.url, prepared.headers, prepared.body)
        await self._finish_attempt(outbox_row, fo_id, prepared.attempt_no, prepared.started,
                                   result)

    async def _begin_attempt(
        self, outbox_row: dict[str, Any], fo_id: str
    ) -> Prepared | None:
        now = self.clock()
        async with self.uow_factory() as uow:
            child = await uow.child_orders.get_unscoped(fo_id)
            if child is None or ChildOrderState(child["state"]) not in (
                ChildOrderState.PENDING, ChildOrderState.SENT, ChildOrderState.RETRY
            ):
                await uow.outbox.complete(outbox_row["id"], now)
                await uow.commit()
                return None
            if await uow.vaults.maintenance_of(child["vault_id"]):
                # held, not dropped: delivered once maintenance is lifted
                await uow.outbox.reschedule(outbox_row["id"], now + MAINTENANCE_RECHECK)
                await uow.commit()
                return None
            state = ChildOrderState(child["state"])
            follower = await uow.followers.get_unscoped(child["follower_id"])
            assert follower is not None
            if state is not ChildOrderState.SENT and (follower["kill_switch"] or
                                                      follower["paused"]):
                # A kill switch acts at once: what is still queued is withdrawn, not sent.
                reason = "kill_switch" if follower["kill_switch"] else "paused"
                await self._cancel(uow, outbox_row, child, state, reason, now)
                await uow.commit()
                return None
            if follower["webhook_disabled_at"] is not None:
                # Parked, not lost: an operator redelivers once the endpoint is fixed.
                error = f"endpoint disabled: {follower['webhook_disabled_reason']}"
                await self._dead_letter(uow, outbox_row, child, state, error, now)
                await uow.commit()
                return None
            attempt_no = int(child["dispatch_attempts"]) + 1
            if state is ChildOrderState.SENT:
                # The worker that leased this child died mid-attempt. Send again with the
                # same webhook-id (the receiver de-duplicates), within the same budget.
                await uow.attempts.mark_lost(fo_id)
                if attempt_no > len(self.config.retry_schedule) + 1:
                    await self._dead_letter(uow, outbox_row, child, state,
                                            "the worker stopped during the last attempt", now)
                    await uow.commit()
                    return None
            else:
                CHILD_ORDER_TABLE.check(state, ChildOrderState.SENT)
            ok = await uow.child_orders.update(fo_id, expect_state=state.value,
                                               state=ChildOrderState.SENT.value,
                                               dispatch_attempts=attempt_no, updated_at=now)
            if not ok:
                await uow.rollback()
                return None
            # Logged before sending, so an attempt lost with its worker is still visible.
            await uow.attempts.add({"fo_id": fo_id, "attempt_no": attempt_no,
                                    "started_at": now, "status_code": None, "latency_ms": 0,
                                    "response_excerpt": None, "error": None,
                                    "outcome": "in_flight"})
            order = await uow.manager_orders.get_unscoped(child["mo_id"])
            assert order is not None
            await uow.commit()
        if follower["bridged_brokers"]:
            if self.brokers is None:
                raise RuntimeError("a bridged follower needs a broker registry")
            return Prepared("", {}, b"", attempt_no, now,
                            self.brokers.for_follower(follower), broker_order(child, order),
                            order["ref_price"])
        keys = [self.secrets.get(ref) for ref in signing_refs(follower, now)]
        body = dispatch_body(child=child, order=order, follower=follower, ts=iso(now),
                             attempt_no=attempt_no)
        headers = signature_headers(keys, fo_id, int(now.timestamp()), body)
        return Prepared(follower["webhook_url"], headers, body, attempt_no, now)

    async def _finish_attempt(self, outbox_row: dict[str, Any], fo_id: str, attempt_no: int,
                              started: Any, result: SendResult) -> None:
        # A refused target (private address, bad URL) will not become acceptable by waiting.
        outcome = Outcome.FAILED if result.refused else classify(result.status)
        now = self.clock()
        error = result.error or (None if outcome is Outcome.ACK else f"HTTP {result.status}")
        next_state = ChildOrderState(outcome.value)
        delay: float | None = None
        if outcome is Outcome.RETRY:
            delay = retry_delay(attempt_no, self.config.retry_schedule,
                                jitter_fraction=self.config.jitter_fraction,
                                unit_random=self.rng.random(),
                                retry_after=parse_retry_after(result.retry_after))
            if delay is None:
                next_state = ChildOrderState.DLQ
        CHILD_ORDER_TABLE.check(ChildOrderState.SENT, next_state)
        async with self.uow_factory() as uow:
            child = await uow.child_orders.get_unscoped(fo_id)
            assert child is not None
            outcome = {"status_code": result.status, "latency_ms": result.latency_ms,
                       "response_excerpt": result.response_excerpt, "error": result.error,
                       "outcome": next_state.value}
            if not await uow.attempts.settle(fo_id, attempt_no, **outcome):
                await uow.attempts.add({"fo_id": fo_id, "attempt_no": attempt_no,
                                        "started_at": started, **outcome})
            extra: dict[str, Any] = {"dead_lettered_at": now} \
                if next_state is ChildOrderState.DLQ else {}
            if result.broker_ref is not None:
                extra["broker_order_ref"] = result.broker_ref
            moved = await uow.child_orders.update(
                fo_id, expect_state=ChildOrderState.SENT.value, state=next_state.value,
                last_error=error, updated_at=now, **extra)
            if not moved:
                await uow.commit()  # keep the attempt row; someone else already settled it
                return
            if result.status == 410:
                await self._disable_endpoint(uow, child, now)
            if next_state is ChildOrderState.RETRY:
                assert delay is not None
                await uow.outbox.reschedule(outbox_row["id"], now + timedelta(seconds=delay))
            else:
                await uow.outbox.complete(outbox_row["id"], now)
            await uow.audit.append(
                entity="follower_order", entity_id=fo_id, action=f"dispatch:{next_state.value}",
                actor="dispatcher", tenant_id=child["tenant_id"],
                payload={"attempt": attempt_no, "status": result.status, "error": result.error,
                         "latency_ms": result.latency_ms, "retry_in_s": delay})
            if next_state is not ChildOrderState.RETRY:
                await self._maybe_complete_order(uow, child["mo_id"])
            await uow.commit()
        metrics.record_attempt(next_state.value, result.latency_ms)
        if next_state is ChildOrderState.ACK:
            metrics.record_ack((now - child["created_at"]).total_seconds() * 1000)
        if next_state is ChildOrderState.DLQ:
            log.error("ALERT dead letter: retries exhausted",
                      extra={"fo_id": fo_id, "follower_id": child["follower_id"],
                             "error": error, "queue": "mirror_dispatch_dlx"})
        log.info("delivery attempt", extra={"fo_id": fo_id, "mo_id": child["mo_id"],
                                            "follower_id": child["follower_id"],
                                            "attempt": attempt_no, "status": result.status,
                                            "outcome": next_state.value})

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
        if await uow.child_orders.open_count(mo_id, OPEN_CHILD_STATES) == 0:
            await uow.manager_orders.set_state(mo_id, ManagerOrderState.COMPLETED.value)
