"""Billing adapters: gateways out to the payment providers, verified events in.

They implement the application's ports (``vanta.application.ports.billing``) and build its
plain facts (``vanta.application.ports.billing_facts``); ``vanta.bootstrap.billing`` wires
them.

- ``stripe_gateway``: ``StripeGateway`` (Checkout, plan changes, cancel, fee invoices) over
  the official ``stripe`` SDK, with ``stripe_sdk`` (error mapping, the httpx client);
- ``stripe_webhooks``: ``verify_stripe_event`` and ``StripeWebhooks`` (verify + translate);
- ``stripe_events``: pure translation of verified Stripe events into ``SubscriptionFact``,
  ``PaymentFact`` and ``RefundFact``;
- ``btcpay``: ``BtcpayClient`` (Greenfield API over httpx); ``btcpay_webhooks``:
  ``verify_webhook``, ``btcpay_fact`` and ``BtcpayWebhooks``;
- ``errors``: the ``BillingError`` tree (owned by the application), re-exported.

Import the module you need; ``stripe`` is imported only by ``stripe_gateway``,
``stripe_sdk`` and ``stripe_webhooks``.
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
