"""Billing adapters: gateways out to the payment providers, verified events in.

- ``stripe_gateway``: ``StripeGateway`` (Checkout, plan changes, cancel, fee invoices,
  ``verify_event``) over the official ``stripe`` SDK;
- ``stripe_events``: pure translation of verified Stripe events into ``SubscriptionFact``,
  ``PaymentFact`` and ``RefundFact``;
- ``btcpay``: ``BtcpayClient`` (Greenfield API over httpx), ``verify_webhook`` and
  ``btcpay_fact``;
- ``errors``: the ``BillingError`` tree, including ``BillingEventRejected(reason)``.

Import the module you need; ``stripe`` is imported only by ``stripe_gateway``.
"""

from vanta.adapters.billing.errors import (
    BillingAuthFailed,
    BillingError,
    BillingEventRejected,
    BillingRejected,
    BillingUnavailable,
)

__all__ = [
    "BillingAuthFailed",
    "BillingError",
    "BillingEventRejected",
    "BillingRejected",
    "BillingUnavailable",
]
