"""Refund a paid invoice, in full or in part, through the provider that collected it.

Vanta keeps no local copy of provider invoices, so the invoice is looked up at the provider
and must belong to the caller's tenant, else it is "not found" (as for any hidden resource):

* which provider: the fee ledger's record of the invoice when it is a performance-fee
  invoice; otherwise Stripe for Stripe-shaped ids (``in_...``) and BTCPay for the rest;
* whose: a Stripe invoice's customer must be the customer of one of the tenant's
  subscription rows; a BTCPay invoice must carry the tenant in its metadata (as every invoice
  Vanta creates does).

What is refundable is what the provider says was paid minus what it says was refunded; a
larger amount is refused (``refund_exceeds_paid``) before anything is sent. Every refund is
audited (entity ``invoice``); a fee invoice's refunded total is written to its fee-ledger row.
Two refunds racing past the check are bounded by the provider, which refuses to give back
more than was charged.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from vanta.application.billing.common import UowFactory
from vanta.application.billing.providers import BillingProviders, ProviderNotConfigured
from vanta.application.ports.billing import BillingRejected
from vanta.application.ports.billing_facts import PaidInvoice, RefundReceipt
from vanta.application.ports.records_billing import FeePeriodRecord
from vanta.domain.errors import NotFound, ValidationFailed

MAX_REASON = 500
_MISSING = frozenset({"resource_missing", "not_found"})


def _not_found(invoice_id: str) -> NotFound:
    return NotFound(f"invoice {invoice_id!r} not found", code="invoice_not_found")


async def refund_invoice(uow_factory: UowFactory, providers: BillingProviders, *,
                         tenant_id: str, invoice_id: str, amount: Decimal | None,
                         reason: str | None, actor: str,
                         idempotency_key: str | None = None) -> dict[str, Any]:
    """Refund ``amount`` (everything still refundable when ``None``) of the invoice."""
    if amount is not None and (not amount.is_finite() or amount <= 0):
        raise ValidationFailed("amount must be a positive number", code="invalid_amount",
                               field="amount")
    if reason is not None and len(reason) > MAX_REASON:
        raise ValidationFailed(f"reason must have at most {MAX_REASON} characters",
                               code="invalid_reason", field="reason")
    async with uow_factory() as uow:
        fee_row = await uow.fee_ledger.by_invoice_ref(tenant_id, invoice_id)
    provider = fee_row.invoice_provider if fee_row and fee_row.invoice_provider else (
        "stripe" if invoice_id.startswith("in_") else "btcpay")
    invoice = await _owned_invoice(uow_factory, providers, provider, tenant_id, invoice_id)
    refundable = invoice.refundable
    wanted = refundable if amount is None else amount
    if wanted <= 0 or wanted > refundable:
        raise ValidationFailed(
            f"at most {refundable} {invoice.currency.upper()} of this invoice can be refunded",
            code="refund_exceeds_paid", field="amount")
    receipt = await _send(providers, provider, invoice, wanted, reason, tenant_id,
                          idempotency_key)
    # Read the total back rather than adding: a retry the provider answered from its
    # idempotency cache refunded nothing new.
    total = (await _read(providers, provider, invoice_id)).refunded
    async with uow_factory() as uow:
        await uow.audit.append(
            entity="invoice", entity_id=invoice_id[:64], action="refunded", actor=actor,
            tenant_id=tenant_id,
            payload={"provider": provider, "refund_ref": receipt.refund_ref,
                     "amount": _money(receipt.amount), "currency": invoice.currency,
                     "refunded_total": _money(total), "reason": reason,
                     "fee_period": fee_row.period_label if fee_row else None})
        if fee_row is not None:
            await uow.fee_ledger.set_refunded(fee_row.id, total)
        await uow.commit()
    return _answer(invoice, provider, receipt, total, fee_row)


async def _owned_invoice(uow_factory: UowFactory, providers: BillingProviders, provider: str,
                         tenant_id: str, invoice_id: str) -> PaidInvoice:
    try:
        invoice = await _read(providers, provider, invoice_id)
    except BillingRejected as e:
        if e.code in _MISSING:
            raise _not_found(invoice_id) from None
        raise
    if invoice.owner_ref is None:
        raise _not_found(invoice_id)
    if provider == "btcpay":
        owned = invoice.owner_ref == tenant_id
    else:
        async with uow_factory() as uow:
            row = await uow.billing_subscriptions.by_customer_ref(invoice.owner_ref)
        owned = row is not None and row.get("tenant_id") == tenant_id
    if not owned:
        raise _not_found(invoice_id)
    return invoice


async def _read(providers: BillingProviders, provider: str, invoice_id: str) -> PaidInvoice:
    if provider == "stripe":
        if providers.stripe is None:
            raise ProviderNotConfigured("Stripe is not configured")
        return await providers.stripe.paid_invoice(invoice_id)
    if providers.btcpay is None or not providers.btcpay_store_id:
        raise ProviderNotConfigured("BTCPay is not configured")
    return await providers.btcpay.paid_invoice(providers.btcpay_store_id, invoice_id)


async def _send(providers: BillingProviders, provider: str, invoice: PaidInvoice,
                amount: Decimal, reason: str | None, tenant_id: str,
                idempotency_key: str | None) -> RefundReceipt:
    if provider == "stripe":
        assert providers.stripe is not None  # checked by _owned_invoice
        # the caller's key is scoped to the tenant and invoice, and hashed to fit Stripe's
        # 255 characters
        key = "refund:" + hashlib.sha256(
            f"{tenant_id}|{invoice.invoice_ref}|{idempotency_key}".encode()).hexdigest() \
            if idempotency_key else None
        return await providers.stripe.refund(invoice.invoice_ref, amount, reason=reason,
                                             idempotency_key=key)
    assert providers.btcpay is not None and providers.btcpay_store_id
    return await providers.btcpay.refund(providers.btcpay_store_id, invoice.invoice_ref,
                                         amount, invoice.currency, reason=reason)


def _money(value: Decimal) -> str:
    """At least two decimal places (``12.50``), more only when the amount has them."""
    d = value.normalize()
    exp = d.as_tuple().exponent
    if isinstance(exp, int) and exp > -2:
        d = d.quantize(Decimal("0.01"))
    return format(d, "f")


def _answer(invoice: PaidInvoice, provider: str, receipt: RefundReceipt, total: Decimal,
            fee_row: FeePeriodRecord | None) -> dict[str, Any]:
    return {"invoice_id": invoice.invoice_ref, "provider": provider,
            "refund_id": receipt.refund_ref, "status": receipt.status,
            "amount": _money(receipt.amount), "currency": invoice.currency,
            "paid": _money(invoice.paid), "refunded_total": _money(total),
            "refundable": _money(max(invoice.paid - total, Decimal(0))),
            "fee_period": fee_row.period_label if fee_row else None}
