"""Applying verified Stripe payment and refund facts.

* ``PaymentFact``: paid moves ``past_due``/``unpaid``/``incomplete`` to ``active``; failed moves
  ``active``/``trialing`` to ``past_due``. Fee invoices (``vanta_fee_key``) are recorded only.
* ``RefundFact`` (decision): partial refunds are recorded and audited, features stay. A *full*
  refund of a subscription charge takes the paid period back: the subscription moves to
  ``unpaid`` (no paid features) and is put on a *refund hold*, audited with ``review: true``.
  While held, Stripe snapshots saying ``active`` do not restore features (Stripe keeps a
  refunded subscription active); the next ``invoice.paid`` for the subscription after the
  refund lifts the hold, and an operator can always re-grant. A full refund is *not* a hold
  when it is identifiably not the current period's payment: its invoice is a fee invoice we
  issued, or a different invoice than the last one paid, or a later payment already arrived;
  when the charge names no invoice (current Stripe API versions) and its amount equals one of
  the tenant's invoiced performance fees, it is recorded with ``review: true`` and no hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vanta.application.billing.common import (
    ENTITLED,
    HOLDABLE,
    RECOVERABLE_BY_PAYMENT,
    S,
    audit,
    billing_doc,
    entitlements_doc,
    log,
    not_older,
    parse_iso,
    past_due_since,
    row_summary,
    status_of,
    utc,
)
from vanta.application.billing.lookup import reachable, resolve_row
from vanta.application.clock import iso
from vanta.application.ports.billing import (
    BillingUnitOfWork,
    PaymentFact,
    PaymentOutcome,
    RefundFact,
)


async def apply_payment_fact(uow: BillingUnitOfWork, fact: PaymentFact, now: datetime
                             ) -> tuple[str | None, str]:
    if fact.fee_key is not None:
        return None, await _record_fee_payment(uow, fact)
    row = await resolve_row(uow, subscription_ref=fact.subscription_ref,
                            customer_ref=fact.customer_ref)
    if row is None or row["provider"] != "stripe":
        return None, "no_subscription"
    tenant_id = row["tenant_id"]
    if fact.tenant_id is not None and fact.tenant_id != tenant_id:
        log.warning("Stripe event %s names tenant %s for another tenant's subscription",
                    fact.event_id, fact.tenant_id)
        return None, "tenant_mismatch"
    cur = status_of(row["status"])
    billing = billing_doc(row)
    at = utc(fact.event_created)
    target = cur
    lifted = False
    if fact.outcome is PaymentOutcome.PAID:
        last_paid = parse_iso(billing.get("last_paid_at"))
        if last_paid is None or at >= last_paid:
            billing.update(last_paid_at=iso(at), last_paid_invoice=fact.invoice_ref)
        hold = billing.get("hold")
        hold_since = parse_iso(hold.get("since")) if isinstance(hold, Mapping) else None
        if hold and (hold_since is None or at >= hold_since):
            billing.pop("hold", None)
            lifted = True
            target = S.ACTIVE
        elif not hold and cur in RECOVERABLE_BY_PAYMENT and \
                not_older(at, row.get("last_event_at")):
            target = S.ACTIVE
    elif cur in ENTITLED and not_older(at, row.get("last_event_at")):
        target = S.PAST_DUE
    if target is not cur and not reachable(cur, target):
        return None, "ignored_invalid_transition"
    values: dict[str, Any] = {
        "entitlements": entitlements_doc(row["plan_id"], billing), "updated_at": now,
    }
    if target is not cur:
        values.update(status=target.value,
                      past_due_since=past_due_since(cur, target, row.get("past_due_since"),
                                                    at),
                      last_event_at=max(at, row["last_event_at"]) if row.get("last_event_at")
                      else at)
    await uow.subscriptions.update(row["subscription_id"], **values)
    if target is cur and not lifted:
        return None, "recorded"
    after = {**row, **values}
    await audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                action="subscription_payment_" + fact.outcome.value, actor="stripe",
                payload={"provider": "stripe", "event_id": fact.event_id,
                         "invoice_ref": fact.invoice_ref, "amount_cents": fact.amount_cents,
                         "currency": fact.currency, "before": row_summary(row),
                         "after": row_summary(after), "refund_hold_lifted": lifted})
    return tenant_id, "applied"


async def _record_fee_payment(uow: BillingUnitOfWork, fact: PaymentFact) -> str:
    row = await resolve_row(uow, subscription_ref=None, customer_ref=fact.customer_ref)
    tenant_id = row["tenant_id"] if row else fact.tenant_id
    ledger = await uow.fee_ledger.by_invoice_ref(tenant_id, fact.invoice_ref) \
        if tenant_id else None
    await uow.audit.append(
        entity="fee_invoice", entity_id=fact.invoice_ref[:64],
        action=f"fee_invoice_{fact.outcome.value}", actor="stripe", tenant_id=tenant_id,
        payload={"event_id": fact.event_id, "fee_key": fact.fee_key,
                 "amount_cents": fact.amount_cents, "currency": fact.currency,
                 "follower_id": ledger.follower_id if ledger else None,
                 "period_label": ledger.period_label if ledger else None})
    return f"fee_invoice_{fact.outcome.value}"


async def apply_refund_fact(uow: BillingUnitOfWork, fact: RefundFact, now: datetime
                            ) -> tuple[str | None, str]:
    row: dict[str, Any] | None = None
    if fact.tenant_id is not None:
        row = await uow.billing_subscriptions.current_for_update(fact.tenant_id)
    if row is None:
        row = await resolve_row(uow, subscription_ref=None, customer_ref=fact.customer_ref)
    if row is None or row["provider"] != "stripe":
        return None, "no_subscription"
    tenant_id = row["tenant_id"]
    billing = billing_doc(row)
    at = utc(fact.event_created)
    base = {"provider": "stripe", "event_id": fact.event_id, "charge_ref": fact.charge_ref,
            "invoice_ref": fact.invoice_ref, "amount_cents": fact.amount_cents,
            "amount_refunded_cents": fact.amount_refunded_cents, "currency": fact.currency,
            "fully_refunded": fact.fully_refunded}

    async def record(outcome: str, review: bool = False) -> tuple[str | None, str]:
        await audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                    action="refund_recorded", actor="stripe",
                    payload={**base, "outcome": outcome, "review": review})
        return None, outcome

    if not fact.fully_refunded:
        return await record("refund_recorded_partial")
    ledger = uow.fee_ledger
    if fact.invoice_ref and await ledger.by_invoice_ref(tenant_id, fact.invoice_ref):
        return await record("fee_refund_recorded")
    last_paid = parse_iso(billing.get("last_paid_at"))
    if last_paid is not None and last_paid > at:
        return await record("refund_recorded_superseded")
    if fact.invoice_ref and billing.get("last_paid_invoice") and \
            fact.invoice_ref != billing["last_paid_invoice"]:
        return await record("refund_recorded_older_invoice")
    if fact.invoice_ref is None:
        fees = await ledger.invoiced(tenant_id)
        if any(int(r.fee * 100) == fact.amount_cents for r in fees):
            return await record("refund_recorded_review", review=True)
    cur = status_of(row["status"])
    if cur not in HOLDABLE or not reachable(cur, S.UNPAID):
        return await record("refund_recorded")
    billing["hold"] = {"reason": "refunded", "since": iso(at), "charge_ref": fact.charge_ref}
    values = {"status": S.UNPAID.value, "past_due_since": None,
              "entitlements": entitlements_doc(row["plan_id"], billing), "updated_at": now}
    await uow.subscriptions.update(row["subscription_id"], **values)
    await audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                action="subscription_refund_hold", actor="stripe",
                payload={**base, "before": row_summary(row),
                         "after": row_summary({**row, **values}), "review": True})
    return tenant_id, "refund_hold"
