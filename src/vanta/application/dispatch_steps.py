"""The pieces of a delivery the dispatcher composes: what one attempt carries, how a child
leaves the queue without an attempt (cancelled, dead-lettered), and the writes that settle a
batch's answers. Every function here works inside the caller's unit of work."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from vanta.application.alerts import alert_row, raise_alert
from vanta.application.observability import attempt_settled, child_moved
from vanta.application.ports.brokers import BrokerGateway, BrokerOrder
from vanta.application.ports.delivery import SendResult
from vanta.application.ports.journal import NO_JOURNAL, Journal
from vanta.application.ports.metrics import Metrics
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_orders import ChildOrderRecord, OutboxRecord
from vanta.application.ports.tracer import trace_id_of
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.alerts import AlertKind
from vanta.domain.orders import CHILD_ORDER_TABLE, ChildOrderState, ManagerOrderState

log = logging.getLogger("vanta.dispatch")
Endpoint = tuple[str, str, int | None]  # scheme, host, port
OPEN_CHILD_STATES = (ChildOrderState.PENDING.value, ChildOrderState.SENT.value,
                     ChildOrderState.RETRY.value)
MAINTENANCE_RECHECK = timedelta(seconds=1)
Row = dict[str, Any]


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
    child: ChildOrderRecord | None = None
    traceparent: str | None = None  # the order's trace, when tracing is on


# One answered attempt with what it decided: the outbox row, the attempt, the answer, the
# child's next state, the retry delay (seconds) and the error recorded.
Decided = tuple[OutboxRecord, Prepared, SendResult, ChildOrderState, float | None, str | None]


def signing_refs(follower: FollowerRecord, now: datetime) -> list[str]:
    """The current key, plus every previous key whose overlap window is still open."""
    if follower.hmac_key_ref is None:  # never sent unsigned
        raise ValueError(f"follower {follower.follower_id} has no signing key")
    refs = [follower.hmac_key_ref]
    for k in follower.webhook_keys or []:
        until = k.get("not_after")
        if until is None or datetime.fromisoformat(until) > now:
            refs.append(k["ref"])
    return refs


@functools.lru_cache(maxsize=4096)
def endpoint_of(url: str) -> Endpoint:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


async def dead_letter(uow: UnitOfWork, outbox_row: OutboxRecord, child: ChildOrderRecord,
                      state: ChildOrderState,
                      error: str, now: datetime, metrics: Metrics,
                      journal: Journal = NO_JOURNAL) -> None:
    CHILD_ORDER_TABLE.check(state, ChildOrderState.DLQ)
    if await uow.child_orders.update(child.fo_id, expect_state=state.value,
                                     state=ChildOrderState.DLQ.value, last_error=error,
                                     dead_lettered_at=now, updated_at=now):
        child_moved(journal, child, state.value, ChildOrderState.DLQ.value, error=error)
        await uow.audit.append(entity="follower_order", entity_id=child.fo_id,
                               action="dispatch:dlq", actor="dispatcher",
                               tenant_id=child.tenant_id, payload={"error": error})
        await uow.alerts.add_many([dead_letter_alert(child, error, now)])
        await complete_orders(uow, {child.mo_id})
        metrics.record_dead_letter()
    await uow.outbox.complete(outbox_row.id, now)


async def cancel(uow: UnitOfWork, outbox_row: OutboxRecord, child: ChildOrderRecord,
                 state: ChildOrderState,
                 reason: str, now: datetime, journal: Journal = NO_JOURNAL) -> None:
    CHILD_ORDER_TABLE.check(state, ChildOrderState.CANCELLED)
    if await uow.child_orders.update(child.fo_id, expect_state=state.value,
                                     state=ChildOrderState.CANCELLED.value,
                                     skip_reason=reason, updated_at=now):
        child_moved(journal, child, state.value, ChildOrderState.CANCELLED.value,
                    reason=reason)
        await uow.audit.append(entity="follower_order", entity_id=child.fo_id,
                               action="dispatch:cancelled", actor="dispatcher",
                               tenant_id=child.tenant_id, payload={"reason": reason})
        await complete_orders(uow, {child.mo_id})
    await uow.outbox.complete(outbox_row.id, now)


async def disable_endpoint(uow: UnitOfWork, child: ChildOrderRecord, now: datetime) -> None:
    """410 Gone: the receiver says the endpoint no longer exists; stop sending to it."""
    await uow.followers.update(child.tenant_id, child.follower_id,
                               webhook_disabled_at=now,
                               webhook_disabled_reason="410 Gone", updated_at=now)
    await uow.audit.append(entity="follower", entity_id=child.follower_id,
                           action="webhook_disabled", actor="dispatcher",
                           tenant_id=child.tenant_id,
                           payload={"reason": "410 Gone", "fo_id": child.fo_id})
    await raise_alert(uow, tenant_id=child.tenant_id, kind=AlertKind.ENDPOINT_DISABLED,
                      subject=child.follower_id, now=now,
                      detail={"follower_id": child.follower_id, "vault_id": child.vault_id,
                              "fo_id": child.fo_id, "reason": "410 Gone"})
    log.error("ALERT webhook endpoint disabled after 410 Gone",
              extra={"follower_id": child.follower_id})


def dead_letter_alert(child: ChildOrderRecord, error: str | None,
                      now: datetime) -> dict[str, Any]:
    """The operators' alert (queued here, sent later by the scheduler); its subject is the
    follower, so within the dedupe window an endpoint outage is one alert, not one a child."""
    return alert_row(tenant_id=child.tenant_id, kind=AlertKind.DEAD_LETTER,
                     subject=child.follower_id, now=now,
                     detail={"fo_id": child.fo_id, "mo_id": child.mo_id,
                             "follower_id": child.follower_id, "vault_id": child.vault_id,
                             "error": error, "queue": "mirror_dispatch_dlx"})


async def complete_orders(uow: UnitOfWork, mo_ids: set[str]) -> None:
    """Mark each of ``mo_ids`` completed once none of its children is still open."""
    still_open = await uow.child_orders.open_counts(mo_ids, OPEN_CHILD_STATES)
    for mo_id in sorted(mo_ids - still_open.keys()):
        await uow.manager_orders.set_state(mo_id, ManagerOrderState.COMPLETED.value)


async def record_answers(uow: UnitOfWork, decided: list[Decided],
                         now: datetime) -> tuple[list[Decided], dict[str, ChildOrderRecord]]:
    """Write a batch's answers: attempt rows, child states (one compare-and-set per group of
    children sharing every new value), endpoint disables, outbox rows, audit events and
    finished orders. Returns the answers that moved their child, with those children."""
    fo = _fo_id
    await uow.attempts.settle_many([
        {"fo_id": fo(row), "attempt_no": p.attempt_no, "started_at": p.started,
         "status_code": r.status, "latency_ms": r.latency_ms,
         "response_excerpt": r.response_excerpt, "error": r.error, "outcome": state.value}
        for row, p, r, state, _, _ in decided])
    groups: dict[tuple[Any, ...], list[str]] = {}
    for row, _, r, state, _, error in decided:
        groups.setdefault((state, error, r.broker_ref), []).append(fo(row))
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
    settled = [d for d in decided if fo(d[0]) in moved]
    children: dict[str, ChildOrderRecord] = {}
    for row, p, *_ in settled:
        assert p.child is not None  # the dispatcher prepares every attempt with its child
        children[fo(row)] = p.child
    for row, _, r, _, _, _ in settled:
        if r.status == 410:
            await disable_endpoint(uow, children[fo(row)], now)
    # one statement for a batch's dead letters (an outage can dead-letter a whole batch)
    await uow.alerts.add_many([dead_letter_alert(children[fo(row)], error, now)
                               for row, _, _, state, _, error in settled
                               if state is ChildOrderState.DLQ])
    await uow.outbox.reschedule_many([
        (row.id, now + timedelta(seconds=delay)) for row, _, _, state, delay, _ in settled
        if state is ChildOrderState.RETRY and delay is not None])
    await uow.outbox.complete_many([row.id for row, _, _, state, _, _ in settled
                                    if state is not ChildOrderState.RETRY], now)
    await uow.audit.append_many([
        {"entity": "follower_order", "entity_id": fo(row), "action": f"dispatch:{state.value}",
         "actor": "dispatcher", "tenant_id": children[fo(row)].tenant_id,
         "payload": {"attempt": p.attempt_no, "status": r.status, "error": r.error,
                     "latency_ms": r.latency_ms, "retry_in_s": delay}}
        for row, p, r, state, delay, _ in settled])
    await complete_orders(uow, {children[fo(row)].mo_id for row, _, _, state, _, _ in settled
                                if state is not ChildOrderState.RETRY})
    return settled, children


def _fo_id(outbox_row: OutboxRecord) -> str:
    return str(outbox_row.payload["fo_id"])


def report(metrics: Metrics, child: ChildOrderRecord, attempt_no: int, result: SendResult,
           state: ChildOrderState, error: str | None, now: datetime,
           journal: Journal = NO_JOURNAL, delay: float | None = None,
           traceparent: str | None = None) -> None:
    """Metrics and logs of one settled attempt."""
    metrics.record_attempt(state.value, result.latency_ms, child.vault_id, child.follower_id)
    attempt_settled(journal, child, attempt_no, result, state.value, error, now, delay,
                    traceparent)
    if state is ChildOrderState.ACK:
        metrics.record_ack((now - child.created_at).total_seconds() * 1000)
    trace_id = trace_id_of(traceparent)
    if state is ChildOrderState.DLQ:
        log.error("ALERT dead letter: retries exhausted",
                  extra={"fo_id": child.fo_id, "mo_id": child.mo_id,
                         "follower_id": child.follower_id, "trace_id": trace_id,
                         "error": error, "queue": "mirror_dispatch_dlx"})
    log.info("delivery attempt", extra={"fo_id": child.fo_id, "mo_id": child.mo_id,
                                        "follower_id": child.follower_id,
                                        "trace_id": trace_id,
                                        "attempt": attempt_no, "status": result.status,
                                        "outcome": state.value})
