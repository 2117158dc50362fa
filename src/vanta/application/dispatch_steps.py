"""The pieces of a delivery the dispatcher composes: what one attempt carries, how a child
leaves the queue without an attempt (cancelled, dead-lettered), and the writes that settle a
batch's answers. Every function here works inside the caller's unit of work."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from vanta.application.alerts import alert_row, raise_alert
from vanta.application.bridged import broker_order
from vanta.application.clock import iso
from vanta.application.observability import attempt_settled, child_moved
from vanta.application.payloads import dispatch_body
from vanta.application.ports.brokers import BrokerGateway, BrokerGateways, BrokerOrder
from vanta.application.ports.delivery import OutboxLease, SendResult
from vanta.application.ports.journal import NO_JOURNAL, Journal
from vanta.application.ports.legs import LegRecord
from vanta.application.ports.metrics import Metrics
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_orders import (
    ChildOrderRecord,
    ManagerOrderRecord,
    OutboxRecord,
)
from vanta.application.ports.secrets import SecretReader
from vanta.application.ports.tracer import trace_id_of
from vanta.application.ports.uow import UnitOfWork, UowFactory
from vanta.domain.alerts import AlertKind
from vanta.domain.delivery import Outcome, classify, parse_retry_after, retry_delay
from vanta.domain.orders import CHILD_ORDER_TABLE, ChildOrderState, ManagerOrderState
from vanta.domain.webhook_signing import signature_headers

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
    legged: bool = False  # a bridged child executed by its legs (conversion, then asset)


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


async def release_leases(uow_factory: UowFactory, rows: Sequence[OutboxRecord],
                         ids: set[int]) -> None:
    """Hand back the leases of ``rows`` among ``ids`` that are still exactly as taken (never
    one that another batch took after it lapsed), so those rows are due again at once."""
    async with uow_factory() as uow:
        await uow.outbox.release_unclaimed([OutboxLease(r.id, r.attempts, r.locked_until)
                                            for r in rows if r.id in ids])
        await uow.commit()


def next_state_of(attempt_no: int, result: SendResult, schedule: Sequence[float],
                  jitter_fraction: float, unit_random: Callable[[], float]
                  ) -> tuple[ChildOrderState, float | None]:
    """The state an answered attempt moves its child to, and the retry delay (seconds)."""
    # A refused target (private address, bad URL) will not become acceptable by waiting.
    outcome = Outcome.FAILED if result.refused else classify(result.status)
    if outcome is not Outcome.RETRY:
        return ChildOrderState(outcome.value), None
    delay = retry_delay(attempt_no, schedule, jitter_fraction=jitter_fraction,
                        unit_random=unit_random(),  # drawn for retries only
                        retry_after=parse_retry_after(result.retry_after))
    return (ChildOrderState.DLQ, None) if delay is None else (ChildOrderState.RETRY, delay)


def collect_answers(done: Iterable[asyncio.Task[SendResult]],
                    tasks: Mapping[asyncio.Task[SendResult], tuple[OutboxRecord, Prepared]],
                    failed: dict[int, Exception]
                    ) -> list[tuple[OutboxRecord, Prepared, SendResult]]:
    """The answers of finished sends, in outbox order; a send that raised goes to
    ``failed`` (its lease lapses and it goes again as a lost attempt)."""
    answered: list[tuple[OutboxRecord, Prepared, SendResult]] = []
    for t in done:
        row, p = tasks[t]
        if t.cancelled():
            raise asyncio.CancelledError
        error = t.exception()
        if isinstance(error, Exception):
            failed[row.id] = error
        elif error is not None:
            raise error
        else:
            answered.append((row, p, t.result()))
    return sorted(answered, key=lambda a: a[0].id)


def _fo_id(outbox_row: OutboxRecord) -> str:
    return str(outbox_row.payload["fo_id"])


def report(metrics: Metrics, settled: Sequence[Decided],
           children: Mapping[str, ChildOrderRecord], now: datetime,
           journal: Journal = NO_JOURNAL) -> None:
    """Metrics and journal lines of a batch's settled attempts, and one log line for the
    whole batch: a log line per delivery cost more CPU than the HTTP request (each
    attempt's detail is in its attempt row and, buffered, in the dispatch journal)."""
    outcomes: dict[str, int] = {}
    for row, p, result, state, delay, error in settled:
        child = children[_fo_id(row)]
        metrics.record_attempt(state.value, result.latency_ms, child.vault_id,
                               child.follower_id)
        attempt_settled(journal, child, p.attempt_no, result, state.value, error, now, delay,
                        p.traceparent)
        outcomes[state.value] = outcomes.get(state.value, 0) + 1
        if state is ChildOrderState.ACK:
            metrics.record_ack((now - child.created_at).total_seconds() * 1000)
        elif state is ChildOrderState.DLQ:
            log.error("ALERT dead letter: retries exhausted",
                      extra={"fo_id": child.fo_id, "mo_id": child.mo_id,
                             "follower_id": child.follower_id,
                             "trace_id": trace_id_of(p.traceparent),
                             "error": error, "queue": "mirror_dispatch_dlx"})
    if settled:
        log.info("delivery batch", extra={"attempts": len(settled), "outcomes": outcomes,
                                          "mo_ids": sorted({children[_fo_id(d[0])].mo_id
                                                            for d in settled})})


def prepare_attempt(brokers: BrokerGateways | None, secrets: SecretReader,
                    child: ChildOrderRecord, follower: FollowerRecord,
                    order: ManagerOrderRecord, attempt_no: int, now: datetime,
                    endpoint: Endpoint | None, legs: Sequence[LegRecord] = ()) -> Prepared:
    """A bridged child goes to the follower's broker (by its legs, when it has any); any
    other child is a signed webhook whose body carries its legs."""
    if follower.bridged_brokers:
        if brokers is None:
            raise RuntimeError("a bridged follower needs a broker registry")
        return Prepared("", {}, b"", attempt_no, now, brokers.for_follower(follower),
                        broker_order(child, order), order.ref_price, child=child,
                        legged=bool(legs))
    keys = [secrets.get(ref) for ref in signing_refs(follower, now)]
    body = dispatch_body(child=child, order=order, follower=follower, ts=iso(now),
                         attempt_no=attempt_no, legs=[g.leg() for g in legs])
    headers = signature_headers(keys, child.fo_id, int(now.timestamp()), body)
    return Prepared(follower.webhook_url or "", headers, body, attempt_no, now,
                    endpoint=endpoint, child=child)
