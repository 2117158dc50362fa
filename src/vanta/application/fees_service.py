"""Performance fees per follower: cash flows, closing periods, the P&L-vs-fees ledger.

Closing a period (``close_fee_period``)
--------------------------------------
The follower's NAV observations (``nav_observations``, entity ``follower``) and flows
(``follower_flows``) after the last closed period's end and up to ``end`` are replayed
through ``vanta.domain.fees.close_period``:

* the state carried in is the last ledger row's ``(nav_end, hwm_after)``, so the high-water
  mark crosses periods; a follower's first period opens at its first NAV observation
  (``FeeState.open``: mark = that NAV) and flows before it are taken as already in it;
* events are ordered by time; at one instant flows come before observations (an observation
  is the account value after the flows of its instant);
* the result is stored as one ``fee_ledger`` row, unique per follower and label. Closing the
  same label again returns the stored row (201 the first time, 200 after); the same label
  with another ``rate`` or ``end`` is ``409 period_label_conflict``. ``end`` must be after the
  last closed period's end (``409 period_out_of_order``) and not in the future.

Invoicing (``vanta.application.fee_invoicing``): when the fee is > 0 it is invoiced through
the tenant's subscription provider, Stripe (to its customer) or BTCPay (an invoice for the
fee), under the key ``fee:<tenant>:<follower>:<label>``, *after* the ledger row is committed,
and the invoice reference is stored on the row. If the provider fails, the row stays without
an invoice and closing the same label again retries with the same key, so the provider still
creates one invoice. Fees are in USD (NAVs are USD) and billed to the tenant,
the account holder; Vanta never holds follower money.

Flows may not be back-dated into a closed period (``409 period_closed``): that would change a
result already billed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from vanta.application.clock import Clock, iso, utcnow
from vanta.application.fee_invoicing import FeeInvoicers, issue_fee_invoice
from vanta.application.ports.billing import (
    BillingConflict,
    BillingUnitOfWork,
    FeeLedger,
    StripeBilling,
)
from vanta.application.ports.records_billing import FeePeriodRecord, FlowRecord
from vanta.domain.errors import Conflict, NotFound, ValidationFailed
from vanta.domain.fees import (
    CENT,
    Deposit,
    FeeEvent,
    FeeState,
    NavObservation,
    PeriodResult,
    Withdrawal,
    close_period,
    fee_ledger_rows,
    parse_fee_rate,
)
from vanta.domain.money import ZERO, normalize

UowFactory = Callable[[], BillingUnitOfWork]

FLOW_KINDS: Final = ("deposit", "withdrawal")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$")
_MAX_KEY = 240


def _d(value: Decimal | None) -> str | None:
    return None if value is None else str(normalize(Decimal(value)))


def _parse_time(value: object, field: str, now: datetime, *, required: bool) -> datetime:
    if value is None:
        if required:
            raise ValidationFailed(f"{field} is required", code="missing_field", field=field)
        return now
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be an ISO 8601 timestamp",
                               code=f"invalid_{field}", field=field)
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{field} must be an ISO 8601 timestamp",
                               code=f"invalid_{field}", field=field) from None
    if ts.tzinfo is None:
        raise ValidationFailed(f"{field} needs a timezone", code=f"invalid_{field}",
                               field=field)
    try:
        ts = ts.astimezone(UTC)  # stored as UTC on every backend
    except OverflowError:
        raise ValidationFailed(f"{field} is out of range", code=f"invalid_{field}",
                               field=field) from None
    if ts > now:
        raise ValidationFailed(f"{field} may not be in the future", code=f"invalid_{field}",
                               field=field)
    return ts


def _only(raw: object, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    return raw


def flow_json(row: FlowRecord) -> dict[str, Any]:
    return {"id": row.id, "follower_id": row.follower_id, "kind": row.kind,
            "amount": _d(row.amount), "at": iso(row.at)}


async def record_flow(uow: BillingUnitOfWork, *, tenant_id: str, follower_id: str, raw: object,
                      actor: str, clock: Clock = utcnow) -> dict[str, Any]:
    body = _only(raw, {"kind", "amount", "at"})
    kind = body.get("kind")
    if kind not in FLOW_KINDS:
        raise ValidationFailed("kind must be deposit or withdrawal", code="invalid_flow_kind",
                               field="kind")
    if body.get("amount") is None:
        raise ValidationFailed("amount is required", code="missing_field", field="amount")
    now = clock()
    at = _parse_time(body.get("at"), "at", now, required=False)
    flow = Deposit(at, body["amount"]) if kind == "deposit" else Withdrawal(at, body["amount"])
    async with uow:
        if await uow.followers.get(tenant_id, follower_id) is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        last = await uow.fee_ledger.last(tenant_id, follower_id)
        if last is not None and at <= last.period_end:
            raise Conflict(f"period {last.period_label} is closed up to "
                           f"{iso(last.period_end)}; record the flow in the open period",
                           code="period_closed")
        row = {"tenant_id": tenant_id, "follower_id": follower_id, "kind": kind,
               "amount": flow.amount, "at": at}
        row_id = await uow.flows.add(row)
        await uow.audit.append(entity="follower", entity_id=follower_id, action="flow_recorded",
                               actor=actor, tenant_id=tenant_id,
                               payload={"kind": kind, "amount": _d(flow.amount),
                                        "at": iso(at), "flow_id": row_id})
        await uow.commit()
    return flow_json(FlowRecord.from_row({**row, "id": row_id}))


def _parse_close(raw: object, now: datetime) -> tuple[str, Decimal, datetime]:
    body = _only(raw, {"label", "rate", "end"})
    label = body.get("label")
    if not isinstance(label, str) or not _LABEL.match(label):
        raise ValidationFailed("label must be 1-64 characters: letters, digits and . _ : / -",
                               code="invalid_label", field="label")
    if body.get("rate") is None:
        raise ValidationFailed("rate is required", code="missing_field", field="rate")
    rate = parse_fee_rate(body["rate"])
    end = _parse_time(body.get("end"), "end", now, required=True)
    return label, rate, end


def fee_idempotency_key(tenant_id: str, follower_id: str, label: str) -> str:
    key = f"fee:{tenant_id}:{follower_id}:{label}"
    if len(key) > _MAX_KEY:
        key = "fee:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _events(navs: list[tuple[datetime, Decimal]], flows: Sequence[FlowRecord]
            ) -> list[FeeEvent]:
    keyed: list[tuple[datetime, int, int, FeeEvent]] = []
    for i, f in enumerate(flows):
        ev: FeeEvent = Deposit(f.at, f.amount) if f.kind == "deposit" \
            else Withdrawal(f.at, f.amount)
        keyed.append((f.at, 0, i, ev))
    for i, (at, nav) in enumerate(navs):
        keyed.append((at, 1, i, NavObservation(at, nav)))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]


def ledger_row_json(row: FeePeriodRecord) -> dict[str, Any]:
    fee = row.fee
    return {
        "follower_id": row.follower_id, "label": row.period_label,
        "period_end": iso(row.period_end), "rate": _d(row.rate),
        "nav_start": _d(row.nav_start), "nav_end": _d(row.nav_end),
        "net_flows": _d(row.net_flows), "pnl": _d(row.pnl),
        "fee": str(fee.quantize(CENT)), "pnl_after_fee": _d(row.pnl - fee),
        "hwm_before": _d(row.hwm_before), "hwm_after": _d(row.hwm_after),
        "to_recover": _d(max(ZERO, row.hwm_after - row.nav_end)),
        "invoice": {"provider": row.invoice_provider, "ref": row.invoice_ref}
        if row.invoice_ref else None,
    }


async def close_fee_period(uow_factory: UowFactory, *, tenant_id: str, follower_id: str,
                           raw: object, actor: str, stripe: StripeBilling | None = None,
                           currency: str = "usd", clock: Clock = utcnow,
                           invoicers: FeeInvoicers | None = None,
                           ) -> tuple[bool, dict[str, Any]]:
    """``(created, body)``; see the module docstring. ``invoicers`` (when given) replaces
    ``stripe`` and ``currency``."""
    invoicers = invoicers or FeeInvoicers(stripe=stripe, currency=currency)
    now = clock()
    label, rate, end = _parse_close(raw, now)
    created = False
    try:
        async with uow_factory() as uow:
            if await uow.followers.get(tenant_id, follower_id) is None:
                raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
            ledger = uow.fee_ledger
            row = await ledger.get(tenant_id, follower_id, label)
            if row is None:
                row = await _close(uow, ledger, tenant_id=tenant_id, follower_id=follower_id,
                                   label=label, rate=rate, end=end, actor=actor, now=now)
                await uow.commit()
                created = True
    except BillingConflict:  # a concurrent close of the same label won: return its row
        async with uow_factory() as uow:
            row = await uow.fee_ledger.get(tenant_id, follower_id, label)
        if row is None:
            raise
    if row.rate != rate or row.period_end != end:
        raise Conflict(f"period {label} was closed with rate {_d(row.rate)} and end "
                       f"{iso(row.period_end)}", code="period_label_conflict")
    invoice_status = await _invoice(uow_factory, row, tenant_id=tenant_id,
                                    invoicers=invoicers, actor=actor)
    async with uow_factory() as uow:  # read back (the invoice ref may have been stored)
        stored = await uow.fee_ledger.get(tenant_id, follower_id, label)
    assert stored is not None
    return created, {**ledger_row_json(stored), "created": created,
                     "invoice_status": invoice_status}


async def _close(uow: BillingUnitOfWork, ledger: FeeLedger, *, tenant_id: str,
                 follower_id: str, label: str, rate: Decimal, end: datetime, actor: str,
                 now: datetime) -> FeePeriodRecord:
    last = await ledger.last(tenant_id, follower_id)
    history = (await uow.navs.history("follower", [follower_id], end)).get(follower_id, [])
    if last is not None:
        if end <= last.period_end:
            raise Conflict(f"end must be after {iso(last.period_end)}, the end of period "
                           f"{last.period_label}", code="period_out_of_order")
        start: datetime = last.period_end
        state = FeeState(nav=last.nav_end, hwm=last.hwm_after)
        navs = [(at, nav) for at, nav in history if at > start]
    else:
        if not history:
            raise Conflict("the follower has no NAV observation up to end; report one with "
                           "POST /v1/followers/{id}/nav", code="nav_history_missing")
        start, opening = history[0]
        state = FeeState.open(Decimal(opening))
        navs = history[1:]
    flows = await uow.flows.list(tenant_id, follower_id, after=start, until=end)
    result, _ = close_period(state, _events(navs, flows), rate, label=label)
    row = {"tenant_id": tenant_id, "follower_id": follower_id, "period_label": label,
           "period_end": end, "rate": rate, "nav_start": result.nav_start,
           "nav_end": result.nav_end, "net_flows": result.net_flows, "pnl": result.pnl,
           "fee": result.fee, "hwm_before": result.hwm_before,
           "hwm_after": result.hwm_after, "invoice_provider": None, "invoice_ref": None,
           "created_at": now}
    row_id = await ledger.add(row)
    await uow.audit.append(
        entity="follower", entity_id=follower_id, action="fee_period_closed", actor=actor,
        tenant_id=tenant_id,
        payload={"label": label, "period_start": iso(start), "period_end": iso(end),
                 "rate": _d(rate), "pnl": _d(result.pnl), "fee": _d(result.fee),
                 "chargeable_gain": _d(result.chargeable_gain),
                 "hwm_before": _d(result.hwm_before), "hwm_after": _d(result.hwm_after),
                 "deposits": _d(result.deposits), "withdrawals": _d(result.withdrawals),
                 "events": len(navs) + len(flows)})
    return FeePeriodRecord.from_row({**row, "id": row_id})


async def _invoice(uow_factory: UowFactory, row: FeePeriodRecord, *, tenant_id: str,
                   invoicers: FeeInvoicers, actor: str) -> str:
    """Invoice the period's fee once; returns what happened, for the response."""
    if row.invoice_ref:
        return "invoiced"
    if row.fee <= 0:
        return "no_fee"
    key = fee_idempotency_key(tenant_id, row.follower_id, row.period_label)
    issued = await issue_fee_invoice(uow_factory(), row, tenant_id=tenant_id,
                                     invoicers=invoicers, key=key)
    if isinstance(issued, str):
        return issued  # the ledger row stands; closing the label again retries
    async with uow_factory() as uow:
        stored = await uow.fee_ledger.set_invoice(row.id, provider=issued.provider,
                                                  invoice_ref=issued.ref)
        if stored:
            await uow.audit.append(
                entity="follower", entity_id=row.follower_id, action="fee_invoiced",
                actor=actor, tenant_id=tenant_id,
                payload={"label": row.period_label, "provider": issued.provider,
                         "invoice_ref": issued.ref, **issued.payload,
                         "idempotency_key": key})
        await uow.commit()
    return "invoiced"


async def fee_ledger(uow: BillingUnitOfWork, *, tenant_id: str, follower_id: str
                     ) -> dict[str, Any]:
    """The follower's closed periods with P&L and fees side by side, plus running totals."""
    async with uow:
        if await uow.followers.get(tenant_id, follower_id) is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        rows = await uow.fee_ledger.list(tenant_id, follower_id)
    results = [_result(r) for r in rows]
    view = fee_ledger_rows(results)
    data = []
    for r, v in zip(rows, view, strict=True):
        data.append({**{k: _d(Decimal(x)) for k, x in v.as_dict().items() if k != "label"},
                     "label": v.label, "fee": str(v.fee.quantize(CENT)),
                     "period_end": iso(r.period_end), "rate": _d(r.rate),
                     "hwm_before": _d(r.hwm_before),
                     "invoice": {"provider": r.invoice_provider, "ref": r.invoice_ref}
                     if r.invoice_ref else None, "refunded": _d(r.refunded)})
    last = view[-1] if view else None
    return {
        "follower_id": follower_id,
        "data": data,
        "summary": {
            "periods": len(view),
            "hwm": _d(last.hwm_after) if last else None,
            "nav": _d(last.nav_end) if last else None,
            "cumulative_pnl": _d(last.cumulative_pnl) if last else "0",
            "cumulative_fees": str(last.cumulative_fees.quantize(CENT)) if last else "0.00",
            "cumulative_pnl_after_fees": _d(last.cumulative_pnl_after_fees) if last else "0",
        },
    }


def _result(r: FeePeriodRecord) -> PeriodResult:
    """A stored period as the domain's result. Only the fields ``fee_ledger_rows`` reads are
    stored; the per-flow split and the unrounded fee are in the close's audit event."""
    return PeriodResult(
        pnl=r.pnl, fee=r.fee, hwm_before=r.hwm_before, hwm_after=r.hwm_after,
        nav_start=r.nav_start, nav_end=r.nav_end, net_flows=r.net_flows, deposits=ZERO,
        withdrawals=ZERO, chargeable_gain=ZERO, fee_exact=r.fee, rate=r.rate,
        label=r.period_label,
    )
