"""Refunds over the fakes: the provider is asked for the right amount, never more than is
left, other tenants' invoices are not found, refunds are audited, fee refunds reach the
ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.application.conftest import World
from tests.fakes.billing import FakeBtcpay, FakeStripe
from vanta.application.billing import BillingProviders, refund_invoice
from vanta.application.fees_service import close_fee_period, fee_ledger
from vanta.application.navs import record_nav
from vanta.domain.errors import NotFound, ValidationFailed


async def _stripe_tenant(w: World, tenant_id: str, stripe: FakeStripe) -> str:
    customer = stripe.add_customer()
    async with w.uow() as u:
        await u.subscriptions.replace(tenant_id, {
            "subscription_id": f"s_{tenant_id}", "tenant_id": tenant_id,
            "plan_id": "institutional", "status": "active", "entitlements": {},
            "created_at": w.clock.now, "provider": "stripe", "customer_ref": customer})
        await u.commit()
    return customer


async def _refund(w: World, providers: BillingProviders, invoice: str,
                  amount: str | None, tenant_id: str = "tnt_a") -> dict[str, object]:
    return await refund_invoice(
        w.db.uow, providers, tenant_id=tenant_id, invoice_id=invoice,
        amount=Decimal(amount) if amount is not None else None, reason="goodwill",
        actor="owner1", idempotency_key=None)


async def test_stripe_partial_then_rest_then_nothing_left(world: World) -> None:
    stripe = FakeStripe(clock=world.clock)
    customer = await _stripe_tenant(world, "tnt_a", stripe)
    ref = stripe.pay(customer_ref=customer, amount_cents=4999)
    providers = BillingProviders(stripe=stripe)
    first = await _refund(world, providers, ref, "10.00")
    assert (first["amount"], first["refunded_total"], first["refundable"]) == (
        "10.00", "10.00", "39.99")
    with pytest.raises(ValidationFailed) as e:
        await _refund(world, providers, ref, "40.00")
    assert e.value.code == "refund_exceeds_paid"
    rest = await _refund(world, providers, ref, None)
    assert (rest["amount"], rest["refundable"]) == ("39.99", "0.00")
    with pytest.raises(ValidationFailed) as e:
        await _refund(world, providers, ref, None)
    assert e.value.code == "refund_exceeds_paid"
    assert [c for c in stripe.calls if c[0] == "refund"] == [
        ("refund", {"invoice_ref": ref, "amount": Decimal("10.00"), "reason": "goodwill"}),
        ("refund", {"invoice_ref": ref, "amount": Decimal("39.99"), "reason": "goodwill"})]
    async with world.uow() as u:
        events = [e for e in await u.audit.all() if e.entity == "invoice"]
    assert [(e.action, e.actor, e.payload["amount"]) for e in events] == [
        ("refunded", "owner1", "10.00"), ("refunded", "owner1", "39.99")]


async def test_unknown_and_other_tenants_invoices_are_not_found(world: World) -> None:
    stripe = FakeStripe(clock=world.clock)
    await _stripe_tenant(world, "tnt_a", stripe)
    other = await _stripe_tenant(world, "tnt_b", stripe)
    theirs = stripe.pay(customer_ref=other, amount_cents=1000)
    providers = BillingProviders(stripe=stripe)
    for invoice in (theirs, "in_nope"):
        with pytest.raises(NotFound) as e:
            await _refund(world, providers, invoice, None)
        assert e.value.code == "invoice_not_found"
    assert not [c for c in stripe.calls if c[0] == "refund"]


async def test_btcpay_refund_of_a_settled_invoice(world: World) -> None:
    btcpay = FakeBtcpay()
    providers = BillingProviders(btcpay=btcpay, btcpay_store_id="store1")
    iid, _ = await btcpay.create_invoice("store1", Decimal("99"), "USD", "o1",
                                         {"tenant_id": "tnt_a"})
    with pytest.raises(ValidationFailed):  # not paid yet: nothing refundable
        await _refund(world, providers, iid, "1")
    btcpay.set_status(iid, "Settled")
    with pytest.raises(NotFound):
        await _refund(world, providers, iid, "1", tenant_id="tnt_b")
    answer = await _refund(world, providers, iid, "25.5")
    assert (answer["provider"], answer["amount"], answer["refundable"]) == (
        "btcpay", "25.50", "73.50")
    assert [c for c in btcpay.calls if c[0] == "refund"] == [("refund", {
        "store_id": "store1", "invoice_id": iid, "amount": Decimal("25.5"),
        "reason": "goodwill"})]


async def test_a_fee_invoice_refund_shows_in_the_fee_ledger(world: World) -> None:
    fid = await world.follower()
    stripe = FakeStripe(clock=world.clock)
    await _stripe_tenant(world, "tnt_a", stripe)
    start = world.clock.now - timedelta(days=30)
    for n, nav in ((0, "1000"), (1, "1250.50")):
        await record_nav(world.uow(), tenant_id="tnt_a", entity="follower", entity_id=fid,
                         raw={"nav": nav, "as_of": (start + timedelta(days=n)).isoformat()},
                         actor="ops", clock=world.clock)
    _, body = await close_fee_period(
        world.db.uow, tenant_id="tnt_a", follower_id=fid,
        raw={"label": "P1", "rate": "0.2", "end": (start + timedelta(days=2)).isoformat()},
        actor="ops", stripe=stripe, clock=world.clock)
    ref = stripe.pay(body["invoice"]["ref"])
    answer = await _refund(world, BillingProviders(stripe=stripe), ref, "10.10")
    assert answer["fee_period"] == "P1"
    async with world.uow() as u:
        [row] = await u.fee_ledger.list("tnt_a", fid)
    assert row.refunded == Decimal("10.10")
    ledger = await fee_ledger(world.uow(readonly=True), tenant_id="tnt_a", follower_id=fid)
    assert ledger["data"][0]["refunded"] == "10.1"


async def test_a_retried_refund_is_sent_once_and_counted_once(world: World) -> None:
    stripe = FakeStripe(clock=world.clock)
    customer = await _stripe_tenant(world, "tnt_a", stripe)
    ref = stripe.pay(customer_ref=customer, amount_cents=5000)
    providers = BillingProviders(stripe=stripe)
    answers = [await refund_invoice(world.db.uow, providers, tenant_id="tnt_a",
                                    invoice_id=ref, amount=Decimal("10"), reason=None,
                                    actor="owner1", idempotency_key="k1") for _ in range(2)]
    assert answers[0]["refund_id"] == answers[1]["refund_id"]
    assert [a["refunded_total"] for a in answers] == ["10.00", "10.00"]
    [key] = stripe.refunds
    assert key.startswith("refund:") and len(key) < 255 and "k1" not in key
