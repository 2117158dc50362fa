"""The payment provider contracts (:class:`~vanta.application.ports.billing.StripeBilling`,
:class:`~vanta.application.ports.billing.BtcpayInvoicing`), run on the in-memory fakes
(``tests/fakes/billing.py``) and on the real adapters against the local simulators of
``tests/integration/billing_fakes.py`` (an in-process aiohttp app on 127.0.0.1 each).

What the application relies on: checkout sessions for known plans only, a completed checkout
read back as a neutral snapshot, plan changes, one fee invoice per key (and a refusal when a
key is reused for another invoice), one live BTCPay invoice per order, and argument checks
before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.billing import FakeBtcpay, FakeStripe
from tests.integration.billing_fakes import FakeBtcpay as BtcpaySim
from tests.integration.billing_fakes import StripeSim, serve
from vanta.application.ports.billing import BillingRejected, BtcpayInvoicing, StripeBilling
from vanta.application.ports.billing_facts import FeeInvoice, SubscriptionSnapshot
from vanta.domain.errors import ValidationFailed
from vanta.domain.subscriptions import SubscriptionStatus

OK, CANCEL = "https://app.example/ok", "https://app.example/cancel"
STORE = "store_main"


@dataclass
class StripeSide:
    provider: StripeBilling
    complete: Callable[[str], str]  # session id → the subscription it became
    customer: Callable[[], str]  # a new customer of the provider
    pay: Callable[[str], Any]  # an open invoice is paid in full


@dataclass
class BtcpaySide:
    provider: BtcpayInvoicing
    expire: Callable[[str], Any]
    settle: Callable[[str], Any]  # the invoice is paid in full and confirmed


@pytest.fixture(params=["fake", "stripe-sim"])
async def stripe(request: pytest.FixtureRequest) -> AsyncIterator[StripeSide]:
    if request.param == "fake":
        fake = FakeStripe()
        yield StripeSide(fake, lambda sid: fake.complete_checkout(sid).subscription_ref,
                         fake.add_customer, fake.pay)
        return
    from vanta.adapters.billing.stripe_gateway import StripeGateway

    sim = StripeSim()
    sim.add_price("price_core_month", 1900)
    sim.add_price("price_pro_month", 4900)

    def complete(sid: str) -> str:
        sim.complete_checkout(sid)
        return str(sim.sessions[sid]["subscription"])

    async with serve(sim.app) as url:
        gw = StripeGateway(sim.api_key, webhook_secret="whsec_x", max_network_retries=0,
                           price_ids={"core": "price_core_month", "pro": "price_pro_month"},
                           api_base=url)
        try:
            yield StripeSide(gw, complete, sim.add_customer, sim.pay_invoice)
        finally:
            await gw.aclose()


@pytest.fixture(params=["fake", "btcpay-sim"])
async def btcpay(request: pytest.FixtureRequest) -> AsyncIterator[BtcpaySide]:
    if request.param == "fake":
        fake = FakeBtcpay()
        yield BtcpaySide(fake, lambda iid: fake.set_status(iid, "Expired"),
                         lambda iid: fake.set_status(iid, "Settled"))
        return
    from vanta.adapters.billing.btcpay import BtcpayClient

    sim = BtcpaySim()
    async with serve(sim.app) as url:
        client = BtcpayClient(url, sim.api_key)
        try:
            yield BtcpaySide(client, sim.expire,
                             lambda iid: sim.receive_payment(iid, sim.invoices[iid]["amount"]))
        finally:
            await client.aclose()


# -- Stripe ---------------------------------------------------------------------------------

async def test_a_completed_checkout_reads_back_as_a_snapshot(stripe: StripeSide) -> None:
    sid, url = await stripe.provider.create_checkout_session(None, "tnt_a", "pro", OK, CANCEL)
    assert sid and url.startswith("https://")
    sub = stripe.complete(sid)
    snap = await stripe.provider.get_subscription(sub)
    assert isinstance(snap, SubscriptionSnapshot)
    assert (snap.tenant_id, snap.subscription_ref, snap.plan_id, snap.status) == (
        "tnt_a", sub, "pro", SubscriptionStatus.ACTIVE)
    assert snap.customer_ref and snap.current_period_end is not None
    assert snap.current_period_end > datetime.now(UTC)


async def test_checkout_for_a_known_customer_and_refusals(stripe: StripeSide) -> None:
    customer = stripe.customer()
    sid, _ = await stripe.provider.create_checkout_session(customer, "tnt_b", "core", OK,
                                                           CANCEL)
    snap = await stripe.provider.get_subscription(stripe.complete(sid))
    assert (snap.customer_ref, snap.plan_id) == (customer, "core")
    with pytest.raises(ValidationFailed) as v:
        await stripe.provider.create_checkout_session(None, "tnt_a", "platinum", OK, CANCEL)
    assert v.value.code == "unknown_plan"
    with pytest.raises(ValidationFailed):
        await stripe.provider.create_checkout_session(None, "", "pro", OK, CANCEL)
    with pytest.raises(BillingRejected) as e:
        await stripe.provider.create_checkout_session("cus_nobody", "tnt_a", "core", OK,
                                                      CANCEL)
    assert e.value.code == "resource_missing"


async def test_change_plan_moves_the_subscription(stripe: StripeSide) -> None:
    sid, _ = await stripe.provider.create_checkout_session(None, "tnt_a", "core", OK, CANCEL)
    sub = stripe.complete(sid)
    changed = await stripe.provider.change_plan(sub, "pro")
    assert (changed.subscription_ref, changed.plan_id) == (sub, "pro")
    assert (await stripe.provider.get_subscription(sub)).plan_id == "pro"
    again = await stripe.provider.change_plan(sub, "pro", "none")
    assert again.plan_id == "pro"
    with pytest.raises(ValueError):
        await stripe.provider.change_plan(sub, "core", "sometimes")
    with pytest.raises(ValidationFailed):
        await stripe.provider.change_plan(sub, "platinum")


async def test_cancel_at_period_end_resume_and_cancel_now(stripe: StripeSide) -> None:
    sid, _ = await stripe.provider.create_checkout_session(None, "tnt_a", "core", OK, CANCEL)
    sub = stripe.complete(sid)
    marked = await stripe.provider.cancel(sub, at_period_end=True)
    assert (marked.status, marked.cancel_at_period_end) == (SubscriptionStatus.ACTIVE, True)
    resumed = await stripe.provider.resume(sub)
    assert (resumed.status, resumed.cancel_at_period_end) == (SubscriptionStatus.ACTIVE, False)
    gone = await stripe.provider.cancel(sub)
    assert gone.status is SubscriptionStatus.CANCELED
    assert (await stripe.provider.cancel(sub)).status is SubscriptionStatus.CANCELED
    with pytest.raises(BillingRejected):
        await stripe.provider.resume(sub)


async def test_an_unknown_subscription_is_rejected(stripe: StripeSide) -> None:
    with pytest.raises(BillingRejected) as e:
        await stripe.provider.get_subscription("sub_nobody")
    assert e.value.code == "resource_missing"


async def test_one_fee_invoice_per_key(stripe: StripeSide) -> None:
    customer = stripe.customer()
    key = "fee:tnt_a:follower_1:2025-09"
    fee = await stripe.provider.create_invoice_for_fee(customer, 1234, "USD", "Fee Sep", key)
    assert isinstance(fee, FeeInvoice)
    assert (fee.status, fee.amount_due_cents, fee.currency) == ("open", 1234, "usd")
    assert fee.invoice_ref and fee.hosted_invoice_url
    assert await stripe.provider.create_invoice_for_fee(customer, 1234, "USD", "Fee Sep",
                                                        key) == fee
    with pytest.raises(BillingRejected) as e:
        await stripe.provider.create_invoice_for_fee(customer, 9999, "usd", "Fee Sep", key)
    assert e.value.code == "idempotency_error"
    other = await stripe.provider.create_invoice_for_fee(customer, 500, "usd", "Fee Oct",
                                                         "fee:tnt_a:follower_1:2025-10")
    assert other.invoice_ref != fee.invoice_ref


async def test_a_paid_invoice_is_refunded_up_to_what_was_paid(stripe: StripeSide) -> None:
    customer = stripe.customer()
    fee = await stripe.provider.create_invoice_for_fee(customer, 2500, "usd", "Fee", "fee:r1")
    stripe.pay(fee.invoice_ref)
    inv = await stripe.provider.paid_invoice(fee.invoice_ref)
    assert (inv.owner_ref, inv.paid, inv.refunded, inv.currency) == (
        customer, Decimal("25"), Decimal(0), "usd")
    first = await stripe.provider.refund(fee.invoice_ref, Decimal("10.50"), reason="sorry",
                                         idempotency_key="refund:r1:a")
    assert (first.amount, first.status) == (Decimal("10.50"), "succeeded") and first.refund_ref
    again = await stripe.provider.refund(fee.invoice_ref, Decimal("10.50"), reason="sorry",
                                         idempotency_key="refund:r1:a")
    assert again == first, "a retried refund is not paid twice"
    assert (await stripe.provider.paid_invoice(fee.invoice_ref)).refunded == Decimal("10.5")
    with pytest.raises(BillingRejected) as e:
        await stripe.provider.refund(fee.invoice_ref, Decimal("14.51"))
    assert e.value.code == "amount_too_large"
    with pytest.raises(ValidationFailed):
        await stripe.provider.refund(fee.invoice_ref, Decimal("0.001"))
    await stripe.provider.refund(fee.invoice_ref, Decimal("14.50"))
    assert (await stripe.provider.paid_invoice(fee.invoice_ref)).refunded == Decimal(25)
    with pytest.raises(BillingRejected) as e:
        await stripe.provider.paid_invoice("in_missing")
    assert e.value.code == "resource_missing"


@pytest.mark.parametrize("bad", [{"amount_cents": 0}, {"amount_cents": 12.5},
                                 {"amount_cents": True}, {"currency": "dollars"},
                                 {"idempotency_key": ""}])
async def test_fee_arguments_are_checked_before_sending(stripe: StripeSide,
                                                        bad: dict[str, Any]) -> None:
    args: dict[str, Any] = {"customer_ref": stripe.customer(), "amount_cents": 100,
                            "currency": "usd", "description": "x",
                            "idempotency_key": "k"} | bad
    with pytest.raises(ValidationFailed):
        await stripe.provider.create_invoice_for_fee(**args)


# -- BTCPay ---------------------------------------------------------------------------------

async def test_one_live_invoice_per_order(btcpay: BtcpaySide) -> None:
    p = btcpay.provider
    first, link = await p.create_invoice(STORE, Decimal("25.00"), "USD", "sub:tnt_a:2025-09",
                                         {"tenant_id": "tnt_a"}, "https://app.example/done")
    assert first and link.startswith("http")
    assert await p.create_invoice(STORE, Decimal("25.00"), "USD",
                                  "sub:tnt_a:2025-09") == (first, link)
    with pytest.raises(BillingRejected) as e:
        await p.create_invoice(STORE, Decimal("30.00"), "USD", "sub:tnt_a:2025-09")
    assert e.value.code == "order_id_conflict"
    other, _ = await p.create_invoice(STORE, Decimal("25.00"), "USD", "sub:tnt_b:2025-09")
    assert other != first
    btcpay.expire(first)  # an expired invoice is not reused: the customer gets a new one
    second, _ = await p.create_invoice(STORE, Decimal("25.00"), "USD", "sub:tnt_a:2025-09")
    assert second not in (first, other)


async def test_a_settled_invoice_is_refunded_and_the_total_kept(btcpay: BtcpaySide) -> None:
    p = btcpay.provider
    iid, _ = await p.create_invoice(STORE, Decimal("40"), "USD", "sub:tnt_a:r",
                                    {"tenant_id": "tnt_a"})
    unpaid = await p.paid_invoice(STORE, iid)
    assert (unpaid.owner_ref, unpaid.paid) == ("tnt_a", Decimal(0))
    with pytest.raises(BillingRejected):
        await p.refund(STORE, iid, Decimal("5"), "USD")
    assert (await p.paid_invoice(STORE, iid)).refunded == Decimal(0), "a refusal is undone"
    btcpay.settle(iid)
    receipt = await p.refund(STORE, iid, Decimal("15.5"), "USD", reason="sorry")
    assert receipt.amount == Decimal("15.5") and receipt.refund_ref
    inv = await p.paid_invoice(STORE, iid)
    assert (inv.paid, inv.refunded, inv.currency) == (Decimal(40), Decimal("15.5"), "USD")
    with pytest.raises(BillingRejected) as e:
        await p.paid_invoice(STORE, "nope")
    assert e.value.code == "not_found"


@pytest.mark.parametrize("amount", [Decimal(0), Decimal(-1), "NaN", "abc"])
async def test_bad_amounts_are_refused_before_sending(btcpay: BtcpaySide,
                                                      amount: Any) -> None:
    with pytest.raises(ValueError):
        await btcpay.provider.create_invoice(STORE, amount, "USD", "o-3")


async def test_a_float_amount_is_a_type_error(btcpay: BtcpaySide) -> None:
    with pytest.raises(TypeError):
        await btcpay.provider.create_invoice(STORE, 1.5, "USD", "o-3")  # type: ignore[arg-type]


async def test_the_fakes_record_calls_and_fail_on_demand() -> None:
    from vanta.application.ports.billing import BillingUnavailable

    stripe, btcpay = FakeStripe(), FakeBtcpay()
    stripe.fail_next(BillingUnavailable("down", status=503))
    with pytest.raises(BillingUnavailable):
        await stripe.create_checkout_session(None, "tnt_a", "pro", OK, CANCEL)
    await stripe.create_checkout_session(None, "tnt_a", "pro", OK, CANCEL)
    assert [name for name, _ in stripe.calls] == ["create_checkout_session"] * 2
    btcpay.fail_next(BillingUnavailable("down"), times=1)
    with pytest.raises(BillingUnavailable):
        await btcpay.create_invoice(STORE, Decimal(5), "USD", "o-1")
    assert (await btcpay.create_invoice(STORE, Decimal(5), "USD", "o-1"))[0]
    await stripe.aclose()
    assert stripe.closed
