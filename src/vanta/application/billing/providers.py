"""The payment providers billing is given, and the billing terms that go with them.

``vanta.bootstrap.billing`` builds a ``BillingProviders`` from the settings; the application
only receives it. A provider left ``None`` is not configured (its routes answer
``billing_provider_not_configured``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Final

from vanta.application.ports.billing import BtcpayInvoicing, StripeBilling, WebhookVerifier
from vanta.domain.entitlements import PlanId
from vanta.domain.errors import Conflict
from vanta.domain.subscriptions import DEFAULT_GRACE

PROVIDERS: Final = ("stripe", "btcpay")
# BTCPay price table (USD per 30-day period). Stripe prices live in Stripe and are mapped by
# ``Settings.stripe_price_ids``; keep the two in step when prices change.
BTCPAY_PRICES: Final[Mapping[str, tuple[Decimal, str]]] = {
    PlanId.CORE.value: (Decimal("19.00"), "USD"),
    PlanId.PRO.value: (Decimal("49.00"), "USD"),
    PlanId.INSTITUTIONAL.value: (Decimal("499.00"), "USD"),
}
BTCPAY_PERIOD: Final = timedelta(days=30)
STRIPE_PRORATION: Final = "create_prorations"


class ProviderNotConfigured(Conflict):
    code = "billing_provider_not_configured"


@dataclass
class BillingProviders:
    """The configured payment providers and billing terms; ``None`` = not configured.

    ``stripe_events`` / ``btcpay_events`` verify the providers' webhooks; BTCPay webhooks can
    be configured without the BTCPay API (invoices then cannot be created here)."""

    stripe: StripeBilling | None = None
    stripe_events: WebhookVerifier | None = None
    btcpay: BtcpayInvoicing | None = None
    btcpay_events: WebhookVerifier | None = None
    btcpay_store_id: str | None = None
    btcpay_prices: Mapping[str, tuple[Decimal, str]] = field(
        default_factory=lambda: dict(BTCPAY_PRICES))
    btcpay_period: timedelta = BTCPAY_PERIOD
    grace: timedelta = DEFAULT_GRACE
    public_app_url: str = "http://127.0.0.1:8000"
    fee_currency: str = "usd"

    async def aclose(self) -> None:
        if self.stripe is not None:
            await self.stripe.aclose()
        if self.btcpay is not None:
            await self.btcpay.aclose()
