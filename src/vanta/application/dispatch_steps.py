"""The pieces of a delivery the dispatcher composes: what one attempt carries, how a child
leaves the queue without an attempt (cancelled, dead-lettered), and the writes that settle a
batch's answers. Every function here works inside the caller's unit of work."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from vanta.application.alerts import alert_row, raise_alert
from vanta.application.bridged import broker_order
from vanta.application.clock import iso
from vanta.application.observability import attempt_settled, child_moved
from vanta.application.payloads import OrderPart, attempt_body
from vanta.application.ports.brokers import BrokerGateway, BrokerGateways, BrokerOrder
from vanta.application.ports.delivery import ChildMove, OutboxLease, SendResult
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
    # A webhook whose body and signature are made at send time, so the timestamp is fresh:
    # the child's stored body (see ``payloads.attempt_body``) and the signing keys.
    template: bytes | None = None
    keys: tuple[bytes, ...] = ()
    legged: bool = False  # a bridged child executed by its legs (conversion, then asset)


@dataclass
class BatchOutcome:
    """What a batch could not settle: sends that raised (lost attempts once their lease
    lapses) and rows deferred to the next batch (an endpoint was full)."""

    failed: dict[int, Exception] = field(default_factory=dict)
    deferred: list[int] = field(default_factory=list)


def signed_at(p: Prepared, now: datetime) -> tuple[dict[str, str], bytes]:
    """A webhook attempt's headers and body as sent at ``now``: the stored body with the
    attempt's fields, signed with the send's own timestamp."""
    assert p.template is not None and p.child is not None
    body = attempt_body(p.template, ts=iso(now), attempt_no=p.attempt_no,
                        last_error=p.child.last_error)
    headers = signature_headers(p.keys, p.child.fo_id, int(now.timestamp()), body)
    return {**headers, **p.headers}, body


def needs_order(to_send: Mapping[str, list[OutboxRecord]],
                followers: Mapping[str, FollowerRecord],
                children: Mapping[str, ChildOrderRecord],
                moved: Mapping[str, int]) -> Iterator[str]:
    """The children starting an attempt whose manager order must be read: those whose
    outbox row has no stored body, and every bridged one (its broker order)."""
    for rows in to_send.values():
        for row in rows:
            fo_id = row.payload["fo_id"]
            if fo_id in moved and ("body" not in row.payload
                                   or followers[children[fo_id].follower_id].bridged_brokers):
                yield fo_id


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
    still_open = await uow.child_orders.with_open_children(mo_ids, OPEN_CHILD_STATES)
    for mo_id in sorted(mo_ids - still_open):
        await uow.manager_orders.set_state(mo_id, ManagerOrderState.COMPLETED.value)


async def record_answers_while_leased(uow_factory: UowFactory, decided: list[Decided],
                                      now: datetime, *, max_pause_s: float = 1.0
                                      ) -> tuple[list[Decided], dict[str, ChildOrderRecord]]:
    """:func:`record_answers` in its own transaction, retried while the database is away
    (a primary failing over) for as long as this worker still holds the rows' leases.

    The sends have happened: giving up at once would leave the children ``sent`` until
    their leases lapse and send them a second time. While the lease holds no other worker
    sends them, so recording late is still recording once. A retry after a commit whose
    answer was lost finds the children settled (the update expects ``sent``) and writes
    nothing twice."""
    leases = [d[0].locked_until for d in decided if d[0].locked_until is not None]
    budget = ((min(leases) if leases else now) - now).total_seconds()
    started = time.monotonic()
    pause = 0.05
    while True:
        try:
            async with uow_factory() as uow:
                out = await record_answers(uow, decided, now)
                await uow.commit()
            return out
        except Exception as e:
            left = budget - (time.monotonic() - started)
            if left <= pause:
                raise
            log.warning("could not record answers; retrying while the leases hold",
                        extra={"error": repr(e), "left_s": round(left, 2)})
        await asyncio.sleep(pause)
        pause = min(pause * 2, max_pause_s)


async def record_answers(uow: UnitOfWork, decided: list[Decided],
                         now: datetime) -> tuple[list[Decided], dict[str, ChildOrderRecord]]:
    """Write a batch's answers: attempt rows, child states (one compare-and-set for the
    batch, each child to its own state), endpoint disables, outbox rows, audit events and
    finished orders. Returns the answers that moved their child, with those children."""
    fo = _fo_id
    await uow.attempts.settle_many([
        {"fo_id": fo(row), "attempt_no": p.attempt_no, "started_at": p.started,
         "status_code": r.status, "latency_ms": r.latency_ms,
         "response_excerpt": r.response_excerpt, "error": r.error, "outcome": state.value}
        for row, p, r, state, _, _ in decided])
    moved = await uow.child_orders.move_many(
        [ChildMove(fo(row), state.value, error, r.broker_ref,
                   now if state is ChildOrderState.DLQ else None)
         for row, _, r, state, _, error in decided],
        expect_state=ChildOrderState.SENT.value, updated_at=now)
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
    # one chained event per batch (per tenant in it) with a Merkle root over the children's
    # records: the chain's cost is paid per batch, each record stays provable on its own
    await uow.audit.append_batch([
        {"entity": "follower_order", "entity_id": fo(row), "action": f"dispatch:{state.value}",
         "tenant_id": children[fo(row)].tenant_id,
         "payload": {"attempt": p.attempt_no, "status": r.status, "error": r.error,
                     "latency_ms": r.latency_ms, "retry_in_s": delay}}
        for row, p, r, state, delay, _ in settled], actor="dispatcher")
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
                    order: ManagerOrderRecord | None, attempt_no: int, now: datetime,
                    endpoint: Endpoint | None, stored: str | None,
                    legs: Sequence[LegRecord] = ()) -> Prepared:
    """A bridged child goes to the follower's broker (by its legs, when it has any); any
    other child is a webhook signed at send time, whose body carries its legs."""
    if follower.bridged_brokers:
        if brokers is None:
            raise RuntimeError("a bridged follower needs a broker registry")
        assert order is not None  # read for every bridged child (needs_order)
        return Prepared("", {}, b"", attempt_no, now, brokers.for_follower(follower),
                        broker_order(child, order), order.ref_price, child=child,
                        legged=bool(legs))
    keys = tuple(secrets.get(ref) for ref in signing_refs(follower, now))
    if stored is None:  # its order was read (needs_order): rendered here, once
        assert order is not None
        stored = OrderPart(order).body(child, follower, child.vault_id,
                                       [g.leg() for g in legs]).decode()
    return Prepared(follower.webhook_url or "", {}, b"", attempt_no, now,
                    endpoint=endpoint, child=child, template=stored.encode(), keys=keys)
