"""Billing ports: the payment providers, the billing repositories and their errors.

Adapters implement these (``vanta.adapters.billing`` for the providers,
``vanta.adapters.db.billing_repositories`` for the tables); ``vanta.bootstrap.billing`` picks
them for the settings. The values that cross these ports are in ``billing_facts``.

Errors::

    BillingError                 base; ``code`` is stable and machine-readable
    ├── BillingEventRejected     an inbound webhook failed verification; ``reason`` is one of
    │                            ``missing_signature``, ``bad_signature``, ``stale``, ``malformed``
    ├── BillingUnavailable       the provider could not be reached, timed out, rate-limited us or
    │                            answered 5xx: retry later (``retry_after`` when it said)
    ├── BillingAuthFailed        the provider refused our credentials (401/403)
    └── BillingRejected          the provider refused the request (4xx): retrying the same
                                 request will not help; ``status`` and ``param`` say why
    BillingConflict              a billing row's unique key is taken (a concurrent writer won)

Messages never carry API keys, webhook secrets or signature values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, Protocol, Self

from vanta.application.ports.billing_facts import (
    BillingFact,
    BtcpayInvoiceFact,
    BtcpayOutcome,
    FeeInvoice,
    InboundEvent,
    PaidInvoice,
    PaymentFact,
    PaymentOutcome,
    RefundFact,
    RefundReceipt,
    SubscriptionFact,
    SubscriptionSnapshot,
)
from vanta.application.ports.records_billing import FeePeriodRecord, FlowRecord, InboxRecord
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_tenancy import SubscriptionRecord, TenantRecord
from vanta.application.ports.uow import Conflict

__all__ = [
    "BTCPAY_SIGNATURE_HEADER",
    "REJECTION_REASONS",
    "STRIPE_SIGNATURE_HEADER",
    "AuditLog",
    "BillingAuthFailed",
    "BillingConflict",
    "BillingError",
    "BillingEventRejected",
    "BillingFact",
    "BillingInbox",
    "BillingRejected",
    "BillingSubscriptions",
    "BillingUnavailable",
    "BillingUnitOfWork",
    "BtcpayInvoiceFact",
    "BtcpayInvoicing",
    "BtcpayOutcome",
    "FeeInvoice",
    "FeeLedger",
    "FollowerFlows",
    "InboundEvent",
    "PaidInvoice",
    "PaymentFact",
    "PaymentOutcome",
    "RefundFact",
    "RefundReceipt",
    "StripeBilling",
    "SubscriptionFact",
    "SubscriptionSnapshot",
    "WebhookVerifier",
]

REJECTION_REASONS: Final = frozenset({"missing_signature", "bad_signature", "stale", "malformed"})
# the request headers the providers sign their webhooks in (what a WebhookVerifier is given)
STRIPE_SIGNATURE_HEADER: Final = "Stripe-Signature"
BTCPAY_SIGNATURE_HEADER: Final = "BTCPay-Sig"


# -- errors ---------------------------------------------------------------------------------

class BillingError(Exception):
    code: str = "billing_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BillingEventRejected(BillingError):
    """An inbound provider event was refused; answer the provider with HTTP 400."""

    code = "billing_event_rejected"

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(message or reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"BillingEventRejected({self.reason!r})"


class BillingUnavailable(BillingError):
    code = "billing_unavailable"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after


class BillingAuthFailed(BillingError):
    code = "billing_auth_failed"

    def __init__(self, message: str, *, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status


class BillingRejected(BillingError):
    code = "billing_rejected"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 param: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.param = param


class BillingConflict(Conflict):
    """A write lost to a concurrent one on a unique key (e.g. the same fee period closed
    twice at once). The storage adapter raises it; the caller re-reads the winner's row."""


# -- providers ------------------------------------------------------------------------------

class StripeBilling(Protocol):
    """Outbound calls to Stripe: checkout, plan changes with proration, fee invoices."""

    async def create_checkout_session(
        self, customer_ref: str | None, tenant_id: str, plan_id: str, success_url: str,
        cancel_url: str, *, idempotency_key: str | None = None,
    ) -> tuple[str, str]:
        """A hosted checkout page for a new subscription: ``(session_id, url)``."""
        ...

    async def get_subscription(self, subscription_ref: str) -> SubscriptionSnapshot: ...

    async def change_plan(
        self, subscription_ref: str, plan_id: str, proration: str = "create_prorations", *,
        idempotency_key: str | None = None,
    ) -> SubscriptionSnapshot:
        """Move the subscription to ``plan_id``'s price with ``proration``."""
        ...

    async def create_invoice_for_fee(
        self, customer_ref: str, amount_cents: int, currency: str, description: str,
        idempotency_key: str,
    ) -> FeeInvoice:
        """One invoice per ``idempotency_key``, charged to the customer's default method."""
        ...

    async def cancel(self, subscription_ref: str, *, at_period_end: bool = False,
                     ) -> SubscriptionSnapshot:
        """Cancel now, or at the end of the paid period (``cancel_at_period_end``). Canceling
        an already canceled subscription answers its snapshot."""
        ...

    async def resume(self, subscription_ref: str) -> SubscriptionSnapshot:
        """Withdraw a cancellation at period end (the subscription renews again)."""
        ...

    async def paid_invoice(self, invoice_ref: str) -> PaidInvoice:
        """An invoice with what was paid and refunded; ``BillingRejected("resource_missing")``
        when Stripe does not know it."""
        ...

    async def refund(self, invoice_ref: str, amount: Decimal, *, reason: str | None = None,
                     idempotency_key: str | None = None) -> RefundReceipt:
        """Refund ``amount`` (major units) of the invoice's payment (Stripe Refund API)."""
        ...

    async def aclose(self) -> None: ...


class BtcpayInvoicing(Protocol):
    """Outbound calls to BTCPay: invoices (BTCPay has no subscriptions)."""

    async def create_invoice(
        self, store_id: str, amount: Decimal, currency: str, order_id: str,
        metadata: Mapping[str, Any] | None = None, redirect_url: str | None = None,
    ) -> tuple[str, str]:
        """``(invoice_id, checkout_link)``; a live invoice for ``order_id`` is reused."""
        ...

    async def paid_invoice(self, store_id: str, invoice_id: str) -> PaidInvoice:
        """A settled invoice (nothing paid otherwise) and what Vanta refunded of it;
        ``BillingRejected("not_found")`` for an unknown one."""
        ...

    async def refund(self, store_id: str, invoice_id: str, amount: Decimal, currency: str, *,
                     reason: str | None = None) -> RefundReceipt:
        """Refund ``amount`` in the invoice's currency (a BTCPay refund pull payment)."""
        ...

    async def aclose(self) -> None: ...


class WebhookVerifier(Protocol):
    """Inbound: checks a delivery's signature, then parses it into provider-neutral facts.

    Raises ``BillingEventRejected`` (before parsing anything when the signature is wrong)."""

    def verify(self, body: bytes, signature: str | None) -> InboundEvent: ...


# -- repositories ---------------------------------------------------------------------------

class BillingSubscriptions(Protocol):
    """Subscription look-ups by provider identifiers; the ``*_for_update`` reads lock the row
    until the unit of work ends, so two events for one subscription apply one after the
    other."""

    async def by_provider_ref_for_update(self, ref: str) -> dict[str, Any] | None: ...

    async def current_for_update(self, tenant_id: str) -> dict[str, Any] | None: ...

    async def by_customer_ref(self, customer_ref: str) -> dict[str, Any] | None: ...

    async def btcpay_due(self, now: datetime, statuses: tuple[str, ...]
                         ) -> Sequence[dict[str, Any]]: ...

    async def past_due_since_before(self, provider: str, cutoff: datetime
                                    ) -> Sequence[dict[str, Any]]: ...


class Subscriptions(Protocol):
    """The tenant's subscription row (one per tenant)."""

    async def current(self, tenant_id: str) -> SubscriptionRecord | None: ...

    async def by_provider_ref(self, ref: str) -> SubscriptionRecord | None: ...

    async def replace(self, tenant_id: str, row: Mapping[str, Any]) -> None: ...

    async def update(self, subscription_id: str, **values: Any) -> None: ...


class BillingInbox(Protocol):
    """One row per provider event, written in the transaction that applies it."""

    async def add_if_new(self, row: Mapping[str, Any]) -> bool: ...

    async def mark(self, inbox_id: str, *, outcome: str, processed_at: datetime,
                   tenant_id: str | None = None) -> None: ...

    async def list(self, provider: str | None = None) -> Sequence[InboxRecord]: ...

    async def page(self, tenant_id: str, *, limit: int,
                   before: tuple[datetime, str] | None = None) -> Sequence[InboxRecord]:
        """The tenant's events, newest first (``received_at``, ``inbox_id``), strictly
        older than ``before``; at most ``limit``."""
        ...


class FollowerFlows(Protocol):
    async def add(self, row: Mapping[str, Any]) -> int: ...

    async def list(self, tenant_id: str, follower_id: str, *, after: datetime | None = None,
                   until: datetime | None = None) -> Sequence[FlowRecord]: ...


class FeeLedger(Protocol):
    async def add(self, row: Mapping[str, Any]) -> int:
        """Raises ``BillingConflict`` if the follower's period label is taken."""
        ...

    async def get(self, tenant_id: str, follower_id: str, label: str
                  ) -> FeePeriodRecord | None: ...

    async def last(self, tenant_id: str, follower_id: str) -> FeePeriodRecord | None: ...

    async def list(self, tenant_id: str, follower_id: str) -> Sequence[FeePeriodRecord]: ...

    async def by_invoice_ref(self, tenant_id: str, invoice_ref: str
                             ) -> FeePeriodRecord | None: ...

    async def invoiced(self, tenant_id: str) -> Sequence[FeePeriodRecord]: ...

    async def set_invoice(self, row_id: int, *, provider: str, invoice_ref: str) -> bool: ...

    async def set_refunded(self, row_id: int, refunded: Decimal) -> None:
        """The total refunded of the period's invoice so far."""
        ...


class AuditLog(Protocol):
    async def append(self, *, entity: str, entity_id: str, action: str, actor: str,
                     payload: Mapping[str, Any], tenant_id: str | None) -> object: ...


class Tenants(Protocol):
    async def get(self, tenant_id: str) -> TenantRecord | None: ...


class Followers(Protocol):
    async def get(self, tenant_id: str, follower_id: str) -> FollowerRecord | None: ...


class Navs(Protocol):
    async def history(self, entity: str, entity_ids: Sequence[str], asof: datetime
                      ) -> dict[str, list[tuple[datetime, Decimal]]]: ...


class BillingUnitOfWork(Protocol):
    """The slice of the unit of work billing and fees use: ``async with uow:`` opens one
    transaction; leaving it without ``commit()`` rolls back."""

    @property
    def subscriptions(self) -> Subscriptions: ...

    @property
    def billing_subscriptions(self) -> BillingSubscriptions: ...

    @property
    def inbox(self) -> BillingInbox: ...

    @property
    def flows(self) -> FollowerFlows: ...

    @property
    def fee_ledger(self) -> FeeLedger: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def tenants(self) -> Tenants: ...

    @property
    def followers(self) -> Followers: ...

    @property
    def navs(self) -> Navs: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...
