"""Composition root for billing: which payment-provider adapters the settings configure.

``build_billing_providers(settings)`` is called by :func:`vanta.bootstrap.build`, which holds
the result on the container (the API uses it unless the caller passes its own); the
application only ever receives the result. Nothing happens at import time; ``stripe`` and
``httpx`` are imported here, not by the application.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from vanta.adapters.billing.btcpay import BtcpayClient
from vanta.adapters.billing.btcpay_webhooks import BtcpayWebhooks
from vanta.adapters.billing.stripe_gateway import StripeGateway
from vanta.adapters.billing.stripe_webhooks import StripeWebhooks
from vanta.application.billing import BillingProviders
from vanta.config import Settings

log = logging.getLogger("vanta.billing")


def build_billing_providers(s: Settings) -> BillingProviders:
    """Whatever is fully configured; a half-configured provider is disabled, with a warning,
    rather than failing the whole API at start-up."""
    stripe_gw: StripeGateway | None = None
    stripe_events: StripeWebhooks | None = None
    if s.stripe_api_key and s.stripe_webhook_secret:
        stripe_gw = StripeGateway(s.stripe_api_key, webhook_secret=s.stripe_webhook_secret,
                                  price_ids=s.stripe_price_ids, api_base=s.stripe_api_base)
        stripe_events = StripeWebhooks(s.stripe_webhook_secret, stripe_gw.plans_by_price)
    elif s.stripe_api_key or s.stripe_webhook_secret:
        log.warning("Stripe needs both VANTA_STRIPE_API_KEY and VANTA_STRIPE_WEBHOOK_SECRET;"
                    " Stripe billing is disabled")
    btcpay: BtcpayClient | None = None
    if s.btcpay_url and s.btcpay_api_key and s.btcpay_store_id:
        btcpay = BtcpayClient(s.btcpay_url, s.btcpay_api_key)
    elif s.btcpay_url or s.btcpay_api_key or s.btcpay_store_id:
        log.warning("BTCPay needs VANTA_BTCPAY_URL, _API_KEY and _STORE_ID; BTCPay invoices "
                    "are disabled")
    btcpay_events = BtcpayWebhooks(s.btcpay_webhook_secret) if s.btcpay_webhook_secret \
        else None
    return BillingProviders(
        stripe=stripe_gw, stripe_events=stripe_events, btcpay=btcpay,
        btcpay_events=btcpay_events, btcpay_store_id=s.btcpay_store_id,
        grace=timedelta(days=s.billing_grace_days),
        public_app_url=s.public_app_url.rstrip("/"))
