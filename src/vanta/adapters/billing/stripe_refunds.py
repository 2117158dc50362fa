"""Stripe refunds of an invoice's payment (API ``2025-03-31.basil`` shapes and later).

An invoice no longer names its charge: its paid ``invoice_payments`` name the PaymentIntents
that paid it. What was refunded is the sum of those PaymentIntents' refunds that did not fail
or get canceled; a refund is a ``POST /v1/refunds`` against the PaymentIntent with the most
left to give back. Amounts cross the port in major units; Stripe counts minor units (none
for its zero-decimal currencies).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import stripe

from vanta.adapters.billing.stripe_sdk import call, options
from vanta.application.ports.billing import BillingRejected
from vanta.application.ports.billing_facts import PaidInvoice, RefundReceipt
from vanta.domain.errors import ValidationFailed

# https://docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL: Final = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
                                 "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})
_LIVE_REFUND: Final = frozenset({"succeeded", "pending", "requires_action"})


def _unit(currency: str) -> Decimal:
    return Decimal(1) if currency.lower() in ZERO_DECIMAL else Decimal(100)


def to_minor(amount: Decimal, currency: str) -> int:
    minor = amount * _unit(currency)
    if minor <= 0 or minor != minor.to_integral_value():
        raise ValidationFailed(f"amount must be a positive number of whole "
                               f"{currency.upper()} minor units", code="invalid_amount",
                               field="amount")
    return int(minor)


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor) / _unit(currency)


async def _intents(client: stripe.StripeClient, invoice_ref: str) -> dict[str, int]:
    """Each PaymentIntent that paid the invoice → what is left of it to refund (minor)."""
    payments = await call(client.v1.invoice_payments.list_async(
        {"invoice": invoice_ref, "limit": 100}))
    left: dict[str, int] = {}
    for p in payments.get("data") or []:
        pay = p.get("payment") or {}
        pi = pay.get("payment_intent")
        pi = pi.get("id") if isinstance(pi, dict) else pi
        if p.get("status") != "paid" or not isinstance(pi, str):
            continue
        refunds = await call(client.v1.refunds.list_async({"payment_intent": pi,
                                                           "limit": 100}))
        done = sum(int(r.get("amount") or 0) for r in refunds.get("data") or []
                   if r.get("status") in _LIVE_REFUND)
        left[pi] = int(p.get("amount_paid") or 0) - done
    return left


async def paid_invoice(client: stripe.StripeClient, invoice_ref: str) -> PaidInvoice:
    inv = await call(client.v1.invoices.retrieve_async(invoice_ref))
    currency = str(inv.get("currency") or "usd")
    paid = int(inv.get("amount_paid") or 0)
    left = sum((await _intents(client, invoice_ref)).values()) if paid else 0
    customer = inv.get("customer")
    customer = customer.get("id") if isinstance(customer, dict) else customer
    return PaidInvoice(invoice_ref, customer if isinstance(customer, str) else None,
                       to_major(paid, currency), to_major(paid - left, currency), currency)


async def refund(client: stripe.StripeClient, invoice_ref: str, amount: Decimal, *,
                 currency: str, reason: str | None, idempotency_key: str | None,
                 ) -> RefundReceipt:
    minor = to_minor(amount, currency)
    left = await _intents(client, invoice_ref)
    if not left or max(left.values()) < minor:
        raise BillingRejected("no single payment of the invoice has that much left to "
                              "refund", code="amount_too_large", param="amount")
    pi = max(left, key=lambda k: left[k])
    metadata = {"vanta_invoice": invoice_ref, **({"vanta_reason": reason[:500]}
                                                 if reason else {})}
    params: dict[str, Any] = {"payment_intent": pi, "amount": minor,
                              "reason": "requested_by_customer", "metadata": metadata}
    r = await call(client.v1.refunds.create_async(
        params, options(idempotency_key)))  # type: ignore[arg-type]
    return RefundReceipt(str(r["id"]), to_major(int(r.get("amount") or minor), currency),
                         str(r.get("status") or "pending"))
