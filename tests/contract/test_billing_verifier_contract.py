"""The webhook verifier contract (:class:`~vanta.application.ports.billing.WebhookVerifier`),
run on the Stripe and BTCPay verifiers and on the fake of each (``tests/fakes/billing.py``).

A delivery signed with the configured secret comes back as a provider-neutral
``InboundEvent``; anything else is refused with one of the port's reasons, the signature
being checked before the body is parsed, and no refusal repeats the secret or the signature.
Which facts a provider's events become is tested with each adapter
(``tests/contract/test_billing_events.py``, ``tests/unit/test_billing_ports.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.fakes.billing import FakeVerifier
from tests.integration.billing_fakes import btcpay_signature, stripe_signature
from vanta.adapters.billing.btcpay_webhooks import BtcpayWebhooks
from vanta.adapters.billing.stripe_webhooks import StripeWebhooks
from vanta.application.ports.billing import BillingEventRejected, WebhookVerifier
from vanta.application.ports.billing_facts import (
    BtcpayInvoiceFact,
    BtcpayOutcome,
    InboundEvent,
    SubscriptionFact,
)
from vanta.domain.subscriptions import SubscriptionStatus

SECRET = "whsec_contract_0123456789"
OTHER = "whsec_someone_else_9876543210"


@dataclass
class Impl:
    provider: str
    verifier: WebhookVerifier
    delivery: Callable[[], tuple[bytes, InboundEvent]]  # a valid body and what it states
    sign: Callable[[bytes, str], str]  # the signature header for a body under a secret


def _stripe() -> Impl:
    sub = {"id": "sub_1", "object": "subscription", "status": "active", "customer": "cus_1",
           "metadata": {"tenant_id": "tnt_a"},
           "items": {"data": [{"price": {"id": "price_pro"},
                               "current_period_end": 1760100000}]}}
    body = json.dumps({"id": "evt_1", "type": "customer.subscription.updated",
                       "created": 1760000000, "data": {"object": sub}}).encode()
    verifier = StripeWebhooks(SECRET, {"price_pro": "pro"})

    def delivery() -> tuple[bytes, InboundEvent]:
        return body, InboundEvent("stripe", "evt_1", "customer.subscription.updated", None)

    return Impl("stripe", verifier, delivery, lambda b, s: stripe_signature(b, s))


def _btcpay() -> Impl:
    body = json.dumps({"deliveryId": "d1", "type": "InvoiceSettled", "timestamp": 1760000000,
                       "storeId": "s", "invoiceId": "inv1",
                       "metadata": {"tenant_id": "tnt_a", "plan_id": "pro"}}).encode()

    def delivery() -> tuple[bytes, InboundEvent]:
        return body, InboundEvent("btcpay", "d1", "InvoiceSettled", None)

    return Impl("btcpay", BtcpayWebhooks(SECRET), delivery, btcpay_signature)


def _fake(provider: str) -> Impl:
    fake = FakeVerifier(provider, secret=SECRET)
    at = datetime(2025, 10, 9, tzinfo=UTC)
    if provider == "stripe":
        event = InboundEvent("stripe", "evt_1", "customer.subscription.updated",
                             SubscriptionFact("tnt_a", "sub_1", "cus_1",
                                              SubscriptionStatus.ACTIVE, "pro", None,
                                              event_created=at))
    else:
        event = InboundEvent("btcpay", "d1", "InvoiceSettled",
                             BtcpayInvoiceFact("inv1", "s", BtcpayOutcome.SETTLED, at, "d1",
                                               tenant_id="tnt_a", plan_id="pro"))

    def delivery() -> tuple[bytes, InboundEvent]:
        body, _ = fake.sign(event)
        return body, event

    return Impl(provider, fake, delivery, lambda b, s: fake.signature(b, s))


IMPLS: dict[str, Callable[[], Impl]] = {
    "stripe": _stripe, "btcpay": _btcpay,
    "fake-stripe": lambda: _fake("stripe"), "fake-btcpay": lambda: _fake("btcpay")}


@pytest.fixture(params=sorted(IMPLS))
def impl(request: pytest.FixtureRequest) -> Impl:
    return IMPLS[request.param]()


def _reason(impl: Impl, body: bytes, signature: str | None) -> str:
    with pytest.raises(BillingEventRejected) as e:
        impl.verifier.verify(body, signature)
    text = f"{e.value} {e.value!r} {e.value.message}"
    assert SECRET not in text and (not signature or signature not in text)
    return e.value.reason


def test_a_signed_delivery_becomes_a_neutral_event(impl: Impl) -> None:
    body, expected = impl.delivery()
    event = impl.verifier.verify(body, impl.sign(body, SECRET))
    assert isinstance(event, InboundEvent)
    assert (event.provider, event.event_id, event.event_type) == (
        impl.provider, expected.event_id, expected.event_type)
    if impl.provider == "stripe":
        assert isinstance(event.fact, SubscriptionFact)
        assert (event.fact.tenant_id, event.fact.plan_id, event.fact.status) == (
            "tnt_a", "pro", SubscriptionStatus.ACTIVE)
    else:
        assert isinstance(event.fact, BtcpayInvoiceFact)
        assert (event.fact.tenant_id, event.fact.plan_id, event.fact.outcome) == (
            "tnt_a", "pro", BtcpayOutcome.SETTLED)


@pytest.mark.parametrize("signature", [None, ""])
def test_a_missing_signature_is_refused(impl: Impl, signature: str | None) -> None:
    body, _ = impl.delivery()
    assert _reason(impl, body, signature) == "missing_signature"


def test_another_secret_is_a_bad_signature(impl: Impl) -> None:
    body, _ = impl.delivery()
    assert _reason(impl, body, impl.sign(body, OTHER)) == "bad_signature"


@pytest.mark.parametrize("tamper", [lambda b: b + b" ", lambda b: b"not json at all"],
                         ids=["changed", "garbage"])
def test_a_body_changed_after_signing_is_a_bad_signature(
        impl: Impl, tamper: Callable[[bytes], bytes]) -> None:
    body, _ = impl.delivery()
    assert _reason(impl, tamper(body), impl.sign(body, SECRET)) == "bad_signature"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"{}"])
def test_a_signed_body_that_is_no_event_is_malformed(impl: Impl, body: bytes) -> None:
    assert _reason(impl, body, impl.sign(body, SECRET)) == "malformed"


def test_the_fake_can_sign_a_stale_delivery() -> None:
    fake = FakeVerifier("stripe", secret=SECRET)
    body, signature = fake.sign(InboundEvent("stripe", "evt_9", "invoice.paid", None),
                                stale=True)
    with pytest.raises(BillingEventRejected) as e:
        fake.verify(body, signature)
    assert e.value.reason == "stale"
    with pytest.raises(ValueError):  # an event of the other provider is a test bug
        fake.sign(InboundEvent("btcpay", "d1", "InvoiceSettled", None))
