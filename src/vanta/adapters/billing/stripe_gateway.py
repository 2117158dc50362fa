"""Stripe, through the official ``stripe`` SDK (``StripeClient``, async methods over httpx).

Out: Checkout Sessions for new subscriptions, plan changes, cancellation, one-off invoices for
performance fees. In: ``verify_event`` checks a webhook's ``Stripe-Signature`` (see
``stripe_webhooks``, whose ``StripeWebhooks`` is what the application is given) and returns a
plain ``StripeEvent``; ``translate`` turns it into a billing fact (see ``stripe_events``).
Implements the application's ``StripeBilling`` port.

Plans map to Stripe prices through ``price_ids`` (``{"pro": "price_..."}``); a legacy Plan id
works too, Stripe accepts it wherever a price id goes. The tenant travels to Stripe as the
session's ``client_reference_id`` and as ``metadata.tenant_id`` on the session and on the
subscription, so every later subscription event names its tenant.

Idempotency: the SDK sends an ``Idempotency-Key`` with every POST it may retry
(``max_network_retries``). ``create_invoice_for_fee`` takes the caller's key and derives one
key per step from it, so retrying the whole call after a crash creates one invoice, not two,
as long as it happens within Stripe's 24-hour key window: the caller must store the returned
invoice id and never call again for a key it has an invoice for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import stripe

from vanta.adapters.billing import stripe_refunds
from vanta.adapters.billing.stripe_events import (
    FEE_KEY,
    PLAN_KEY,
    TENANT_KEY,
    StripeEvent,
    item_price_ref,
    subscription_snapshot,
    translate_event,
)
from vanta.adapters.billing.stripe_sdk import HTTPXClient, call, options
from vanta.adapters.billing.stripe_webhooks import DEFAULT_TOLERANCE, verify_stripe_event
from vanta.application.ports.billing import (
    BillingEventRejected,
    BillingFact,
    BillingRejected,
    FeeInvoice,
    PaidInvoice,
    RefundReceipt,
    SubscriptionSnapshot,
)
from vanta.domain.errors import ValidationFailed
from vanta.domain.subscriptions import SubscriptionStatus

__all__ = [
    "PRORATION_BEHAVIORS",
    "FeeInvoice",
    "StripeGateway",
    "verify_stripe_event",
]

PRORATION_BEHAVIORS: Final = frozenset({"create_prorations", "none", "always_invoice"})
_MAX_IDEMPOTENCY_KEY = 240  # Stripe allows 255; we append up to ":finalize"
_CURRENCY = re.compile(r"^[a-z]{3}$")


class StripeGateway:
    """Outbound calls to Stripe and verification of its webhooks.

    ``api_base`` points the SDK elsewhere (a local fake in tests). Close with ``aclose``.
    """

    def __init__(
        self,
        api_key: str,
        *,
        webhook_secret: str,
        price_ids: Mapping[str, str],
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout: float = 30.0,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("a Stripe API key is required")
        if not webhook_secret:
            raise ValueError("a Stripe webhook secret is required")
        self._price_ids = {str(k): v for k, v in price_ids.items()}
        self._plans_by_price = {v: k for k, v in self._price_ids.items()}
        if len(self._plans_by_price) != len(self._price_ids):
            raise ValueError("two plans share one Stripe price id")
        self._webhook_secret = webhook_secret
        self._http = http_client or HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    def __repr__(self) -> str:  # never show the key
        return f"StripeGateway(plans={sorted(self._price_ids)})"

    @property
    def client(self) -> stripe.StripeClient:
        """The underlying SDK client, for calls this gateway does not wrap."""
        return self._client

    @property
    def plans_by_price(self) -> Mapping[str, str]:
        return dict(self._plans_by_price)

    async def aclose(self) -> None:
        await self._http.close_async()

    # -- outbound -------------------------------------------------------------------------

    async def create_checkout_session(
        self,
        customer_ref: str | None,
        tenant_id: str,
        plan_id: str,
        success_url: str,
        cancel_url: str,
        *,
        idempotency_key: str | None = None,
    ) -> tuple[str, str]:
        """A hosted Checkout page for a new subscription to ``plan_id``: ``(session_id, url)``.

        Without ``customer_ref`` Stripe creates the customer during checkout. ``success_url``
        may contain ``{CHECKOUT_SESSION_ID}``, which Stripe fills in.
        """
        if not tenant_id:
            raise ValidationFailed("tenant_id is required", code="invalid_tenant",
                                   field="tenant_id")
        price = self._price_for(plan_id)
        tags = {TENANT_KEY: tenant_id, PLAN_KEY: plan_id}
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": tenant_id,
            "metadata": tags,
            "subscription_data": {"metadata": tags},
        }
        if customer_ref:
            params["customer"] = customer_ref
        session = await call(self._client.v1.checkout.sessions.create_async(
            params, options(idempotency_key)))  # type: ignore[arg-type]
        url = session.get("url")
        if not isinstance(url, str) or not url:
            raise BillingRejected("Stripe returned a checkout session without a url",
                                  code="no_checkout_url")
        return session["id"], url

    async def get_subscription(self, subscription_ref: str) -> SubscriptionSnapshot:
        sub = await call(self._client.v1.subscriptions.retrieve_async(subscription_ref))
        return self._snapshot(sub)

    async def change_plan(
        self,
        subscription_ref: str,
        plan_id: str,
        proration: str = "create_prorations",
        *,
        idempotency_key: str | None = None,
    ) -> SubscriptionSnapshot:
        """Move the subscription's item to ``plan_id``'s price.

        ``proration`` is Stripe's ``proration_behavior``: ``create_prorations`` (credit the
        unused time, charge the rest on the next invoice), ``always_invoice`` (invoice the
        difference now) or ``none``. Already on that price: nothing is sent. The subscription's
        ``metadata.plan_id`` is updated with the price.
        """
        if proration not in PRORATION_BEHAVIORS:
            raise ValueError(f"proration must be one of {sorted(PRORATION_BEHAVIORS)}")
        price = self._price_for(plan_id)
        sub = await call(self._client.v1.subscriptions.retrieve_async(subscription_ref))
        item = self._item_to_change(sub)
        current = subscription_snapshot(sub, plans_by_price=self._plans_by_price)
        if current.price_ref == price:
            return current
        params: dict[str, Any] = {
            "items": [{"id": item["id"], "price": price}],
            "proration_behavior": proration,
            "metadata": {PLAN_KEY: plan_id},
        }
        updated = await call(self._client.v1.subscriptions.update_async(
            subscription_ref, params, options(idempotency_key)))  # type: ignore[arg-type]
        return self._snapshot(updated)

    async def cancel(self, subscription_ref: str, *, at_period_end: bool = False,
                     ) -> SubscriptionSnapshot:
        """Cancel now (default) or at the end of the paid period. Idempotent: canceling a
        subscription that is already canceled returns its snapshot."""
        if at_period_end:
            sub = await call(self._client.v1.subscriptions.update_async(
                subscription_ref, {"cancel_at_period_end": True}))
            return self._snapshot(sub)
        try:
            sub = await call(self._client.v1.subscriptions.cancel_async(subscription_ref))
        except BillingRejected:
            snap = await self.get_subscription(subscription_ref)
            if snap.status is SubscriptionStatus.CANCELED:
                return snap
            raise
        return self._snapshot(sub)

    async def resume(self, subscription_ref: str) -> SubscriptionSnapshot:
        """Withdraw ``cancel_at_period_end``; Stripe refuses it for a canceled one."""
        sub = await call(self._client.v1.subscriptions.update_async(
            subscription_ref, {"cancel_at_period_end": False}))
        return self._snapshot(sub)

    async def paid_invoice(self, invoice_ref: str) -> PaidInvoice:
        return await stripe_refunds.paid_invoice(self._client, invoice_ref)

    async def refund(self, invoice_ref: str, amount: Decimal, *, reason: str | None = None,
                     idempotency_key: str | None = None) -> RefundReceipt:
        """Refund ``amount`` of the invoice's payment (see ``stripe_refunds``)."""
        inv = await call(self._client.v1.invoices.retrieve_async(invoice_ref))
        return await stripe_refunds.refund(
            self._client, invoice_ref, amount, currency=str(inv.get("currency") or "usd"),
            reason=reason, idempotency_key=idempotency_key)

    async def create_invoice_for_fee(
        self,
        customer_ref: str,
        amount_cents: int,
        currency: str,
        description: str,
        idempotency_key: str,
    ) -> FeeInvoice:
        """A one-off invoice for a performance fee, charged to the customer's default method.

        Steps (each with its own idempotency key derived from ``idempotency_key``): a draft
        invoice that takes none of the customer's pending items (prorations stay on the next
        subscription invoice), one invoice item attached to it, then finalization (Stripe
        collects automatically). ``metadata.vanta_fee_key`` on the invoice and the item holds
        ``idempotency_key``, so ``invoice.paid`` / ``invoice.payment_failed`` name the fee.
        """
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) \
                or amount_cents <= 0:
            raise ValidationFailed("amount_cents must be a positive integer",
                                   code="invalid_amount", field="amount_cents")
        cur = currency.lower()
        if not _CURRENCY.match(cur):
            raise ValidationFailed("currency must be a three-letter ISO code",
                                   code="invalid_currency", field="currency")
        if not idempotency_key or len(idempotency_key) > _MAX_IDEMPOTENCY_KEY:
            raise ValidationFailed(
                f"idempotency_key must have 1 to {_MAX_IDEMPOTENCY_KEY} characters",
                code="invalid_idempotency_key", field="idempotency_key")
        tags = {FEE_KEY: idempotency_key}
        v1 = self._client.v1
        draft = await call(v1.invoices.create_async({
            "customer": customer_ref,
            "currency": cur,
            "collection_method": "charge_automatically",
            "auto_advance": True,
            "pending_invoice_items_behavior": "exclude",
            "description": description,
            "metadata": tags,
        }, {"idempotency_key": f"{idempotency_key}:invoice"}))
        await call(v1.invoice_items.create_async({
            "customer": customer_ref,
            "invoice": draft["id"],
            "amount": amount_cents,
            "currency": cur,
            "description": description,
            "metadata": tags,
        }, {"idempotency_key": f"{idempotency_key}:item"}))
        final = await call(v1.invoices.finalize_invoice_async(
            draft["id"], {"auto_advance": True},
            {"idempotency_key": f"{idempotency_key}:finalize"}))
        amount_due = final.get("amount_due")
        return FeeInvoice(
            invoice_ref=final["id"],
            status=final.get("status"),
            amount_due_cents=amount_due if isinstance(amount_due, int) else amount_cents,
            currency=final.get("currency") or cur,
            hosted_invoice_url=final.get("hosted_invoice_url"),
        )

    # -- inbound --------------------------------------------------------------------------

    def verify_event(self, payload: bytes, sig_header: str | None,
                     tolerance: int = DEFAULT_TOLERANCE) -> StripeEvent:
        """See ``verify_stripe_event``."""
        return verify_stripe_event(payload, sig_header, self._webhook_secret,
                                   tolerance=tolerance)

    def translate(self, event: StripeEvent) -> BillingFact | None:
        """``translate_event`` with this gateway's price → plan map."""
        return translate_event(event, plans_by_price=self._plans_by_price)

    # -- helpers --------------------------------------------------------------------------

    def _price_for(self, plan_id: str) -> str:
        price = self._price_ids.get(str(plan_id))
        if not price:
            allowed = ", ".join(sorted(self._price_ids)) or "none configured"
            raise ValidationFailed(f"no Stripe price for plan {plan_id!r} ({allowed})",
                                   code="unknown_plan", field="plan_id")
        return price

    def _item_to_change(self, sub: Mapping[str, Any]) -> Mapping[str, Any]:
        items = (sub.get("items") or {}).get("data") or []
        if len(items) == 1:
            return items[0]
        ours = [i for i in items if item_price_ref(i) in self._plans_by_price]
        if len(ours) != 1:
            raise BillingRejected(
                f"subscription has {len(items)} items, {len(ours)} of them on a Vanta plan; "
                "cannot tell which to change", code="ambiguous_subscription_item")
        return ours[0]

    def _snapshot(self, obj: dict[str, Any]) -> SubscriptionSnapshot:
        try:
            return subscription_snapshot(obj, plans_by_price=self._plans_by_price)
        except BillingEventRejected as e:
            raise BillingRejected(f"unexpected subscription from Stripe: {e.message}",
                                  code="unexpected_response") from None
