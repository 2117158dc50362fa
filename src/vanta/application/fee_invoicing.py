"""Invoicing a closed fee period through the tenant's payment provider.

The provider is the tenant's subscription's: a Stripe subscription gets a Stripe invoice
charged to its customer (``create_invoice_for_fee``); a BTCPay subscription gets a BTCPay
invoice for the fee (``create_invoice``) whose order id is the fee key, so a retry reuses the
open invoice, and whose metadata names the fee period (``FEE_KIND`` marks it as a fee, not a
plan payment). Either way the call happens *after* the ledger row is committed (no transaction
is held open over a network call) and the invoice reference is then stored on the row; if the
provider fails, the row stays without an invoice and closing the same label again retries
with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from vanta.application.ports.billing import (
    BillingError,
    BillingUnitOfWork,
    BtcpayInvoicing,
    StripeBilling,
)
from vanta.application.ports.records_billing import FeePeriodRecord
from vanta.domain.fees import CENT

# the BTCPay invoice metadata ``kind`` of a performance-fee invoice
FEE_KIND: Final = "performance_fee"


@dataclass(frozen=True)
class FeeInvoicers:
    """The providers a fee can be invoiced through; ``None`` = not configured."""

    stripe: StripeBilling | None = None
    btcpay: BtcpayInvoicing | None = None
    btcpay_store_id: str | None = None
    currency: str = "usd"


@dataclass(frozen=True)
class _Issued:
    provider: str
    ref: str
    payload: dict[str, Any]


async def issue_fee_invoice(uow: BillingUnitOfWork, row: FeePeriodRecord, *, tenant_id: str,
                            invoicers: FeeInvoicers, key: str) -> _Issued | str:
    """Ask the tenant's provider for the invoice: what was issued, or why nothing was."""
    async with uow:
        sub = await uow.subscriptions.current(tenant_id)
    description = (f"Vanta performance fee, follower {row.follower_id}, period "
                   f"{row.period_label}")
    if sub is not None and sub.provider == "btcpay":
        return await _btcpay(row, tenant_id=tenant_id, invoicers=invoicers, key=key,
                             description=description)
    if invoicers.stripe is None:
        return "no_provider"
    if sub is None or sub.provider != "stripe" or not sub.customer_ref:
        return "no_billing_customer"
    cents = int((row.fee * 100).to_integral_value())
    try:
        inv = await invoicers.stripe.create_invoice_for_fee(
            sub.customer_ref, cents, invoicers.currency, description, key)
    except BillingError as e:
        return f"pending_retry:{e.code}"
    return _Issued("stripe", inv.invoice_ref,
                   {"amount_cents": cents, "currency": inv.currency, "status": inv.status})


async def _btcpay(row: FeePeriodRecord, *, tenant_id: str, invoicers: FeeInvoicers,
                  key: str, description: str) -> _Issued | str:
    client, store = invoicers.btcpay, invoicers.btcpay_store_id
    if client is None or not store:
        return "no_provider"
    amount: Decimal = row.fee.quantize(CENT)
    currency = invoicers.currency.upper()
    metadata = {"tenant_id": tenant_id, "kind": FEE_KIND, "fee_key": key,
                "follower_id": row.follower_id, "period_label": row.period_label,
                "amount": format(amount, "f"), "currency": currency,
                "itemDesc": description}
    try:
        invoice_id, link = await client.create_invoice(store, amount, currency, key, metadata)
    except BillingError as e:
        return f"pending_retry:{e.code}"
    return _Issued("btcpay", invoice_id,
                   {"amount": format(amount, "f"), "currency": currency,
                    "checkout_url": link})
