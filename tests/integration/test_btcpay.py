"""``BtcpayClient`` and ``verify_webhook`` against a local fake BTCPay Server.

The fake (``billing_fakes.FakeBtcpay``) answers the Greenfield invoice paths with the documented
fields and error bodies and emits webhook bodies as BTCPay does; it is simulated, not BTCPay.
Deliveries go over real HTTP to a local receiver, signed ``BTCPay-Sig: sha256=<hex>``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.billing_fakes import FakeBtcpay, WebhookInbox, btcpay_signature, serve
from vanta.adapters.billing.btcpay import (
    BtcpayClient,
    BtcpayOutcome,
    btcpay_fact,
    sign_body,
    verify_webhook,
)
from vanta.adapters.billing.errors import (
    BillingAuthFailed,
    BillingEventRejected,
    BillingRejected,
    BillingUnavailable,
)

STORE = "store_main"
SECRET = "btcpay-webhook-secret"


@dataclass
class Peer:
    fake: FakeBtcpay
    client: BtcpayClient
    url: str


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    fake = FakeBtcpay()
    async with serve(fake.app) as url:
        client = BtcpayClient(url, fake.api_key)
        try:
            yield Peer(fake, client, url)
        finally:
            await client.aclose()


async def new_invoice(p: Peer, amount: str = "25.00", order_id: str = "sub:tnt_a:2025-09",
                      ) -> str:
    invoice_id, _ = await p.client.create_invoice(
        STORE, Decimal(amount), "USD", order_id, {"tenant_id": "tnt_a", "plan_id": "pro"},
        "https://app.example/billing/done")
    return invoice_id


def fact_from(delivery: dict[str, Any]) -> Any:
    body = json.dumps(delivery).encode()
    return btcpay_fact(verify_webhook(body, btcpay_signature(body, SECRET), SECRET))


# -- invoices -------------------------------------------------------------------------------

async def test_create_invoice_sends_the_documented_request(peer: Peer) -> None:
    invoice_id, link = await peer.client.create_invoice(
        STORE, Decimal("25.00"), "usd", "sub:tnt_a:2025-09",
        {"tenant_id": "tnt_a", "plan_id": "pro"}, "https://app.example/billing/done",
        expiration_minutes=30)
    assert link == f"{peer.url}/i/{invoice_id}"
    method, path, body = peer.fake.requests[-1]
    assert (method, path) == ("POST", f"/api/v1/stores/{STORE}/invoices")
    assert json.loads(body) == {
        "amount": "25.00", "currency": "USD",
        "metadata": {"tenant_id": "tnt_a", "plan_id": "pro", "orderId": "sub:tnt_a:2025-09"},
        "checkout": {"redirectURL": "https://app.example/billing/done",
                     "expirationMinutes": 30},
    }
    inv = await peer.client.get_invoice(STORE, invoice_id)
    assert (inv.id, inv.store_id, inv.amount, inv.currency, inv.status,
            inv.additional_status, inv.order_id) == (
        invoice_id, STORE, Decimal("25.00"), "USD", "New", "None", "sub:tnt_a:2025-09")
    assert inv.metadata["tenant_id"] == "tnt_a"
    assert inv.created_time is not None and inv.expiration_time is not None
    assert (inv.expiration_time - inv.created_time).total_seconds() == 30 * 60


async def test_every_request_authenticates_with_the_token_header(peer: Peer) -> None:
    # the fake answers 401 unless ``Authorization: token <key>`` carries its key
    await new_invoice(peer)
    bad = BtcpayClient(peer.url, "not-the-key")
    try:
        with pytest.raises(BillingAuthFailed) as e:
            await bad.get_invoice(STORE, "whatever")
        assert (e.value.status, e.value.code) == (401, "unauthorized")
        assert "not-the-key" not in str(e.value) and "not-the-key" not in repr(bad)
    finally:
        await bad.aclose()
    with pytest.raises(BillingAuthFailed) as e:
        await peer.client.create_invoice("store_of_someone_else", Decimal(5), "USD", "o-1")
    assert e.value.status == 403


async def test_a_retried_create_returns_the_live_invoice_for_the_order(peer: Peer) -> None:
    first = await new_invoice(peer)
    assert await new_invoice(peer) == first
    assert len(peer.fake.invoices) == 1
    with pytest.raises(BillingRejected) as e:
        await new_invoice(peer, amount="30.00")
    assert e.value.code == "order_id_conflict"
    peer.fake.expire(first)  # an expired invoice is not reused: the customer gets a new one
    second = await new_invoice(peer)
    assert second != first and len(peer.fake.invoices) == 2


async def test_provider_errors_become_billing_errors(peer: Peer) -> None:
    with pytest.raises(BillingRejected) as e:
        await peer.client.get_invoice(STORE, "nosuchinvoice")
    assert (e.value.status, e.value.code) == (404, "not_found")
    with pytest.raises(BillingRejected) as e:
        await peer.client.create_invoice(STORE, Decimal(5), "XYZ", "o-2", reuse_existing=False)
    assert (e.value.status, e.value.code, e.value.param) == (400, "validation", "currency")
    assert "Invalid currency" in str(e.value)
    peer.fake.outage = 503
    with pytest.raises(BillingUnavailable) as u:
        await new_invoice(peer)
    assert u.value.status == 503
    peer.fake.outage = None
    for amount in (Decimal(0), Decimal(-1), "NaN", "abc"):
        with pytest.raises(ValueError):
            await peer.client.create_invoice(STORE, amount, "USD", "o-3")
    with pytest.raises(TypeError):
        await peer.client.create_invoice(STORE, 1.5, "USD", "o-3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await peer.client.get_invoice(STORE, "../stores")


async def test_an_unreachable_server_is_unavailable() -> None:
    fake = FakeBtcpay()
    async with serve(fake.app) as url:
        pass  # stopped again: nothing listens there now
    client = BtcpayClient(url, fake.api_key, timeout=2)
    try:
        with pytest.raises(BillingUnavailable) as e:
            await client.get_invoice(STORE, "x")
        assert e.value.code == "connection_error"
    finally:
        await client.aclose()


# -- webhooks -------------------------------------------------------------------------------

async def test_signed_deliveries_over_http_verify(peer: Peer) -> None:
    box = WebhookInbox()
    async with serve(box.app) as url:
        peer.fake.webhooks.append((f"{url}/hook", SECRET))
        invoice_id = await new_invoice(peer)
        for delivery in peer.fake.receive_payment(invoice_id, "25.00"):
            assert await peer.fake.deliver(delivery) == [200]
    assert len(box.received) == 4
    events = [verify_webhook(body, headers["BTCPay-Sig"], SECRET)
              for body, headers in box.received]
    assert [e.type for e in events] == ["InvoiceReceivedPayment", "InvoiceProcessing",
                                        "InvoicePaymentSettled", "InvoiceSettled"]
    assert all(e.invoice_id == invoice_id and e.store_id == STORE for e in events)
    facts = [btcpay_fact(e) for e in events]
    assert [f.outcome for f in facts if f] == [
        BtcpayOutcome.PAYMENT_RECEIVED, BtcpayOutcome.PROCESSING,
        BtcpayOutcome.PAYMENT_SETTLED, BtcpayOutcome.SETTLED]
    settled = facts[-1]
    assert settled is not None
    assert settled.grants_access and not settled.needs_review
    assert (settled.tenant_id, settled.order_id) == ("tnt_a", "sub:tnt_a:2025-09")
    received = facts[0]
    assert received is not None and not received.grants_access
    assert received.payment_value == Decimal("25.00") and received.payment_id


def test_signature_good_bad_missing_and_tampered() -> None:
    body = json.dumps({"deliveryId": "d1", "webhookId": "w1", "originalDeliveryId": "d1",
                       "isRedelivery": False, "type": "InvoiceSettled",
                       "timestamp": 1760000000, "storeId": STORE, "invoiceId": "inv1",
                       "manuallyMarked": False, "overPaid": False}).encode()
    good = btcpay_signature(body, SECRET)
    assert sign_body(body, SECRET) == good
    ev = verify_webhook(body, good, SECRET)
    assert (ev.delivery_id, ev.type, ev.invoice_id, ev.store_id, ev.timestamp) == (
        "d1", "InvoiceSettled", "inv1", STORE, datetime.fromtimestamp(1760000000, UTC))
    assert verify_webhook(body, good.upper().replace("SHA256=", "sha256="), SECRET) == ev

    cases = {
        None: "missing_signature",
        "": "missing_signature",
        btcpay_signature(body, "another-secret"): "bad_signature",
        good.removeprefix("sha256="): "bad_signature",  # bare hex: not the documented format
        "sha1=" + good.removeprefix("sha256="): "bad_signature",
        "sha256=zz": "bad_signature",
        "sha256=\u00e9\u00e9": "bad_signature",
    }
    for header, reason in cases.items():
        with pytest.raises(BillingEventRejected) as e:
            verify_webhook(body, header, SECRET)
        assert e.value.reason == reason, header
    with pytest.raises(BillingEventRejected) as e:
        verify_webhook(body.replace(b"inv1", b"inv2"), good, SECRET)
    assert e.value.reason == "bad_signature"
    with pytest.raises(ValueError):
        verify_webhook(body, good, "")


@pytest.mark.parametrize("body", [
    b"not json",
    b"[]",
    b'{"type": "InvoiceSettled", "timestamp": 1}',  # no deliveryId
    b'{"deliveryId": "d", "type": "InvoiceSettled", "timestamp": "now", "invoiceId": "i"}',
    b'{"deliveryId": "d", "type": "InvoiceSettled", "timestamp": 1}',  # no invoiceId
])
def test_signed_nonsense_is_malformed(body: bytes) -> None:
    with pytest.raises(BillingEventRejected) as e:
        verify_webhook(body, btcpay_signature(body, SECRET), SECRET)
    assert e.value.reason == "malformed"


async def test_expired_invalid_and_marked_settled(peer: Peer) -> None:
    partial = await new_invoice(peer, order_id="o-partial")
    peer.fake.receive_payment(partial, "10.00")
    (expired,) = [fact_from(d) for d in peer.fake.expire(partial)]
    assert (expired.outcome, expired.partially_paid, expired.needs_review) == (
        BtcpayOutcome.EXPIRED, True, True)
    assert not expired.grants_access

    unpaid = await new_invoice(peer, order_id="o-unpaid")
    (expired,) = [fact_from(d) for d in peer.fake.expire(unpaid)]
    assert (expired.outcome, expired.partially_paid, expired.needs_review) == (
        BtcpayOutcome.EXPIRED, False, False)

    bad = await new_invoice(peer, order_id="o-invalid")
    (invalid,) = [fact_from(d) for d in peer.fake.mark(bad, "Invalid")]
    assert (invalid.outcome, invalid.manually_marked, invalid.grants_access) == (
        BtcpayOutcome.INVALID, True, False)

    over = await new_invoice(peer, order_id="o-over")
    facts = [fact_from(d) for d in peer.fake.receive_payment(over, "30.00")]
    assert facts[-1].outcome is BtcpayOutcome.SETTLED and facts[-1].over_paid
    assert facts[-1].needs_review


async def test_a_late_payment_is_flagged_for_review_not_granted(peer: Peer) -> None:
    invoice_id = await new_invoice(peer, order_id="o-late")
    peer.fake.expire(invoice_id)
    deliveries = peer.fake.receive_payment(invoice_id, "25.00")
    facts = [fact_from(d) for d in deliveries]
    # BTCPay keeps the invoice expired (PaidLate) and sends no InvoiceSettled
    assert [f.outcome for f in facts] == [BtcpayOutcome.PAYMENT_RECEIVED,
                                          BtcpayOutcome.PAYMENT_SETTLED]
    assert all(f.after_expiration and f.is_late_payment and f.needs_review for f in facts)
    assert not any(f.grants_access for f in facts)
    inv = await peer.client.get_invoice(STORE, invoice_id)
    assert (inv.status, inv.additional_status) == ("Expired", "PaidLate")
    # an operator accepts it: the manual settlement is what grants
    (marked,) = [fact_from(d) for d in peer.fake.mark(invoice_id, "Settled")]
    assert marked.grants_access and marked.manually_marked


async def test_redelivery_shares_the_dedupe_key_and_created_is_ignored(peer: Peer) -> None:
    invoice_id = await new_invoice(peer, order_id="o-redeliver")
    created = peer.fake.deliveries[0]
    assert created["type"] == "InvoiceCreated" and fact_from(created) is None
    (settled_delivery,) = [d for d in peer.fake.receive_payment(invoice_id, "25.00")
                           if d["type"] == "InvoiceSettled"]
    again = peer.fake.redeliver(settled_delivery)
    first, second = fact_from(settled_delivery), fact_from(again)
    assert again["deliveryId"] != settled_delivery["deliveryId"]
    assert first.dedupe_key == second.dedupe_key == settled_delivery["deliveryId"]
    body = json.dumps(again).encode()
    ev = verify_webhook(body, btcpay_signature(body, SECRET), SECRET)
    assert ev.is_redelivery and ev.dedupe_key == settled_delivery["deliveryId"]
