"""What the payment providers tell the application, as plain data it owns.

The adapters (``vanta.adapters.billing``) turn Stripe objects and BTCPay deliveries into these
values; the application never sees a provider's own types.

* ``SubscriptionSnapshot``: a subscription as read from the provider's API.
* ``SubscriptionFact`` / ``PaymentFact`` / ``RefundFact``: what a verified Stripe event states.
* ``BtcpayInvoiceFact``: what a verified BTCPay invoice delivery states.
* ``InboundEvent``: one verified delivery (its de-duplication id, type and fact, if any).
* ``FeeInvoice``: the invoice a performance fee was billed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from vanta.domain.subscriptions import SubscriptionStatus

__all__ = [
    "BillingFact",
    "BtcpayInvoiceFact",
    "BtcpayOutcome",
    "FeeInvoice",
    "InboundEvent",
    "PaidInvoice",
    "PaymentFact",
    "PaymentOutcome",
    "RefundFact",
    "RefundReceipt",
    "SubscriptionFact",
    "SubscriptionSnapshot",
]


@dataclass(frozen=True, slots=True)
class SubscriptionSnapshot:
    """A subscription as read from the API (no event around it)."""

    tenant_id: str | None
    subscription_ref: str
    customer_ref: str | None
    status: SubscriptionStatus
    plan_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool = False
    price_ref: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionFact:
    tenant_id: str | None
    subscription_ref: str
    customer_ref: str | None
    status: SubscriptionStatus
    plan_id: str | None
    current_period_end: datetime | None
    event_created: datetime
    event_id: str = ""
    event_type: str = ""
    cancel_at_period_end: bool = False
    status_is_inferred: bool = False

    def supersedes(self, last_event_created: datetime | None) -> bool:
        """Apply this fact? Yes unless a strictly newer fact was already applied.

        Stripe timestamps have one-second resolution; facts of the same second are applied in
        arrival order (equal timestamps supersede).
        """
        return last_event_created is None or self.event_created >= last_event_created


class PaymentOutcome(StrEnum):
    PAID = "paid"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PaymentFact:
    invoice_ref: str
    customer_ref: str | None
    subscription_ref: str | None
    tenant_id: str | None
    outcome: PaymentOutcome
    amount_cents: int  # amount_paid when paid, amount_due when failed
    currency: str | None
    event_created: datetime
    event_id: str = ""
    event_type: str = ""
    fee_key: str | None = None  # set on invoices made by create_invoice_for_fee
    billing_reason: str | None = None
    attempt_count: int | None = None
    next_payment_attempt: datetime | None = None

    @property
    def dedupe_key(self) -> tuple[str, str]:
        return (self.invoice_ref, self.outcome.value)


@dataclass(frozen=True, slots=True)
class RefundFact:
    charge_ref: str
    payment_intent_ref: str | None
    customer_ref: str | None
    invoice_ref: str | None  # only on older API versions (the charge's ``invoice`` field)
    tenant_id: str | None
    amount_cents: int
    amount_refunded_cents: int  # cumulative over every refund of the charge
    currency: str | None
    fully_refunded: bool
    event_created: datetime
    event_id: str = ""
    event_type: str = ""


BillingFact = SubscriptionFact | PaymentFact | RefundFact


class BtcpayOutcome(StrEnum):
    PAYMENT_RECEIVED = "payment_received"
    PAYMENT_SETTLED = "payment_settled"
    PROCESSING = "processing"
    SETTLED = "settled"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class BtcpayInvoiceFact:
    invoice_id: str
    store_id: str | None
    outcome: BtcpayOutcome
    event_at: datetime
    dedupe_key: str
    tenant_id: str | None = None  # from the invoice metadata, when the webhook carries it
    order_id: str | None = None
    after_expiration: bool = False
    manually_marked: bool = False
    over_paid: bool = False
    partially_paid: bool = False
    payment_id: str | None = None
    payment_value: Decimal | None = None
    payment_method: str | None = None
    event_type: str = ""
    delivery_id: str = ""
    plan_id: str | None = None  # the invoice metadata's plan_id (set by our invoices)
    price: Decimal | None = None  # the invoice metadata's amount: the plan's price
    fee_key: str | None = None  # the invoice metadata's fee_key: a performance-fee invoice

    @property
    def grants_access(self) -> bool:
        return self.outcome is BtcpayOutcome.SETTLED

    @property
    def is_late_payment(self) -> bool:
        return self.after_expiration and self.outcome in (
            BtcpayOutcome.PAYMENT_RECEIVED, BtcpayOutcome.PAYMENT_SETTLED)

    @property
    def needs_review(self) -> bool:
        """Money arrived that the invoice's status does not account for."""
        return self.is_late_payment or self.over_paid or (
            self.outcome is BtcpayOutcome.EXPIRED and self.partially_paid)


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One verified webhook delivery.

    ``event_id`` is the provider's de-duplication id (shared by redeliveries); ``fact`` is
    ``None`` for an event type Vanta records but does not act on."""

    provider: str
    event_id: str
    event_type: str
    fact: BillingFact | BtcpayInvoiceFact | None


@dataclass(frozen=True, slots=True)
class FeeInvoice:
    invoice_ref: str
    status: str | None  # "open" once finalized
    amount_due_cents: int
    currency: str
    hosted_invoice_url: str | None


@dataclass(frozen=True, slots=True)
class PaidInvoice:
    """A provider invoice as a refund sees it; amounts in major units (e.g. dollars).

    ``owner_ref`` is who the provider says the invoice belongs to: the Stripe customer id,
    or the tenant id BTCPay holds in the invoice metadata."""

    invoice_ref: str
    owner_ref: str | None
    paid: Decimal
    refunded: Decimal
    currency: str

    @property
    def refundable(self) -> Decimal:
        return max(self.paid - self.refunded, Decimal(0))


@dataclass(frozen=True, slots=True)
class RefundReceipt:
    refund_ref: str
    amount: Decimal
    status: str  # the provider's word: succeeded, pending, ...
