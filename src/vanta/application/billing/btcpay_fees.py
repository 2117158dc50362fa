"""Applying verified BTCPay facts about performance-fee invoices.

A fee invoice (``vanta.application.fee_invoicing``) is known by the ``fee_key`` in its
metadata, or by its id on a fee ledger row. Like a Stripe fee invoice's payment, its outcome is
recorded in the audit log against the fee period (``fee_invoice_paid`` once settled or paid
late in full, else ``fee_invoice_expired`` / ``_invalid`` / ``_late_payment``); it never
touches the subscription, so a paid fee cannot start or extend a plan period.
"""

from __future__ import annotations

from vanta.application.ports.billing import BillingUnitOfWork, BtcpayInvoiceFact, BtcpayOutcome
from vanta.application.ports.records_billing import FeePeriodRecord

_OUTCOMES = {BtcpayOutcome.SETTLED: "paid", BtcpayOutcome.EXPIRED: "expired",
             BtcpayOutcome.INVALID: "invalid"}


async def apply_btcpay_fee(uow: BillingUnitOfWork, tenant_id: str, fact: BtcpayInvoiceFact,
                           ledger: FeePeriodRecord | None) -> tuple[None, str]:
    """Record a fee invoice's outcome: ``(None, outcome)`` (no subscription changes)."""
    state = _OUTCOMES.get(fact.outcome)
    if fact.is_late_payment:
        # confirmed money after expiry that covers the fee still pays it; else a person looks
        short = fact.price is not None and fact.payment_value is not None and \
            fact.payment_value < fact.price
        settled = fact.outcome is BtcpayOutcome.PAYMENT_SETTLED
        state = "paid" if settled and not short else "late_payment"
    if state is None:
        return None, "fee_invoice_recorded"
    review = fact.over_paid or fact.partially_paid or fact.is_late_payment or \
        fact.manually_marked
    await uow.audit.append(
        entity="fee_invoice", entity_id=fact.invoice_id[:64],
        action=f"fee_invoice_{state}", actor="btcpay", tenant_id=tenant_id,
        payload={"provider": "btcpay", "event_type": fact.event_type,
                 "delivery_id": fact.delivery_id, "fee_key": fact.fee_key,
                 "follower_id": ledger.follower_id if ledger else None,
                 "period_label": ledger.period_label if ledger else None,
                 "payment_value": format(fact.payment_value, "f")
                 if fact.payment_value is not None else None, "review": review})
    return None, f"fee_invoice_{state}"
