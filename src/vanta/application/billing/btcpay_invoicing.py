"""BTCPay: invoices out, and the paid periods running out.

BTCPay has no recurring subscriptions and no proration. ``change_btcpay`` asks for an invoice
for the plan's price (``BTCPAY_PRICES``, USD) paying for ``BTCPAY_PERIOD`` (30 days); a settled
invoice starts a period (see ``btcpay_payments``). ``expire_btcpay_periods`` (run it from the
scheduler) moves a BTCPay subscription whose period ended to ``past_due`` (grace from
``renewal_at``) and, once the grace has passed, to ``unpaid``; one canceled at period end
(``cancel``) goes straight to ``canceled``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from vanta.application.billing.cancel import CANCEL_MARK
from vanta.application.billing.common import (
    HOLDABLE,
    S,
    UowFactory,
    audit,
    billing_doc,
    entitlements_changed,
    row_summary,
    status_of,
)
from vanta.application.billing.providers import BillingProviders, ProviderNotConfigured
from vanta.application.clock import Clock, iso, utcnow
from vanta.application.ports.records_tenancy import SubscriptionRecord
from vanta.domain.errors import Conflict, ValidationFailed
from vanta.domain.subscriptions import DEFAULT_GRACE


def btcpay_order_id(tenant_id: str, plan: str, current: SubscriptionRecord | None) -> str:
    """One order per tenant, plan and paid-up point: retrying before payment reuses the open
    invoice; once a period is paid (``renewal_at`` moves) the next request is a new order."""
    anchor = "new"
    if current is not None and current.provider == "btcpay" and current.renewal_at:
        anchor = iso(current.renewal_at)
    digest = hashlib.sha256(f"{tenant_id}|{plan}|{anchor}".encode()).hexdigest()[:16]
    return f"vanta-{plan}-{digest}"


async def change_btcpay(uow_factory: UowFactory, providers: BillingProviders, *,
                        tenant_id: str, plan: str, current: SubscriptionRecord | None,
                        actor: str) -> tuple[bool, dict[str, Any]]:
    client, store = providers.btcpay, providers.btcpay_store_id
    if client is None or not store:
        raise ProviderNotConfigured("BTCPay is not configured")
    if current is not None and current.provider == "stripe" and \
            status_of(current.status) in HOLDABLE:
        raise Conflict("the tenant has a live Stripe subscription; cancel it before paying "
                       "with BTCPay", code="stripe_subscription_active")
    price = providers.btcpay_prices.get(plan)
    if price is None:
        raise ValidationFailed(f"no BTCPay price for plan {plan}", code="unknown_plan",
                               field="plan")
    amount, currency = price
    order_id = btcpay_order_id(tenant_id, plan, current)
    period_days = providers.btcpay_period.days
    metadata = {"tenant_id": tenant_id, "plan_id": plan, "amount": format(amount, "f"),
                "currency": currency, "period_days": period_days}
    invoice_id, link = await client.create_invoice(
        store, amount, currency, order_id, metadata,
        f"{providers.public_app_url}/billing/success")
    async with uow_factory() as uow:
        await audit(uow, tenant_id=tenant_id,
                    entity_id=current.subscription_id if current else tenant_id,
                    action="btcpay_invoice_created", actor=actor,
                    payload={"provider": "btcpay", "plan": plan, "invoice_id": invoice_id,
                             "amount": format(amount, "f"), "currency": currency,
                             "order_id": order_id})
        await uow.commit()
    return True, {"provider": "btcpay", "action": "invoice", "plan": plan,
                  "invoice_id": invoice_id, "checkout_url": link,
                  "amount": format(amount, "f"), "currency": currency,
                  "period_days": period_days}


async def expire_btcpay_periods(uow_factory: UowFactory, *, grace: timedelta = DEFAULT_GRACE,
                                clock: Clock = utcnow) -> int:
    """Move BTCPay subscriptions whose paid period ended: ``active`` → ``past_due`` (grace
    counted from ``renewal_at``), and ``past_due`` past the grace → ``unpaid``. Returns how
    many rows moved. Meant for the scheduler; idempotent."""
    now = clock()
    moved: list[str] = []
    async with uow_factory() as uow:
        subs = uow.billing_subscriptions
        for row in await subs.btcpay_due(now, (S.ACTIVE.value, S.TRIALING.value)):
            # canceled at period end: no invoice is coming, so no grace either
            ends = bool(billing_doc(row).get(CANCEL_MARK))
            values = {"status": S.PAST_DUE.value, "past_due_since": row["renewal_at"],
                      "updated_at": now} if not ends else \
                {"status": S.CANCELED.value, "past_due_since": None, "updated_at": now}
            await uow.subscriptions.update(row["subscription_id"], **values)
            await audit(uow, tenant_id=row["tenant_id"], entity_id=row["subscription_id"],
                        action="btcpay_canceled" if ends else "btcpay_period_ended",
                        actor="scheduler",
                        payload={"before": row_summary(row),
                                 "after": row_summary({**row, **values})})
            moved.append(row["tenant_id"])
        for row in await subs.past_due_since_before("btcpay", now - grace):
            values = {"status": S.UNPAID.value, "past_due_since": None, "updated_at": now}
            await uow.subscriptions.update(row["subscription_id"], **values)
            await audit(uow, tenant_id=row["tenant_id"], entity_id=row["subscription_id"],
                        action="btcpay_lapsed", actor="scheduler",
                        payload={"before": row_summary(row),
                                 "after": row_summary({**row, **values})})
            moved.append(row["tenant_id"])
        await uow.commit()
    for tenant in set(moved):
        await entitlements_changed(tenant)
    return len(moved)
