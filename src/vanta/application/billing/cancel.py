"""Cancel a subscription (at the end of the paid period, or now) and resume it.

* Stripe: ``cancel_at_period_end`` is set (or withdrawn by ``resume``), or the subscription
  is canceled now. As with plan changes, the local row follows Stripe's
  ``customer.subscription.updated`` / ``.deleted`` events, never the call's reply.
* BTCPay has no recurring billing: nothing is sent. At period end, the row is marked so that
  when the paid period runs out it ends without the ``past_due`` grace (no further invoice is
  expected); now, access ends at once. ``resume`` withdraws the mark while the period runs.

Every request is audited (entity ``subscription``). Retried API calls are replayed by the
``Idempotency-Key`` middleware; repeating a cancel by hand is harmless too (a second cancel
answers ``already_canceled`` / the same mark).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vanta.application.billing.common import (
    HOLDABLE,
    S,
    UowFactory,
    audit,
    billing_doc,
    entitlements_changed,
    entitlements_doc,
    row_summary,
    status_of,
)
from vanta.application.billing.providers import BillingProviders, ProviderNotConfigured
from vanta.application.clock import Clock, iso, utcnow
from vanta.application.ports.records_tenancy import SubscriptionRecord
from vanta.domain.errors import Conflict, NotFound, ValidationFailed

CANCEL_AT = frozenset({"period_end", "now"})
# The billing-document key that ends a BTCPay period without grace (read by the expiry).
CANCEL_MARK = "cancel_at_period_end"


async def _current(uow_factory: UowFactory, tenant_id: str) -> SubscriptionRecord:
    async with uow_factory() as uow:
        current = await uow.subscriptions.current(tenant_id)
    if current is None or current.provider not in ("stripe", "btcpay") \
            or not current.provider_ref:
        raise NotFound("the tenant has no paid subscription", code="subscription_not_found")
    return current


async def cancel_subscription(uow_factory: UowFactory, providers: BillingProviders, *,
                              tenant_id: str, at: str, actor: str,
                              clock: Clock = utcnow) -> dict[str, Any]:
    if at not in CANCEL_AT:
        raise ValidationFailed("at must be period_end or now", code="invalid_cancel_at",
                               field="at")
    current = await _current(uow_factory, tenant_id)
    if status_of(current.status) is S.CANCELED:
        return _answer(current, "already_canceled")
    if current.provider == "btcpay":
        return await _btcpay_cancel(uow_factory, current, at=at, actor=actor, now=clock())
    gw = providers.stripe
    if gw is None:
        raise ProviderNotConfigured("Stripe is not configured")
    ref = str(current.provider_ref)
    snap = await gw.cancel(ref, at_period_end=at == "period_end")
    action = "cancel_at_period_end" if at == "period_end" else "canceled"
    async with uow_factory() as uow:
        await audit(uow, tenant_id=tenant_id, entity_id=current.subscription_id,
                    action="cancel_requested", actor=actor,
                    payload={"provider": "stripe", "subscription_ref": ref, "at": at,
                             "status": snap.status.value})
        await uow.commit()
    ends = snap.current_period_end if at == "period_end" else None
    return {**_answer(current, action), "status": snap.status.value,
            "ends_at": iso(ends) if ends else None, "applies": "on_provider_event"}


async def resume_subscription(uow_factory: UowFactory, providers: BillingProviders, *,
                              tenant_id: str, actor: str,
                              clock: Clock = utcnow) -> dict[str, Any]:
    current = await _current(uow_factory, tenant_id)
    if status_of(current.status) not in HOLDABLE:
        raise Conflict("only a running subscription can be resumed; start a new one with "
                       "change-plan", code="subscription_not_resumable")
    if current.provider == "btcpay":
        return await _btcpay_mark(uow_factory, current, mark=False, actor=actor, now=clock())
    gw = providers.stripe
    if gw is None:
        raise ProviderNotConfigured("Stripe is not configured")
    ref = str(current.provider_ref)
    snap = await gw.resume(ref)
    async with uow_factory() as uow:
        await audit(uow, tenant_id=tenant_id, entity_id=current.subscription_id,
                    action="resume_requested", actor=actor,
                    payload={"provider": "stripe", "subscription_ref": ref})
        await uow.commit()
    return {**_answer(current, "resumed"), "status": snap.status.value,
            "applies": "on_provider_event"}


async def _btcpay_cancel(uow_factory: UowFactory, current: SubscriptionRecord, *, at: str,
                         actor: str, now: datetime) -> dict[str, Any]:
    if at == "period_end":
        return await _btcpay_mark(uow_factory, current, mark=True, actor=actor, now=now)
    async with uow_factory() as uow:
        row = await uow.billing_subscriptions.current_for_update(current.tenant_id)
        if row is None or row["subscription_id"] != current.subscription_id:
            raise Conflict("the subscription changed meanwhile; retry",
                           code="subscription_changed")
        values = {"status": S.CANCELED.value, "past_due_since": None, "updated_at": now}
        await uow.subscriptions.update(current.subscription_id, **values)
        await audit(uow, tenant_id=current.tenant_id, entity_id=current.subscription_id,
                    action="canceled", actor=actor,
                    payload={"provider": "btcpay", "at": "now", "before": row_summary(row),
                             "after": row_summary({**row, **values})})
        await uow.commit()
    await entitlements_changed(current.tenant_id)
    return {**_answer(current, "canceled"), "status": S.CANCELED.value,
            "ends_at": iso(now), "applies": "now"}


async def _btcpay_mark(uow_factory: UowFactory, current: SubscriptionRecord, *, mark: bool,
                       actor: str, now: datetime) -> dict[str, Any]:
    async with uow_factory() as uow:
        row = await uow.billing_subscriptions.current_for_update(current.tenant_id)
        if row is None or row["subscription_id"] != current.subscription_id:
            raise Conflict("the subscription changed meanwhile; retry",
                           code="subscription_changed")
        billing = {**billing_doc(row), CANCEL_MARK: True if mark else None}
        await uow.subscriptions.update(
            current.subscription_id, updated_at=now,
            entitlements=entitlements_doc(str(row["plan_id"]), billing))
        await audit(uow, tenant_id=current.tenant_id, entity_id=current.subscription_id,
                    action="cancel_requested" if mark else "resume_requested", actor=actor,
                    payload={"provider": "btcpay", "at": "period_end" if mark else None})
        await uow.commit()
    ends = row.get("renewal_at")
    return {**_answer(current, "cancel_at_period_end" if mark else "resumed"),
            "status": str(row["status"]), "ends_at": iso(ends) if ends and mark else None,
            "applies": "now"}


def _answer(current: SubscriptionRecord, action: str) -> dict[str, Any]:
    return {"provider": current.provider, "action": action,
            "subscription_ref": current.provider_ref, "plan": current.plan_id,
            "status": current.status}
