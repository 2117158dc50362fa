"""Performance fees for a BTCPay tenant over the fakes: the fee is invoiced through BTCPay
(once, with metadata naming the period), the invoice is stored on the ledger row, and the
BTCPay "invoice settled" webhook for it records the fee as paid without touching the plan."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.application.conftest import World
from tests.fakes.billing import FakeBtcpay, FakeStripe, FakeVerifier
from vanta.application.billing.inbox import receive_btcpay
from vanta.application.billing.providers import BillingProviders
from vanta.application.billing.refunds import refund_invoice
from vanta.application.fee_invoicing import FeeInvoicers
from vanta.application.fees_service import close_fee_period, fee_ledger
from vanta.application.navs import record_nav
from vanta.application.ports.billing import BillingUnavailable
from vanta.application.ports.billing_facts import BtcpayInvoiceFact, BtcpayOutcome, InboundEvent


def day(w: World, n: float) -> str:
    return (w.clock.now - timedelta(days=30) + timedelta(days=n)).isoformat()


async def _btcpay_tenant(w: World) -> str:
    fid = await w.follower()
    async with w.uow() as u:
        await u.subscriptions.replace("tnt_a", {
            "subscription_id": "s1", "tenant_id": "tnt_a", "plan_id": "pro",
            "status": "active", "entitlements": {}, "created_at": w.clock.now,
            "renewal_at": w.clock.now + timedelta(days=10), "provider": "btcpay",
            "provider_ref": "btc_plan", "customer_ref": None})
        await u.commit()
    for nav, n in (("1000", 0), ("1250.50", 1)):
        await record_nav(w.uow(), tenant_id="tnt_a", entity="follower", entity_id=fid,
                         raw={"nav": nav, "as_of": day(w, n)}, actor="ops", clock=w.clock)
    return fid


async def _close(w: World, fid: str, btcpay: FakeBtcpay, stripe: Any = None
                 ) -> dict[str, Any]:
    _, body = await close_fee_period(
        w.db.uow, tenant_id="tnt_a", follower_id=fid,
        raw={"label": "P1", "rate": "0.2", "end": day(w, 2)}, actor="ops", clock=w.clock,
        invoicers=FeeInvoicers(stripe=stripe, btcpay=btcpay, btcpay_store_id="store1"))
    return body


async def test_a_btcpay_tenants_fee_is_invoiced_once_through_btcpay(world: World) -> None:
    fid = await _btcpay_tenant(world)
    btcpay, stripe = FakeBtcpay(), FakeStripe(clock=world.clock)
    body = await _close(world, fid, btcpay, stripe)
    again = await _close(world, fid, btcpay, stripe)
    assert stripe.calls == []
    key = f"fee:tnt_a:{fid}:P1"
    assert btcpay.calls == [("create_invoice", {"store_id": "store1",
                                                "amount": Decimal("50.10"), "order_id": key})]
    [(iid, inv)] = btcpay.invoices.items()
    assert (inv["amount"], inv["currency"]) == (Decimal("50.10"), "USD")
    assert {k: inv["metadata"][k] for k in ("tenant_id", "kind", "fee_key", "follower_id",
                                            "period_label")} \
        == {"tenant_id": "tnt_a", "kind": "performance_fee", "fee_key": key,
            "follower_id": fid, "period_label": "P1"}
    assert body["invoice"] == {"provider": "btcpay", "ref": iid}
    assert (body["invoice_status"], again["invoice_status"]) == ("invoiced", "invoiced")
    async with world.uow() as u:
        row = await u.fee_ledger.get("tnt_a", fid, "P1")
        [ev] = [e for e in await u.audit.all() if e.action == "fee_invoiced"]
    assert row is not None and (row.invoice_provider, row.invoice_ref) == ("btcpay", iid)
    assert ev.payload["provider"] == "btcpay" and ev.payload["invoice_ref"] == iid


async def test_a_btcpay_failure_leaves_the_row_and_a_retry_invoices_it(world: World) -> None:
    fid = await _btcpay_tenant(world)
    btcpay = FakeBtcpay()
    btcpay.fail_next(BillingUnavailable("down"))
    first = await _close(world, fid, btcpay)
    assert (first["invoice"], first["invoice_status"]) \
        == (None, "pending_retry:billing_unavailable")
    second = await _close(world, fid, btcpay)
    assert second["invoice_status"] == "invoiced"
    assert len(btcpay.invoices) == 1


async def test_btcpay_not_configured_leaves_the_fee_uninvoiced(world: World) -> None:
    fid = await _btcpay_tenant(world)
    _, body = await close_fee_period(
        world.db.uow, tenant_id="tnt_a", follower_id=fid,
        raw={"label": "P1", "rate": "0.2", "end": day(world, 2)}, actor="ops",
        clock=world.clock, invoicers=FeeInvoicers(stripe=FakeStripe(clock=world.clock)))
    assert (body["invoice"], body["invoice_status"]) == (None, "no_provider")


def _settled(w: World, iid: str, delivery: str, metadata_fee_key: str | None
             ) -> BtcpayInvoiceFact:
    return BtcpayInvoiceFact(
        invoice_id=iid, store_id="store1", outcome=BtcpayOutcome.SETTLED,
        event_at=w.clock.now, dedupe_key=delivery, tenant_id="tnt_a",
        event_type="InvoiceSettled", delivery_id=delivery, price=Decimal("50.10"),
        fee_key=metadata_fee_key)


async def _deliver(w: World, fact: BtcpayInvoiceFact) -> str:
    verifier = FakeVerifier("btcpay")
    body, sig = verifier.sign(InboundEvent("btcpay", fact.dedupe_key, fact.event_type, fact))
    res = await receive_btcpay(w.db.uow, BillingProviders(btcpay_events=verifier), body, sig,
                               clock=w.clock)
    return res.outcome


async def test_the_settled_webhook_marks_the_btcpay_fee_paid(world: World) -> None:
    fid = await _btcpay_tenant(world)
    btcpay = FakeBtcpay()
    await _close(world, fid, btcpay)
    [iid] = btcpay.invoices
    # the webhook may carry no fee metadata: the ledger row's invoice ref finds the period
    assert await _deliver(world, _settled(world, iid, "d1", None)) == "fee_invoice_paid"
    async with world.uow() as u:
        [paid] = [e for e in await u.audit.all() if e.action == "fee_invoice_paid"]
        sub = await u.subscriptions.current("tnt_a")
    assert (paid.payload["follower_id"], paid.payload["period_label"]) == (fid, "P1")
    assert paid.actor == "btcpay"
    # the plan's paid period is not touched by a fee payment
    assert sub is not None and (sub.provider_ref, sub.renewal_at) \
        == ("btc_plan", world.clock.now + timedelta(days=10))


async def test_a_fee_invoice_settling_before_its_ref_is_stored_is_still_a_fee(
        world: World) -> None:
    await _btcpay_tenant(world)
    outcome = await _deliver(world, _settled(world, "btc_x", "d2", "fee:tnt_a:f:P9"))
    assert outcome == "fee_invoice_paid"
    async with world.uow() as u:
        sub = await u.subscriptions.current("tnt_a")
    assert sub is not None and sub.provider_ref == "btc_plan"


async def test_a_refunded_btcpay_fee_invoice_shows_in_the_ledger(world: World) -> None:
    fid = await _btcpay_tenant(world)
    btcpay = FakeBtcpay()
    body = await _close(world, fid, btcpay)
    iid = body["invoice"]["ref"]
    btcpay.set_status(iid, "Settled")
    answer = await refund_invoice(
        world.db.uow, BillingProviders(btcpay=btcpay, btcpay_store_id="store1"),
        tenant_id="tnt_a", invoice_id=iid, amount=None, reason=None, actor="owner1")
    assert (answer["provider"], answer["amount"], answer["fee_period"]) == (
        "btcpay", "50.10", "P1")
    ledger = await fee_ledger(world.uow(readonly=True), tenant_id="tnt_a", follower_id=fid)
    assert ledger["data"][0]["refunded"] == "50.1"
