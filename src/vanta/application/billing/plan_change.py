"""Plan changes out (``change_plan``).

* Stripe, tenant without a live Stripe subscription: a Checkout Session for the plan's price
  (the tenant's earlier Stripe customer is reused). The subscription appears through webhooks.
* Stripe, tenant with one: its item moves to the new price with ``create_prorations`` (credit
  for the unused time, the rest on the next invoice). The local row changes when Stripe's
  ``customer.subscription.updated`` arrives: webhooks are the only writer of provider-backed
  subscription state, so a reply and an event can never disagree about ordering.
* BTCPay: an invoice (see ``btcpay_invoicing``).

The tenant comes only from the caller's token. A ``subscription_ref`` in the body must be the
tenant's own; anything else is ``404 subscription_not_found`` and nothing is sent to Stripe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from vanta.application.billing.btcpay_invoicing import change_btcpay
from vanta.application.billing.common import S, UowFactory, audit, log, status_of
from vanta.application.billing.providers import (
    PROVIDERS,
    STRIPE_PRORATION,
    BillingProviders,
    ProviderNotConfigured,
)
from vanta.application.clock import Clock, utcnow
from vanta.application.ports.billing import StripeBilling
from vanta.application.ports.records_tenancy import SubscriptionRecord
from vanta.domain.entitlements import get_plan
from vanta.domain.errors import NotFound, ValidationFailed


def parse_change_plan(raw: object) -> tuple[str, str, str | None]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - {"plan", "provider", "subscription_ref"})
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    if raw.get("plan") is None:
        raise ValidationFailed("plan is required", code="missing_field", field="plan")
    try:
        plan = get_plan(raw["plan"]).plan_id.value
    except ValidationFailed as e:
        raise ValidationFailed(e.message, code=e.code, field="plan") from None
    provider = raw.get("provider", "stripe")
    if provider not in PROVIDERS:
        raise ValidationFailed("provider must be stripe or btcpay", code="invalid_provider",
                               field="provider")
    ref = raw.get("subscription_ref")
    if ref is not None and (not isinstance(ref, str) or not 1 <= len(ref) <= 255):
        raise ValidationFailed("subscription_ref must be a string", code="invalid_body",
                               field="subscription_ref")
    return plan, str(provider), ref


async def change_plan(uow_factory: UowFactory, providers: BillingProviders, *, tenant_id: str,
                      raw: object, actor: str, idempotency_key: str | None = None,
                      clock: Clock = utcnow) -> tuple[bool, dict[str, Any]]:
    """``(created, body)``: created is True for a new checkout session or invoice (201) and
    False for a change to an existing subscription (200)."""
    plan, provider, ref = parse_change_plan(raw)
    async with uow_factory() as uow:
        current = await uow.subscriptions.current(tenant_id)
        if ref is not None:
            named = await uow.subscriptions.by_provider_ref(ref)
            if named is None or named.tenant_id != tenant_id:
                raise NotFound(f"subscription {ref} not found", code="subscription_not_found")
    if provider == "btcpay":
        return await change_btcpay(uow_factory, providers, tenant_id=tenant_id, plan=plan,
                                   current=current, actor=actor)
    gw = providers.stripe
    if gw is None:
        raise ProviderNotConfigured("Stripe is not configured")
    live = (current is not None and current.provider == "stripe"
            and current.provider_ref and status_of(current.status) is not S.CANCELED)
    if live:
        assert current is not None
        return await _change_stripe_price(uow_factory, gw, tenant_id=tenant_id, plan=plan,
                                          current=current, actor=actor,
                                          idempotency_key=idempotency_key)
    return await _start_checkout(uow_factory, gw, providers.public_app_url,
                                 tenant_id=tenant_id, plan=plan, current=current, actor=actor,
                                 idempotency_key=idempotency_key)


def _stripe_key(kind: str, *parts: str | None) -> str | None:
    """A Stripe idempotency key derived from the API request's ``Idempotency-Key`` (so a
    retried request that reaches Stripe twice acts once); hashed when it would be long."""
    if not parts or parts[-1] is None:
        return None
    key = ":".join([kind, *(p or "" for p in parts)])
    return key if len(key) <= 200 else f"{kind}:{hashlib.sha256(key.encode()).hexdigest()}"


async def _change_stripe_price(uow_factory: UowFactory, gw: StripeBilling, *, tenant_id: str,
                               plan: str, current: SubscriptionRecord, actor: str,
                               idempotency_key: str | None) -> tuple[bool, dict[str, Any]]:
    sub_ref = str(current.provider_ref)
    snap = await gw.get_subscription(sub_ref)
    if snap.tenant_id is not None and snap.tenant_id != tenant_id:
        log.warning("Stripe subscription %s names another tenant; not changed", sub_ref)
        raise NotFound(f"subscription {sub_ref} not found", code="subscription_not_found")
    key = _stripe_key("chg", tenant_id, sub_ref, plan, idempotency_key)
    after = await gw.change_plan(sub_ref, plan, STRIPE_PRORATION, idempotency_key=key)
    changed = snap.plan_id != after.plan_id or snap.price_ref != after.price_ref
    async with uow_factory() as uow:
        await audit(uow, tenant_id=tenant_id, entity_id=current.subscription_id,
                    action="plan_change_requested", actor=actor,
                    payload={"provider": "stripe", "subscription_ref": sub_ref,
                             "from": snap.plan_id, "to": plan, "sent": changed,
                             "proration": STRIPE_PRORATION})
        await uow.commit()
    return False, {
        "provider": "stripe", "action": "plan_changed" if changed else "unchanged",
        "subscription_ref": sub_ref, "plan": after.plan_id or plan,
        "status": after.status.value, "proration": STRIPE_PRORATION,
        # the local subscription follows Stripe's customer.subscription.updated
        "applies": "on_provider_event",
    }


async def _start_checkout(uow_factory: UowFactory, gw: StripeBilling, base: str, *,
                          tenant_id: str, plan: str, current: SubscriptionRecord | None,
                          actor: str, idempotency_key: str | None,
                          ) -> tuple[bool, dict[str, Any]]:
    customer = current.customer_ref if current is not None and \
        current.provider == "stripe" else None
    key = _stripe_key("checkout", tenant_id, plan, idempotency_key)
    session_id, url = await gw.create_checkout_session(
        customer, tenant_id, plan, f"{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        f"{base}/billing/cancel", idempotency_key=key)
    async with uow_factory() as uow:
        await audit(uow, tenant_id=tenant_id,
                    entity_id=current.subscription_id if current else tenant_id,
                    action="checkout_started", actor=actor,
                    payload={"provider": "stripe", "plan": plan, "session_id": session_id,
                             "customer_ref": customer})
        await uow.commit()
    return True, {"provider": "stripe", "action": "checkout", "plan": plan,
                  "session_id": session_id, "checkout_url": url}
