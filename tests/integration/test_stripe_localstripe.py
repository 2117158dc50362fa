"""``StripeGateway`` and the real ``stripe`` SDK against two local peers.

**localstripe** (real, PyPI): a stateful fake Stripe server. It runs here in a subprocess bound
to 127.0.0.1 with its pickle persistence off (``billing_fakes.LOCALSTRIPE_WRAPPER``). It covers
customers, payment methods, products, legacy Plans, subscriptions (creation charges the first
invoice), plan changes through ``items[].plan``, cancellation and *signed webhooks sent over
HTTP* (``Stripe-Signature: t=…,v1=…``), which we receive and verify with ``verify_event``.
Without it the localstripe tests are skipped (or fail when ``CI=true``).

**StripeSim** (simulated, in ``billing_fakes``): localstripe has no Prices and no Checkout
Sessions, its subscription update takes neither ``items[].price`` nor
``proration_behavior``, it cannot create a standalone invoice (it always bills the customer's
active subscription into it and has no ``/finalize``), and it ignores ``Idempotency-Key``. So
``create_checkout_session``, ``change_plan`` and ``create_invoice_for_fee`` are driven against
the simulator, which answers those endpoints the way Stripe's API reference documents them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.billing_fakes import (
    LocalStripe,
    StripeSim,
    WebhookInbox,
    serve,
    start_localstripe,
    stripe_signature,
)
from vanta.adapters.billing.errors import (
    BillingAuthFailed,
    BillingEventRejected,
    BillingRejected,
)
from vanta.adapters.billing.stripe_events import (
    PaymentFact,
    PaymentOutcome,
    SubscriptionFact,
)
from vanta.adapters.billing.stripe_gateway import StripeGateway
from vanta.domain.errors import ValidationFailed
from vanta.domain.subscriptions import SubscriptionStatus

WEBHOOK_SECRET = "whsec_localstripe_test"
PICKLE = Path("/tmp/localstripe.pickle")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: localstripe is required)")
    pytest.skip(f"{reason}; `pip install localstripe` to run it")


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    if importlib.util.find_spec("localstripe") is None:
        _unavailable("localstripe is not installed")
    pickle_existed = PICKLE.exists()
    try:
        ls = start_localstripe()
    except (RuntimeError, OSError) as e:
        _unavailable(f"localstripe could not be started: {e}")
    try:
        yield ls
    finally:
        ls.stop()
    if not pickle_existed:
        assert not PICKLE.exists(), "localstripe wrote /tmp/localstripe.pickle"


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[WebhookInbox, str]]:
    box = WebhookInbox()
    async with serve(box.app) as url:
        yield box, f"{url}/hook"


def _events(box: WebhookInbox, type_: str, key: str, value: str) -> list[tuple[bytes, str]]:
    """Deliveries of ``type_`` whose object has ``key == value``: (raw body, signature)."""
    out = []
    for body, headers in box.received:
        doc = json.loads(body)
        if doc["type"] == type_ and doc["data"]["object"].get(key) == value:
            out.append((body, headers["Stripe-Signature"]))
    return out


async def test_subscription_lifecycle_with_signed_webhooks(
        localstripe: LocalStripe, inbox: tuple[WebhookInbox, str]) -> None:
    box, hook_url = inbox
    # localstripe's webhook registration: POST /_config/webhooks/<id>, form fields url, secret
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{localstripe.url}/_config/webhooks/vanta",
                            data={"url": hook_url, "secret": WEBHOOK_SECRET})
        assert r.status_code == 200

    run = secrets.token_hex(4)
    core, pro = f"plan_core_{run}", f"plan_pro_{run}"  # legacy Plans: localstripe has no Prices
    gateway = StripeGateway("sk_test_localstripe", webhook_secret=WEBHOOK_SECRET,
                            price_ids={"core": core, "pro": pro}, api_base=localstripe.url,
                            max_network_retries=0)
    try:
        v1 = gateway.client.v1  # the same SDK client, for what the gateway does not wrap
        pm = await v1.payment_methods.create_async({"type": "card", "card": {
            "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
        customer = await v1.customers.create_async({
            "email": "ana@example.test", "payment_method": pm.id,
            "invoice_settings": {"default_payment_method": pm.id},
            "metadata": {"tenant_id": "tnt_ls"}})
        product = await v1.products.create_async({"name": "Vanta"})
        for plan_id, amount in ((core, 1900), (pro, 4900)):
            await v1.plans.create_async({"id": plan_id, "product": product.id,
                                         "amount": amount, "currency": "usd",
                                         "interval": "month"})
        sub = await v1.subscriptions.create_async({
            "customer": customer.id, "items": [{"plan": core}],
            "metadata": {"tenant_id": "tnt_ls", "plan_id": "core"}})
        assert sub.status == "active"  # the first invoice was charged to the card

        snap = await gateway.get_subscription(sub.id)
        assert (snap.tenant_id, snap.customer_ref, snap.status, snap.plan_id) == (
            "tnt_ls", customer.id, SubscriptionStatus.ACTIVE, "core")
        assert snap.current_period_end is not None

        # Change plan. localstripe only understands the legacy ``items[].plan`` (no Prices, no
        # proration_behavior), so this step goes through the SDK directly; the gateway's own
        # ``change_plan`` (``items[].price``) is covered against the simulator below.
        item_id = sub["items"]["data"][0]["id"]
        await v1.subscriptions.update_async(sub.id, {"items": [{"id": item_id, "plan": pro}]})
        snap = await gateway.get_subscription(sub.id)
        assert snap.plan_id == "pro"  # read from the billed plan, not from stale metadata
        assert snap.price_ref == pro

        canceled = await gateway.cancel(sub.id)
        assert canceled.status is SubscriptionStatus.CANCELED
        assert (await gateway.cancel(sub.id)).status is SubscriptionStatus.CANCELED

        # localstripe signs and POSTs each event about a second after it happens
        await box.wait_for(lambda _: bool(
            _events(box, "customer.subscription.created", "id", sub.id)
            and _events(box, "customer.subscription.deleted", "id", sub.id)
            and _events(box, "invoice.payment_succeeded", "subscription", sub.id)))

        created_body, created_sig = _events(box, "customer.subscription.created", "id",
                                            sub.id)[0]
        deleted_body, deleted_sig = _events(box, "customer.subscription.deleted", "id",
                                            sub.id)[0]
        paid_body, paid_sig = _events(box, "invoice.payment_succeeded", "subscription",
                                      sub.id)[0]

        created = gateway.translate(gateway.verify_event(created_body, created_sig))
        deleted = gateway.translate(gateway.verify_event(deleted_body, deleted_sig))
        paid = gateway.translate(gateway.verify_event(paid_body, paid_sig))
        assert isinstance(created, SubscriptionFact) and isinstance(deleted, SubscriptionFact)
        assert (created.tenant_id, created.subscription_ref, created.customer_ref,
                created.status, created.plan_id) == (
            "tnt_ls", sub.id, customer.id, SubscriptionStatus.ACTIVE, "core")
        assert (deleted.status, deleted.plan_id) == (SubscriptionStatus.CANCELED, "pro")
        assert deleted.supersedes(created.event_created)
        assert not created.supersedes(deleted.event_created) \
            or created.event_created == deleted.event_created
        assert isinstance(paid, PaymentFact)
        assert (paid.outcome, paid.subscription_ref, paid.customer_ref, paid.amount_cents,
                paid.currency) == (PaymentOutcome.PAID, sub.id, customer.id, 1900, "usd")

        # the same real deliveries are refused with the wrong secret or a changed body
        other = StripeGateway("sk_test_localstripe", webhook_secret="whsec_wrong",
                              price_ids={}, api_base=localstripe.url)
        try:
            with pytest.raises(BillingEventRejected) as e:
                other.verify_event(created_body, created_sig)
            assert e.value.reason == "bad_signature"
        finally:
            await other.aclose()
        with pytest.raises(BillingEventRejected) as e:
            gateway.verify_event(created_body.replace(b"tnt_ls", b"tnt_xx"), created_sig)
        assert e.value.reason == "bad_signature"
        with pytest.raises(BillingEventRejected) as e:
            gateway.verify_event(created_body, None)  # type: ignore[arg-type]
        assert e.value.reason == "missing_signature"
    finally:
        await gateway.aclose()


async def test_localstripe_errors_map_to_billing_errors(localstripe: LocalStripe) -> None:
    gateway = StripeGateway("sk_test_localstripe", webhook_secret=WEBHOOK_SECRET,
                            price_ids={"core": "plan_x"}, api_base=localstripe.url,
                            max_network_retries=0)
    try:
        with pytest.raises(BillingRejected) as e:
            await gateway.get_subscription("sub_doesnotexist")
        assert e.value.status == 404
    finally:
        await gateway.aclose()


# -- against the Stripe-shaped simulator ----------------------------------------------------

PRICES = {"core": "price_core_month", "pro": "price_pro_month"}


@pytest.fixture
async def sim_url() -> AsyncIterator[tuple[StripeSim, str]]:
    s = StripeSim()
    s.add_price("price_core_month", 1900)
    s.add_price("price_pro_month", 4900)
    async with serve(s.app) as url:
        yield s, url


@pytest.fixture
async def sim(sim_url: tuple[StripeSim, str]) -> AsyncIterator[tuple[StripeSim, StripeGateway]]:
    s, url = sim_url
    gw = StripeGateway(s.api_key, webhook_secret=WEBHOOK_SECRET, price_ids=PRICES,
                       api_base=url, max_network_retries=0)
    try:
        yield s, gw
    finally:
        await gw.aclose()


def _deliver(gw: StripeGateway, event: dict[str, Any]) -> Any:
    """Sign a simulated event as Stripe would, then verify and translate it."""
    body = json.dumps(event).encode()
    return gw.translate(gw.verify_event(body, stripe_signature(body, WEBHOOK_SECRET)))


async def test_checkout_session_carries_tenant_plan_and_price(
        sim: tuple[StripeSim, StripeGateway]) -> None:
    s, gw = sim
    session_id, url = await gw.create_checkout_session(
        None, "tnt_a", "pro", "https://app.example/ok?s={CHECKOUT_SESSION_ID}",
        "https://app.example/cancel")
    assert session_id.startswith("cs_test_")
    assert url == f"https://checkout.stripe.com/c/pay/{session_id}"
    method, path, params = s.requests[-1]
    assert (method, path) == ("POST", "/v1/checkout/sessions")
    assert params["mode"] == "subscription"
    assert params["line_items"] == [{"price": "price_pro_month", "quantity": "1"}]
    assert params["client_reference_id"] == "tnt_a"
    assert params["metadata"] == {"tenant_id": "tnt_a", "plan_id": "pro"}
    assert params["subscription_data"] == {"metadata": {"tenant_id": "tnt_a", "plan_id": "pro"}}
    assert "customer" not in params

    customer = s.add_customer()
    await gw.create_checkout_session(customer, "tnt_a", "core", "https://a.example/ok",
                                     "https://a.example/no")
    assert s.requests[-1][2]["customer"] == customer

    with pytest.raises(ValidationFailed) as v:
        await gw.create_checkout_session(None, "tnt_a", "platinum", "https://a.example/ok",
                                         "https://a.example/no")
    assert v.value.code == "unknown_plan"
    with pytest.raises(BillingRejected) as e:
        await gw.create_checkout_session("cus_nobody", "tnt_a", "core",
                                         "https://a.example/ok", "https://a.example/no")
    assert (e.value.code, e.value.param) == ("resource_missing", "customer")


async def test_a_completed_checkout_becomes_facts_in_any_delivery_order(
        sim: tuple[StripeSim, StripeGateway]) -> None:
    s, gw = sim
    session_id, _ = await gw.create_checkout_session(None, "tnt_a", "pro",
                                                     "https://a.example/ok",
                                                     "https://a.example/no")
    events = s.complete_checkout(session_id)
    assert [e["type"] for e in events] == [
        "customer.subscription.created", "invoice.paid", "checkout.session.completed"]
    sub_id = s.sessions[session_id]["subscription"]
    await gw.cancel(sub_id)
    events.append(s.events[-1])  # customer.subscription.deleted

    facts = [_deliver(gw, e) for e in events]
    created, paid, completed, deleted = facts
    assert (created.tenant_id, created.plan_id, created.status) == (
        "tnt_a", "pro", SubscriptionStatus.ACTIVE)
    assert (paid.tenant_id, paid.subscription_ref, paid.amount_cents) == (
        "tnt_a", sub_id, 4900)
    assert completed.status_is_inferred and completed.customer_ref == created.customer_ref
    assert deleted.status is SubscriptionStatus.CANCELED

    sub_facts = [created, completed, deleted]
    for _ in range(10):  # the caller's rule keeps the newest state whatever the order
        random.shuffle(sub_facts)
        last, status = None, None
        for f in sub_facts:
            if f.supersedes(last) and not (f.status_is_inferred and status is not None):
                last, status = f.event_created, f.status
        assert status is SubscriptionStatus.CANCELED


async def test_change_plan_moves_the_item_to_the_new_price(
        sim: tuple[StripeSim, StripeGateway]) -> None:
    s, gw = sim
    customer = s.add_customer()
    sub = s.add_subscription(customer, "price_core_month",
                             metadata={"tenant_id": "tnt_a", "plan_id": "core"})
    item_id = sub["items"]["data"][0]["id"]

    snap = await gw.change_plan(sub["id"], "pro")
    assert (snap.plan_id, snap.price_ref, snap.status, snap.tenant_id) == (
        "pro", "price_pro_month", SubscriptionStatus.ACTIVE, "tnt_a")
    method, path, params = s.requests[-1]
    assert (method, path) == ("POST", f"/v1/subscriptions/{sub['id']}")
    assert params == {"items": [{"id": item_id, "price": "price_pro_month"}],
                      "proration_behavior": "create_prorations",
                      "metadata": {"plan_id": "pro"}}
    assert sub["metadata"] == {"tenant_id": "tnt_a", "plan_id": "pro"}
    prorations = [ii for ii in s.invoice_items.values() if ii["subscription"] == sub["id"]]
    assert [ii["amount"] for ii in prorations] == [3000]

    # the updated event names the new plan, with what changed
    fact = _deliver(gw, s.events[-1])
    assert (fact.plan_id, fact.event_type) == ("pro", "customer.subscription.updated")

    # already on that price: nothing is sent
    before = len(s.requests)
    assert (await gw.change_plan(sub["id"], "pro")).plan_id == "pro"
    assert [r[0] for r in s.requests[before:]] == ["GET"]

    await gw.change_plan(sub["id"], "core", proration="none")
    assert s.requests[-1][2]["proration_behavior"] == "none"
    assert len([ii for ii in s.invoice_items.values()
                if ii["subscription"] == sub["id"]]) == 1

    with pytest.raises(ValueError):
        await gw.change_plan(sub["id"], "pro", proration="sometimes")
    with pytest.raises(ValidationFailed):
        await gw.change_plan(sub["id"], "platinum")
    with pytest.raises(BillingRejected) as e:
        await gw.change_plan("sub_missing", "pro")
    assert (e.value.status, e.value.code) == (404, "resource_missing")

    await gw.cancel(sub["id"])
    with pytest.raises(BillingRejected):  # a canceled subscription cannot change price
        await gw.change_plan(sub["id"], "pro")


async def test_cancel_at_period_end_and_twice(sim: tuple[StripeSim, StripeGateway]) -> None:
    s, gw = sim
    sub = s.add_subscription(s.add_customer(), "price_pro_month")
    snap = await gw.cancel(sub["id"], at_period_end=True)
    assert snap.cancel_at_period_end and snap.status is SubscriptionStatus.ACTIVE
    assert (await gw.cancel(sub["id"])).status is SubscriptionStatus.CANCELED
    # the simulator refuses a second cancel as Stripe does; the gateway reads the state back
    assert (await gw.cancel(sub["id"])).status is SubscriptionStatus.CANCELED


async def test_fee_invoice_is_created_once_per_key(
        sim: tuple[StripeSim, StripeGateway]) -> None:
    s, gw = sim
    customer = s.add_customer()
    # a pending proration on the customer must not be swept into the fee invoice
    s._pending_item(customer, 777, "usd", "Proration", subscription="sub_x")

    key = "fee:tnt_a:follower_1:2025-09"
    fee = await gw.create_invoice_for_fee(customer, 1234, "USD", "Performance fee Sep 2025",
                                          key)
    assert (fee.status, fee.amount_due_cents, fee.currency) == ("open", 1234, "usd")
    assert fee.hosted_invoice_url
    inv = s.invoices[fee.invoice_ref]
    assert [line["amount"] for line in inv["lines"]["data"]] == [1234]
    assert inv["metadata"] == {"vanta_fee_key": key}
    assert (inv["collection_method"], inv["auto_advance"]) == ("charge_automatically", True)

    # a retry of the whole call (say, after a crash) replays every step: still one invoice
    again = await gw.create_invoice_for_fee(customer, 1234, "USD", "Performance fee Sep 2025",
                                            key)
    assert again == fee
    assert len(s.invoices) == 1
    assert len([ii for ii in s.invoice_items.values() if ii["invoice"]]) == 1

    # the same key for a different amount is a caller bug, and Stripe says so
    with pytest.raises(BillingRejected) as e:
        await gw.create_invoice_for_fee(customer, 9999, "usd", "Performance fee Sep 2025",
                                        key)
    assert e.value.code == "idempotency_error"

    # the paid event names the fee
    inv.update(status="paid", amount_paid=1234)
    fact = _deliver(gw, s._event("invoice.paid", inv))
    assert (fact.fee_key, fact.amount_cents, fact.outcome) == (key, 1234, PaymentOutcome.PAID)

    for bad in ({"amount_cents": 0}, {"amount_cents": 12.5}, {"currency": "dollars"},
                {"idempotency_key": ""}):
        args = {"customer_ref": customer, "amount_cents": 100, "currency": "usd",
                "description": "x", "idempotency_key": "k"} | bad
        with pytest.raises(ValidationFailed):
            await gw.create_invoice_for_fee(**args)  # type: ignore[arg-type]


async def test_wrong_api_key_is_an_auth_failure(sim_url: tuple[StripeSim, str]) -> None:
    _, url = sim_url
    gw = StripeGateway("sk_test_wrong", webhook_secret=WEBHOOK_SECRET, price_ids=PRICES,
                       api_base=url, max_network_retries=0)
    try:
        with pytest.raises(BillingAuthFailed) as e:
            await gw.get_subscription("sub_1")
        assert e.value.status == 401
        assert "sk_test_wrong" not in str(e.value) and "sk_test_wrong" not in repr(gw)
    finally:
        await gw.aclose()
