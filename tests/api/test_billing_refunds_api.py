"""POST /v1/billing/invoices/{id}/refunds end to end: the API, the real Stripe and BTCPay
adapters and the providers' local simulators (``tests/integration/billing_fakes.py``)."""

from __future__ import annotations

from decimal import Decimal

from tests.api.test_billing_api import (  # noqa: F401 - ``billing`` is the fixture
    Billing,
    billing,
    btcpay_invoice,
    subscribe,
)

PROBLEM = "application/problem+json"


def _path(invoice_id: str) -> str:
    return f"/v1/billing/invoices/{invoice_id}/refunds"


async def _paid_stripe_invoice(b: Billing, cents: int = 3000) -> str:
    await subscribe(b, "tnt_a")
    row = await b.row("tnt_a")
    assert row is not None and row.customer_ref
    assert b.providers.stripe is not None
    fee = await b.providers.stripe.create_invoice_for_fee(row.customer_ref, cents, "usd",
                                                          "Performance fee", "fee:api:1")
    b.sim.pay_invoice(fee.invoice_ref)
    return fee.invoice_ref


async def test_stripe_invoice_refunded_in_part_then_in_full(billing: Billing) -> None:  # noqa: F811
    ref = await _paid_stripe_invoice(billing)
    r = await billing.client.post(_path(ref), headers=billing.auth("tnt_a"),
                                  json={"amount": "12.34", "reason": "late fill"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["provider"], body["amount"], body["refundable"], body["status"]) == (
        "stripe", "12.34", "17.66", "succeeded")
    [refund] = billing.sim.refunds.values()
    assert (refund["amount"], refund["metadata"]["vanta_reason"]) == (1234, "late fill")

    r = await billing.client.post(_path(ref), headers=billing.auth("tnt_a"),
                                  json={"amount": "17.67"})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "refund_exceeds_paid"
    assert len(billing.sim.refunds) == 1, "nothing is sent when the amount is too large"

    r = await billing.client.post(_path(ref), headers=billing.auth("tnt_a"), json={})
    assert r.status_code == 201, r.text
    assert (r.json()["amount"], r.json()["refundable"]) == ("17.66", "0.00")
    audited = [e for e in await billing.audit("refunded") if e.entity == "invoice"]
    assert [(e.entity_id, e.payload["amount"]) for e in audited] == [
        (ref, "12.34"), (ref, "17.66")]


async def test_other_tenants_or_unknown_invoice_is_404(billing: Billing) -> None:  # noqa: F811
    ref = await _paid_stripe_invoice(billing)
    for tenant, invoice in (("tnt_b", ref), ("tnt_a", "in_unknown")):
        r = await billing.client.post(_path(invoice), headers=billing.auth(tenant), json={})
        assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "invoice_not_found"
    assert not billing.sim.refunds


async def test_bad_bodies_are_refused(billing: Billing) -> None:  # noqa: F811
    for bad in ({"amount": "-1"}, {"amount": "abc"}, {"amount": "1", "extra": 1}):
        r = await billing.client.post(_path("in_x"), headers=billing.auth("tnt_a"), json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)


async def test_btcpay_invoice_refund(billing: Billing) -> None:  # noqa: F811
    body = await btcpay_invoice(billing, "tnt_b")
    iid = body["invoice_id"]
    billing.btc.receive_payment(iid, "19.00")
    r = await billing.client.post(_path(iid), headers=billing.auth("tnt_b"),
                                  json={"amount": "4.5"})
    assert r.status_code == 201, r.text
    assert (r.json()["provider"], r.json()["refundable"]) == ("btcpay", "14.50")
    [sent] = billing.btc.refunds
    assert (sent["invoiceId"], Decimal(str(sent["customAmount"]))) == (iid, Decimal("4.5"))
    r = await billing.client.post(_path(iid), headers=billing.auth("tnt_a"), json={})
    assert r.status_code == 404
