"""Billing fakes: the Stripe-side and BTCPay-side providers and webhook verifiers.

* :class:`FakeStripe` (:class:`~vanta.application.ports.billing.StripeBilling`): checkout
  sessions, subscriptions, plan changes and fee invoices in memory; ``complete_checkout``
  plays the customer paying. Requests with an ``idempotency_key`` already used return the
  first answer, as Stripe replays them.
* :class:`FakeBtcpay` (:class:`~vanta.application.ports.billing.BtcpayInvoicing`): invoices
  in memory; a live invoice for an ``order_id`` is reused, as the port promises.
* :class:`FakeVerifier` (:class:`~vanta.application.ports.billing.WebhookVerifier`), one per
  provider: ``sign(event)`` returns a body and signature for a provider-neutral
  :class:`InboundEvent`, and ``verify`` gives that event back, or refuses with the port's
  reasons: ``missing_signature``, ``bad_signature`` (checked before anything is parsed),
  ``malformed`` (a body it never signed) and ``stale`` (signed with ``stale=True``).

Both providers record their calls and take scripted failures (``fail_next``) so the retry and
error paths (``BillingUnavailable``, ``BillingAuthFailed``, ``BillingRejected``) can be
driven. Nothing here is Stripe or BTCPay: ``tests/contract/test_billing_provider_contract.py``
and ``test_billing_verifier_contract.py`` hold the fakes to what the real adapters do against
the local simulators of ``tests/integration/billing_fakes.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from vanta.application.ports.billing import BillingError, BillingEventRejected, BillingRejected
from vanta.application.ports.billing_facts import (
    FeeInvoice,
    InboundEvent,
    PaidInvoice,
    RefundReceipt,
    SubscriptionSnapshot,
)
from vanta.application.ports.clock import Clock, utcnow
from vanta.domain.errors import ValidationFailed
from vanta.domain.subscriptions import SubscriptionStatus

__all__ = ["FakeBtcpay", "FakeStripe", "FakeVerifier"]

PRORATIONS = frozenset({"create_prorations", "none", "always_invoice"})
_CURRENCY = re.compile(r"^[a-z]{3}$")
_LIVE = frozenset({"New", "Processing", "Settled"})

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_fake{next(_ids):06d}"


@dataclass
class _Scripted:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: list[BillingError] = field(default_factory=list)
    closed: bool = False

    def fail_next(self, error: BillingError, times: int = 1) -> None:
        self.failures.extend([error] * times)

    def _call(self, name: str, **args: Any) -> None:
        self.calls.append((name, args))
        if self.failures:
            raise self.failures.pop(0)

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeStripe(_Scripted):
    """Validates its arguments and refuses unknown plans, customers and subscriptions as
    :class:`~vanta.adapters.billing.stripe_gateway.StripeGateway` does (``ValidationFailed``,
    ``BillingRejected("resource_missing")``); a fee key reused for a different invoice is
    ``BillingRejected("idempotency_error")``, as Stripe answers it."""

    clock: Clock = utcnow
    plans: frozenset[str] = frozenset({"core", "pro", "institutional"})
    customers: set[str] = field(default_factory=set)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionSnapshot] = field(default_factory=dict)
    invoices: dict[str, tuple[tuple[Any, ...], FeeInvoice]] = field(default_factory=dict)
    # invoice ref -> {"customer", "currency", "paid_cents", "refunded_cents"}
    paid: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, RefundReceipt] = field(default_factory=dict)  # by idempotency key
    _replies: dict[str | None, tuple[str, str]] = field(default_factory=dict, init=False)

    def add_customer(self) -> str:
        ref = _id("cus")
        self.customers.add(ref)
        return ref

    async def create_checkout_session(
        self, customer_ref: str | None, tenant_id: str, plan_id: str, success_url: str,
        cancel_url: str, *, idempotency_key: str | None = None,
    ) -> tuple[str, str]:
        if not tenant_id:
            raise ValidationFailed("tenant_id is required", code="invalid_tenant",
                                   field="tenant_id")
        self._check_plan(plan_id)
        self._call("create_checkout_session", tenant_id=tenant_id, plan_id=plan_id)
        if idempotency_key in self._replies:
            return self._replies[idempotency_key]
        if customer_ref is not None:
            self._check_customer(customer_ref)
        sid = _id("cs")
        self.sessions[sid] = {"customer_ref": customer_ref, "tenant_id": tenant_id,
                              "plan_id": plan_id}
        reply = (sid, f"https://checkout.fake.test/{sid}")
        if idempotency_key is not None:
            self._replies[idempotency_key] = reply
        return reply

    def complete_checkout(self, session_id: str) -> SubscriptionSnapshot:
        """The customer paid: the session becomes an active subscription (returned)."""
        s = self.sessions[session_id]
        customer = s["customer_ref"] or self.add_customer()
        snap = SubscriptionSnapshot(
            tenant_id=s["tenant_id"], subscription_ref=_id("sub"), customer_ref=customer,
            status=SubscriptionStatus.ACTIVE, plan_id=s["plan_id"],
            current_period_end=self.clock() + timedelta(days=30))
        self.subscriptions[snap.subscription_ref] = snap
        return snap

    async def get_subscription(self, subscription_ref: str) -> SubscriptionSnapshot:
        self._call("get_subscription", subscription_ref=subscription_ref)
        return self._subscription(subscription_ref)

    async def change_plan(
        self, subscription_ref: str, plan_id: str, proration: str = "create_prorations", *,
        idempotency_key: str | None = None,
    ) -> SubscriptionSnapshot:
        if proration not in PRORATIONS:
            raise ValueError(f"proration must be one of {sorted(PRORATIONS)}")
        self._check_plan(plan_id)
        self._call("change_plan", subscription_ref=subscription_ref, plan_id=plan_id,
                   proration=proration)
        snap = replace(self._subscription(subscription_ref), plan_id=plan_id)
        self.subscriptions[subscription_ref] = snap
        return snap

    async def cancel(self, subscription_ref: str, *, at_period_end: bool = False,
                     ) -> SubscriptionSnapshot:
        self._call("cancel", subscription_ref=subscription_ref, at_period_end=at_period_end)
        snap = self._subscription(subscription_ref)
        if snap.status is not SubscriptionStatus.CANCELED:
            snap = replace(snap, cancel_at_period_end=True) if at_period_end \
                else replace(snap, status=SubscriptionStatus.CANCELED)
        elif at_period_end:
            raise BillingRejected("A canceled subscription can only update its "
                                  "cancellation_details and metadata.", status=400)
        self.subscriptions[subscription_ref] = snap
        return snap

    async def resume(self, subscription_ref: str) -> SubscriptionSnapshot:
        self._call("resume", subscription_ref=subscription_ref)
        snap = self._subscription(subscription_ref)
        if snap.status is SubscriptionStatus.CANCELED:
            raise BillingRejected("A canceled subscription can only update its "
                                  "cancellation_details and metadata.", status=400)
        snap = replace(snap, cancel_at_period_end=False)
        self.subscriptions[subscription_ref] = snap
        return snap

    async def create_invoice_for_fee(
        self, customer_ref: str, amount_cents: int, currency: str, description: str,
        idempotency_key: str,
    ) -> FeeInvoice:
        _check_fee(amount_cents, currency, idempotency_key)
        self._call("create_invoice_for_fee", customer_ref=customer_ref,
                   amount_cents=amount_cents, currency=currency)
        request = (customer_ref, amount_cents, currency.lower(), description)
        known = self.invoices.get(idempotency_key)
        if known is not None:
            if known[0] != request:
                raise BillingRejected("idempotency key reused with other parameters",
                                      code="idempotency_error", status=400)
            return known[1]
        self._check_customer(customer_ref)
        ref = _id("in")
        invoice = FeeInvoice(ref, "open", amount_cents, currency.lower(),
                             f"https://invoice.fake.test/{ref}")
        self.invoices[idempotency_key] = (request, invoice)
        return invoice

    def pay(self, invoice_ref: str | None = None, *, customer_ref: str | None = None,
            amount_cents: int = 0, currency: str = "usd") -> str:
        """A fee invoice (by ref) was paid in full, or a new paid invoice for a customer."""
        if invoice_ref is not None:
            fee = next(inv for _, inv in self.invoices.values() if inv.invoice_ref == invoice_ref)
            customer = next(req[0] for req, inv in self.invoices.values()
                            if inv.invoice_ref == invoice_ref)
            self.paid[invoice_ref] = {"customer": customer, "currency": fee.currency,
                                      "paid_cents": fee.amount_due_cents, "refunded_cents": 0}
            return invoice_ref
        ref = _id("in")
        self.paid[ref] = {"customer": customer_ref, "currency": currency,
                          "paid_cents": amount_cents, "refunded_cents": 0}
        return ref

    async def paid_invoice(self, invoice_ref: str) -> PaidInvoice:
        self._call("paid_invoice", invoice_ref=invoice_ref)
        inv = self.paid.get(invoice_ref)
        if inv is None:
            raise BillingRejected(f"No such invoice: {invoice_ref!r}", code="resource_missing",
                                  status=404, param="id")
        return PaidInvoice(invoice_ref, inv["customer"], Decimal(inv["paid_cents"]) / 100,
                           Decimal(inv["refunded_cents"]) / 100, inv["currency"])

    async def refund(self, invoice_ref: str, amount: Decimal, *, reason: str | None = None,
                     idempotency_key: str | None = None) -> RefundReceipt:
        """Stripe's rules: whole cents, never more than the charge has left."""
        cents = amount * 100
        if cents != cents.to_integral_value() or cents <= 0:
            raise ValidationFailed("amount must be a positive number of cents",
                                   code="invalid_amount", field="amount")
        self._call("refund", invoice_ref=invoice_ref, amount=amount, reason=reason)
        if idempotency_key is not None and idempotency_key in self.refunds:
            return self.refunds[idempotency_key]
        inv = self.paid.get(invoice_ref)
        if inv is None:
            raise BillingRejected(f"No such invoice: {invoice_ref!r}", code="resource_missing",
                                  status=404, param="invoice")
        if inv["refunded_cents"] + int(cents) > inv["paid_cents"]:
            raise BillingRejected("Refund amount is greater than unrefunded amount on charge",
                                  code="amount_too_large", status=400, param="amount")
        inv["refunded_cents"] += int(cents)
        receipt = RefundReceipt(_id("re"), amount, "succeeded")
        if idempotency_key is not None:
            self.refunds[idempotency_key] = receipt
        return receipt

    def _check_plan(self, plan_id: str) -> None:
        if plan_id not in self.plans:
            raise ValidationFailed(f"no Stripe price for plan {plan_id!r}",
                                   code="unknown_plan", field="plan_id")

    def _check_customer(self, ref: str) -> None:
        if ref not in self.customers:
            raise BillingRejected(f"No such customer: {ref!r}", code="resource_missing",
                                  status=400, param="customer")

    def _subscription(self, ref: str) -> SubscriptionSnapshot:
        try:
            return self.subscriptions[ref]
        except KeyError:
            raise BillingRejected(f"No such subscription: {ref!r}", code="resource_missing",
                                  status=404, param="id") from None


def _check_fee(amount_cents: int, currency: str, idempotency_key: str) -> None:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) \
            or amount_cents <= 0:
        raise ValidationFailed("amount_cents must be a positive integer",
                               code="invalid_amount", field="amount_cents")
    if not _CURRENCY.match(currency.lower()):
        raise ValidationFailed("currency must be a three-letter ISO code",
                               code="invalid_currency", field="currency")
    if not idempotency_key or len(idempotency_key) > 240:
        raise ValidationFailed("idempotency_key must have 1 to 240 characters",
                               code="invalid_idempotency_key", field="idempotency_key")


@dataclass
class FakeBtcpay(_Scripted):
    """Checks amounts and currencies as
    :class:`~vanta.adapters.billing.btcpay.BtcpayClient` does, reuses a live invoice (New,
    Processing, Settled) of the same order and refuses one for another amount
    (``BillingRejected("order_id_conflict")``)."""

    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)  # by invoice id

    async def create_invoice(
        self, store_id: str, amount: Decimal, currency: str, order_id: str,
        metadata: Mapping[str, Any] | None = None, redirect_url: str | None = None,
    ) -> tuple[str, str]:
        value = _amount(amount)
        if not currency or not currency.isalnum() or len(currency) > 10:
            raise ValueError("currency must be a short alphanumeric code such as USD or BTC")
        if not order_id:
            raise ValueError("order_id is required")
        self._call("create_invoice", store_id=store_id, amount=value, order_id=order_id)
        for iid, inv in self.invoices.items():
            if inv["order_id"] != order_id or inv["status"] not in _LIVE:
                continue
            if inv["amount"] != value or inv["currency"] != currency.upper():
                raise BillingRejected(f"order {order_id!r} already has invoice {iid}",
                                      code="order_id_conflict")
            return iid, inv["link"]
        iid = _id("btc")
        self.invoices[iid] = {"store_id": store_id, "amount": value,
                              "currency": currency.upper(), "order_id": order_id,
                              "metadata": dict(metadata or {}), "status": "New",
                              "link": f"https://btcpay.fake.test/i/{iid}"}
        return iid, self.invoices[iid]["link"]

    def set_status(self, invoice_id: str, status: str) -> None:
        """Move an invoice on (``Expired`` and ``Invalid`` are no longer reused)."""
        self.invoices[invoice_id]["status"] = status

    async def paid_invoice(self, store_id: str, invoice_id: str) -> PaidInvoice:
        self._call("paid_invoice", store_id=store_id, invoice_id=invoice_id)
        inv = self.invoices.get(invoice_id)
        if inv is None or inv["store_id"] != store_id:
            raise BillingRejected(f"invoice {invoice_id} not found", code="not_found",
                                  status=404)
        paid = inv["amount"] if inv["status"] == "Settled" else Decimal(0)
        owner = inv["metadata"].get("tenant_id")
        return PaidInvoice(invoice_id, owner if isinstance(owner, str) else None, paid,
                           inv.get("refunded", Decimal(0)), inv["currency"])

    async def refund(self, store_id: str, invoice_id: str, amount: Decimal, currency: str, *,
                     reason: str | None = None) -> RefundReceipt:
        value = _amount(amount)
        self._call("refund", store_id=store_id, invoice_id=invoice_id, amount=value,
                   reason=reason)
        inv = self.invoices.get(invoice_id)
        if inv is None or inv["store_id"] != store_id:
            raise BillingRejected(f"invoice {invoice_id} not found", code="not_found",
                                  status=404)
        if inv["status"] != "Settled":
            raise BillingRejected("only a settled invoice can be refunded", code="validation",
                                  status=422)
        inv["refunded"] = inv.get("refunded", Decimal(0)) + value
        return RefundReceipt(_id("pp"), value, "pending")


def _amount(value: Decimal | str | int) -> Decimal:
    if isinstance(value, bool | float):
        raise TypeError("amount must be a Decimal, str or int, never a float")
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"amount {value!r} is not a number") from None
    if not d.is_finite() or d <= 0:
        raise ValueError("amount must be a positive number")
    return d


@dataclass
class FakeVerifier:
    """Signs and verifies deliveries for one ``provider`` (``stripe`` or ``btcpay``)."""

    provider: str
    secret: str = "fake-webhook-secret"
    _signed: dict[str, tuple[InboundEvent, bool]] = field(default_factory=dict, init=False)

    def sign(self, event: InboundEvent, *, stale: bool = False,
             at: datetime | None = None) -> tuple[bytes, str]:
        if event.provider != self.provider:
            raise ValueError(f"a {event.provider} event for the {self.provider} verifier")
        token = _id("dlv")
        body = json.dumps({"delivery": token, "id": event.event_id,
                           "type": event.event_type,
                           "at": (at or utcnow()).isoformat()}).encode()
        self._signed[token] = (event, stale)
        return body, self.signature(body)

    def signature(self, body: bytes, secret: str | None = None) -> str:
        key = (secret or self.secret).encode()
        return "v1=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def verify(self, body: bytes, signature: str | None) -> InboundEvent:
        if not signature:
            raise BillingEventRejected("missing_signature")
        if not hmac.compare_digest(signature, self.signature(body)):
            raise BillingEventRejected("bad_signature")
        try:
            token = json.loads(body)["delivery"]
            event, stale = self._signed[token]
        except (ValueError, KeyError, TypeError):
            raise BillingEventRejected("malformed") from None
        if stale:
            raise BillingEventRejected("stale")
        return event
