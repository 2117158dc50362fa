"""Applying verified BTCPay invoice facts.

``InvoiceSettled`` activates; expired/invalid never do (audited, and flagged when money came
in); a late payment (``afterExpiration``) activates once it is *confirmed*
(``InvoicePaymentSettled``) and covers the price, flagged ``review: true`` in the audit; an
unconfirmed or short late payment is only flagged. Each invoice activates at most once (a
``btcpay:activated:<invoice>`` marker row in the inbox), so an operator marking a late-paid
invoice settled does not add a second period. A settled invoice starts a period at
settlement, or extends the running BTCPay period from its end, and the plan becomes the one
paid for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vanta.application.billing.btcpay_fees import apply_btcpay_fee
from vanta.application.billing.cancel import CANCEL_MARK
from vanta.application.billing.common import (
    HOLDABLE,
    PLAN_IDS,
    S,
    audit,
    billing_doc,
    entitlements_doc,
    row_summary,
    status_of,
    utc,
)
from vanta.application.billing.providers import BillingProviders
from vanta.application.clock import iso
from vanta.application.ports.billing import BillingUnitOfWork, BtcpayInvoiceFact, BtcpayOutcome
from vanta.domain.ids import new_id

_PENDING = (BtcpayOutcome.PAYMENT_RECEIVED, BtcpayOutcome.PAYMENT_SETTLED,
            BtcpayOutcome.PROCESSING)


async def apply_btcpay(uow: BillingUnitOfWork, providers: BillingProviders,
                       fact: BtcpayInvoiceFact, now: datetime) -> tuple[str | None, str]:
    """``(tenant whose subscription changed or None, outcome)``."""
    o = fact.outcome
    if not fact.is_late_payment and o in _PENDING:
        return None, "recorded_pending"  # InvoiceSettled is what grants
    tenant_id = fact.tenant_id
    if tenant_id is None:
        return None, "unresolved_tenant"
    if await uow.tenants.get(tenant_id) is None:
        return None, "unknown_tenant"
    fee = await uow.fee_ledger.by_invoice_ref(tenant_id, fact.invoice_id)
    if fee is not None or fact.fee_key is not None:
        return await apply_btcpay_fee(uow, tenant_id, fact, fee)
    plan = fact.plan_id
    if plan is None or plan not in PLAN_IDS:
        return None, "unknown_plan"
    current = await uow.billing_subscriptions.current_for_update(tenant_id)
    base = {"provider": "btcpay", "invoice_id": fact.invoice_id, "event_type": fact.event_type,
            "delivery_id": fact.delivery_id, "plan": plan,
            "manually_marked": fact.manually_marked, "over_paid": fact.over_paid,
            "partially_paid": fact.partially_paid,
            "payment_value": format(fact.payment_value, "f") if fact.payment_value is not None
            else None}
    entity = current["subscription_id"] if current else fact.invoice_id

    async def flag(action: str, outcome: str, review: bool) -> tuple[str | None, str]:
        await audit(uow, tenant_id=tenant_id, entity_id=entity, action=action,
                    actor="btcpay", payload={**base, "review": review})
        return None, outcome

    if o is BtcpayOutcome.SETTLED:
        return await _activate(uow, providers, tenant_id, plan, fact, current, base, now,
                               review=fact.over_paid, reason="settled")
    if fact.is_late_payment:
        if o is not BtcpayOutcome.PAYMENT_SETTLED:
            return await flag("btcpay_late_payment_seen", "late_payment_unconfirmed", True)
        price = fact.price
        if price is not None and fact.payment_value is not None and fact.payment_value < price:
            return await flag("btcpay_late_payment_short", "late_payment_short_review", True)
        return await _activate(uow, providers, tenant_id, plan, fact, current, base, now,
                               review=True, reason="late_payment")
    if o is BtcpayOutcome.EXPIRED:
        return await flag("btcpay_invoice_expired", "not_activated_expired",
                          fact.partially_paid)
    return await flag("btcpay_invoice_invalid", "not_activated_invalid", fact.needs_review)


async def _activate(uow: BillingUnitOfWork, providers: BillingProviders, tenant_id: str,
                    plan: str, fact: BtcpayInvoiceFact, current: Mapping[str, Any] | None,
                    base: Mapping[str, Any], now: datetime, *, review: bool, reason: str
                    ) -> tuple[str | None, str]:
    first = await uow.inbox.add_if_new({
        "inbox_id": f"btcpay:activated:{fact.invoice_id}"[:300], "provider": "btcpay",
        "event_type": "vanta.activation", "received_at": now,
        "payload": {"invoice_id": fact.invoice_id, "tenant_id": tenant_id, "reason": reason},
        "processed_at": now, "outcome": "activated"})
    entity = current["subscription_id"] if current else fact.invoice_id
    if not first:
        await audit(uow, tenant_id=tenant_id, entity_id=entity,
                    action="btcpay_payment_already_applied", actor="btcpay",
                    payload={**base, "reason": reason, "review": review})
        return None, "already_activated"
    if current is not None and current["provider"] == "stripe" and \
            status_of(current["status"]) in HOLDABLE:
        await audit(uow, tenant_id=tenant_id, entity_id=entity,
                    action="btcpay_paid_while_stripe_active", actor="btcpay",
                    payload={**base, "reason": reason, "review": True})
        return None, "review_conflicting_subscription"
    start, after = await _write_period(uow, providers, tenant_id, plan, fact, current, now)
    await audit(uow, tenant_id=tenant_id, entity_id=after["subscription_id"],
                action="btcpay_period_paid", actor="btcpay",
                payload={**base, "reason": reason, "review": review,
                         "period_start": iso(start), "before": row_summary(current),
                         "after": row_summary(after)})
    return tenant_id, "activated_review" if review else "activated"


async def _write_period(uow: BillingUnitOfWork, providers: BillingProviders, tenant_id: str,
                        plan: str, fact: BtcpayInvoiceFact, current: Mapping[str, Any] | None,
                        now: datetime) -> tuple[datetime, dict[str, Any]]:
    """Store the paid period: ``(period start, the row after)``."""
    at = utc(fact.event_at)
    start = at
    same = current is not None and current["provider"] == "btcpay" and \
        status_of(current["status"]) is not S.CANCELED
    if same and current is not None and current.get("renewal_at") and \
            current["renewal_at"] > start:
        start = current["renewal_at"]  # paid ahead: the new period follows the running one
    renewal = start + providers.btcpay_period
    if same and current is not None:
        values: dict[str, Any] = {
            "status": S.ACTIVE.value, "plan_id": plan,
            # paying another period withdraws a cancel at period end
            "entitlements": entitlements_doc(plan, {**billing_doc(current),
                                                    CANCEL_MARK: None}),
            "renewal_at": renewal, "provider_ref": fact.invoice_id, "past_due_since": None,
            "last_event_at": max(at, current["last_event_at"]) if current.get("last_event_at")
            else at, "updated_at": now}
        await uow.subscriptions.update(current["subscription_id"], **values)
        return start, {**current, **values}
    row = {"subscription_id": new_id(), "tenant_id": tenant_id, "plan_id": plan,
           "status": S.ACTIVE.value, "entitlements": entitlements_doc(plan, {}),
           "renewal_at": renewal, "created_at": now, "provider": "btcpay",
           "provider_ref": fact.invoice_id, "customer_ref": None,
           "past_due_since": None, "last_event_at": at, "updated_at": now}
    await uow.subscriptions.replace(tenant_id, row)
    return start, row
