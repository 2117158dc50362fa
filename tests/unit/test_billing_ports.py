"""Billing behind its ports: the application imports no adapter, the webhook verifiers hand it
provider-neutral facts, and the composition root picks the providers the settings configure."""

from __future__ import annotations

import ast
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.billing_fakes import btcpay_signature, stripe_signature
from vanta.adapters.billing.btcpay_webhooks import BtcpayWebhooks
from vanta.adapters.billing.stripe_webhooks import StripeWebhooks
from vanta.application.ports.billing import BillingEventRejected
from vanta.application.ports.billing_facts import (
    BtcpayInvoiceFact,
    BtcpayOutcome,
    InboundEvent,
    SubscriptionFact,
)
from vanta.bootstrap import build
from vanta.bootstrap.billing import build_billing_providers
from vanta.config import Settings
from vanta.domain.subscriptions import SubscriptionStatus

SRC = Path(__file__).resolve().parents[2] / "src" / "vanta"
APPLICATION_BILLING = [*sorted((SRC / "application" / "billing").glob("*.py")),
                       SRC / "application" / "fees_service.py",
                       SRC / "application" / "ports" / "billing.py",
                       SRC / "application" / "ports" / "billing_facts.py"]
FORBIDDEN = ("vanta.adapters", "vanta.entrypoints", "vanta.bootstrap", "vanta.config",
             "sqlalchemy", "stripe", "httpx", "aiohttp")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", APPLICATION_BILLING, ids=lambda p: p.name)
def test_billing_application_imports_no_adapter_or_io_library(path: Path) -> None:
    bad = [n for n in _imports(path)
           if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == [], f"{path.relative_to(SRC)} imports {bad}"


def test_btcpay_webhooks_give_a_fact_keyed_by_the_original_delivery() -> None:
    body = json.dumps({
        "deliveryId": "d2", "originalDeliveryId": "d1", "isRedelivery": True,
        "type": "InvoiceSettled", "timestamp": 1760000000, "storeId": "s", "invoiceId": "inv1",
        "metadata": {"tenant_id": "tnt_a", "plan_id": "pro", "amount": "49.00"},
    }).encode()
    event = BtcpayWebhooks("secret").verify(body, btcpay_signature(body, "secret"))
    assert (event.provider, event.event_id, event.event_type) == (
        "btcpay", "d1", "InvoiceSettled")
    fact = event.fact
    assert isinstance(fact, BtcpayInvoiceFact)
    assert (fact.outcome, fact.tenant_id, fact.plan_id, fact.price, fact.delivery_id) == (
        BtcpayOutcome.SETTLED, "tnt_a", "pro", Decimal("49.00"), "d2")
    with pytest.raises(BillingEventRejected) as e:
        BtcpayWebhooks("secret").verify(body, btcpay_signature(body, "other"))
    assert e.value.reason == "bad_signature"


def test_btcpay_webhooks_carry_a_fee_invoices_fee_key() -> None:
    body = json.dumps({
        "deliveryId": "d1", "type": "InvoiceSettled", "timestamp": 1760000000,
        "storeId": "s", "invoiceId": "inv1",
        "metadata": {"tenant_id": "tnt_a", "kind": "performance_fee", "fee_key": "fee:t:f:P1"},
    }).encode()
    fact = BtcpayWebhooks("secret").verify(body, btcpay_signature(body, "secret")).fact
    assert isinstance(fact, BtcpayInvoiceFact)
    assert (fact.fee_key, fact.plan_id) == ("fee:t:f:P1", None)


def test_stripe_webhooks_translate_with_the_price_map() -> None:
    sub = {"id": "sub_1", "object": "subscription", "status": "active", "customer": "cus_1",
           "metadata": {"tenant_id": "tnt_a"},
           "items": {"data": [{"price": {"id": "price_pro"}, "current_period_end": 1760100000}]}}
    body = json.dumps({"id": "evt_1", "type": "customer.subscription.updated",
                       "created": 1760000000, "data": {"object": sub}}).encode()
    verifier = StripeWebhooks("whsec_x", {"price_pro": "pro"})
    event = verifier.verify(body, stripe_signature(body, "whsec_x"))
    assert (event.provider, event.event_id) == ("stripe", "evt_1")
    fact = event.fact
    assert isinstance(fact, SubscriptionFact)
    assert (fact.plan_id, fact.status, fact.tenant_id) == (
        "pro", SubscriptionStatus.ACTIVE, "tnt_a")
    other = json.dumps({"id": "evt_2", "type": "customer.created", "created": 1760000000,
                        "data": {"object": {"id": "cus_1"}}}).encode()
    assert verifier.verify(other, stripe_signature(other, "whsec_x")) == InboundEvent(
        "stripe", "evt_2", "customer.created", None)


async def test_bootstrap_configures_only_complete_providers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    full = build_billing_providers(Settings(
        data_dir=tmp_path, stripe_api_key="sk_test_x", stripe_webhook_secret="whsec_x",
        stripe_price_ids={"pro": "price_pro"}, btcpay_url="http://127.0.0.1:1",
        btcpay_api_key="k", btcpay_store_id="s", btcpay_webhook_secret="b",
        public_app_url="https://app.example/"))
    try:
        assert full.stripe is not None and full.stripe_events is not None
        assert full.btcpay is not None and full.btcpay_events is not None
        assert (full.btcpay_store_id, full.public_app_url) == ("s", "https://app.example")
    finally:
        await full.aclose()
    with caplog.at_level(logging.WARNING, logger="vanta.billing"):
        half = build_billing_providers(Settings(
            data_dir=tmp_path, stripe_api_key="sk_test_x", btcpay_webhook_secret="b"))
    # Stripe without its webhook secret is off; BTCPay webhooks work without the API
    assert half.stripe is None and half.stripe_events is None and half.btcpay is None
    assert half.btcpay_events is not None
    assert "Stripe billing is disabled" in caplog.text


async def test_the_container_holds_the_configured_providers_and_closes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = build(Settings(data_dir=tmp_path, stripe_api_key="sk_test_x",
                       stripe_webhook_secret="whsec_x", stripe_price_ids={"pro": "price_pro"}))
    assert c.billing.stripe is not None and c.billing.btcpay is None
    closed: list[str] = []

    async def aclose() -> None:
        closed.append("stripe")

    monkeypatch.setattr(c.billing.stripe, "aclose", aclose)
    await c.close()
    assert closed == ["stripe"]
