"""Subscriptions through Stripe and BTCPay: plan changes out, verified provider events in.

The providers reach this package only through ``vanta.application.ports.billing``: it is
given a ``BillingProviders`` (built from the settings by ``vanta.bootstrap.billing``) and a
unit-of-work factory, and imports no adapter.

=====================  ======================================================================
module                 what it does
=====================  ======================================================================
``plan_change``        ``change_plan``: Stripe checkout or a prorated price change
``btcpay_invoicing``   BTCPay invoices out; ``expire_btcpay_periods`` for the scheduler
``inbox``              ``receive_stripe`` / ``receive_btcpay``: verify, de-duplicate, apply
``cancel``             ``cancel_subscription`` (period end or now), ``resume_subscription``
``inbox_review``       ``inbox_page``: a tenant's provider events, for review
``refunds``            ``refund_invoice``: a paid invoice refunded in full or in part
``facts``              Stripe subscription facts → the tenant's subscription row
``payments``           Stripe payment and refund facts (refund holds, fee invoices)
``btcpay_payments``    BTCPay invoice facts → paid periods
``lookup``             rows by provider ids; ``reachable`` over ``SUBSCRIPTION_TABLE``
``providers``          ``BillingProviders``, prices and terms
=====================  ======================================================================

Every applied change writes an audit event (entity ``subscription``) and, after its commit,
drops the tenant's cached entitlements (``vanta.application.entitlements_cache``).
"""

from vanta.application.billing.btcpay_invoicing import expire_btcpay_periods
from vanta.application.billing.cancel import cancel_subscription, resume_subscription
from vanta.application.billing.common import UowFactory
from vanta.application.billing.inbox import WebhookResult, receive_btcpay, receive_stripe
from vanta.application.billing.inbox_review import InboxPage, inbox_page
from vanta.application.billing.lookup import reachable, stripe_customer_of
from vanta.application.billing.plan_change import change_plan, parse_change_plan
from vanta.application.billing.providers import (
    BTCPAY_PERIOD,
    BTCPAY_PRICES,
    PROVIDERS,
    STRIPE_PRORATION,
    BillingProviders,
    ProviderNotConfigured,
)
from vanta.application.billing.refunds import refund_invoice

__all__ = [
    "BTCPAY_PERIOD",
    "BTCPAY_PRICES",
    "PROVIDERS",
    "STRIPE_PRORATION",
    "BillingProviders",
    "InboxPage",
    "ProviderNotConfigured",
    "UowFactory",
    "WebhookResult",
    "cancel_subscription",
    "change_plan",
    "expire_btcpay_periods",
    "inbox_page",
    "parse_change_plan",
    "reachable",
    "receive_btcpay",
    "receive_stripe",
    "refund_invoice",
    "resume_subscription",
    "stripe_customer_of",
]
