"""Plan changes, signed provider webhooks and what they do to entitlements.

Stripe is ``billing_fakes.StripeSim`` and BTCPay is ``billing_fakes.FakeBtcpay``, both served
on 127.0.0.1; their events are signed here the way the providers document it and posted to
the API, which verifies them with the production code.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.vetter import FakeTargetVetter
from tests.http_helpers import UNLIMITED, add_idempotency_key
from tests.integration.billing_fakes import (
    SIM_API_VERSION,
    FakeBtcpay,
    StripeSim,
    btcpay_signature,
    serve,
    stripe_signature,
)
from vanta.application.billing import BillingProviders, expire_btcpay_periods
from vanta.application.ports.records_billing import InboxRecord
from vanta.application.ports.records_tenancy import SubscriptionRecord
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant, create_vault
from vanta.bootstrap import Container, build
from vanta.config import Settings
from vanta.entrypoints.api.app import create_app

STRIPE_SECRET = "whsec_test_vanta_billing"
BTCPAY_SECRET = "btcpay-webhook-secret"
STORE = "store_main"
PRICES = {"core": "price_core", "pro": "price_pro", "institutional": "price_inst"}


@dataclass
class Billing:
    container: Container
    client: httpx.AsyncClient
    sim: StripeSim
    btc: FakeBtcpay
    providers: BillingProviders

    def auth(self, tenant: str = "tnt_a", scopes: tuple[str, ...] = ALL_SCOPES
             ) -> dict[str, str]:
        return {"Authorization":
                f"Bearer {self.container.issuer.issue('user-1', tenant, scopes)}"}

    async def stripe(self, event: dict[str, Any], *, secret: str = STRIPE_SECRET,
                     timestamp: int | None = None, body: bytes | None = None,
                     signature: str | None = "sign") -> httpx.Response:
        raw = body if body is not None else json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            headers["Stripe-Signature"] = stripe_signature(raw, secret, timestamp)
        elif signature is not None:
            headers["Stripe-Signature"] = signature
        return await self.client.post("/v1/billing/webhooks/stripe", content=raw,
                                      headers=headers)

    async def btcpay(self, delivery: dict[str, Any], *, secret: str = BTCPAY_SECRET,
                     signed: bool = True) -> httpx.Response:
        raw = json.dumps(delivery).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["BTCPay-Sig"] = btcpay_signature(raw, secret)
        return await self.client.post("/v1/billing/webhooks/btcpay", content=raw,
                                      headers=headers)

    async def me(self, tenant: str = "tnt_a") -> dict[str, Any]:
        r = await self.client.get("/v1/subscriptions/me", headers=self.auth(tenant))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def row(self, tenant: str = "tnt_a") -> SubscriptionRecord | None:
        async with self.container.uow() as uow:
            return await uow.subscriptions.current(tenant)

    async def inbox(self) -> list[InboxRecord]:
        async with self.container.uow() as uow:
            return list(await uow.inbox.list())

    async def audit(self, action: str | None = None) -> list[Any]:
        async with self.container.uow() as uow:
            events = await uow.audit.all()
        return [e for e in events if action is None or e.action == action]


@pytest.fixture
async def billing(tmp_path: Path) -> AsyncIterator[Billing]:
    sim = StripeSim()
    sim.add_price("price_core", 1900)
    sim.add_price("price_pro", 4900)
    sim.add_price("price_inst", 49900)
    btc = FakeBtcpay()
    async with serve(sim.app) as stripe_url, serve(btc.app) as btcpay_url:
        settings = Settings(
            data_dir=tmp_path, api_port=8000, **UNLIMITED,
            stripe_api_key=sim.api_key, stripe_webhook_secret=STRIPE_SECRET,
            stripe_api_base=stripe_url, stripe_price_ids=PRICES,
            btcpay_url=btcpay_url, btcpay_api_key=btc.api_key, btcpay_store_id=STORE,
            btcpay_webhook_secret=BTCPAY_SECRET, public_app_url="https://app.example")
        c = build(settings)
        c.vetter = FakeTargetVetter()  # no lookup of the receivers' example names
        await c.migrate()
        for t in ("tnt_a", "tnt_b"):
            await create_tenant(c.uow(), tenant_id=t, name=t)
        await create_vault(c.uow(), tenant_id="tnt_a", vault_id="VA", label="A")
        await create_vault(c.uow(), tenant_id="tnt_b", vault_id="VB", label="B")
        providers = c.billing  # what the settings configure, closed with the container
        app = create_app(c, run_dispatcher=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test",
                                     event_hooks={"request": [add_idempotency_key]}) as client:
            try:
                yield Billing(c, client, sim, btc, providers)
            finally:
                await c.close()


# -- helpers --------------------------------------------------------------------------------

def event(type_: str, obj: dict[str, Any], created: int | datetime) -> dict[str, Any]:
    ts = int(created.timestamp()) if isinstance(created, datetime) else created
    return {"id": f"evt_{secrets.token_hex(8)}", "object": "event",
            "api_version": SIM_API_VERSION, "created": ts,
            "data": {"object": copy.deepcopy(obj)}, "livemode": False,
            "pending_webhooks": 1, "type": type_}


def sub_event(b: Billing, sub_id: str, created: int | datetime, *, status: str | None = None,
              type_: str = "customer.subscription.updated", **changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(b.sim.subscriptions[sub_id])
    if status is not None:
        obj["status"] = status
    obj.update(changes)
    return event(type_, obj, created)


async def deliver_all(b: Billing, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ev in events:
        r = await b.stripe(ev)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


async def subscribe(b: Billing, tenant: str = "tnt_a", plan: str = "pro") -> str:
    """Checkout through the API, paid on the simulator, its events delivered in order."""
    r = await b.client.post("/v1/subscriptions/change-plan", headers=b.auth(tenant),
                            json={"plan": plan, "provider": "stripe"})
    assert r.status_code == 201, r.text
    session_id = r.json()["session_id"]
    await deliver_all(b, b.sim.complete_checkout(session_id))
    sub_id: str = b.sim.sessions[session_id]["subscription"]
    return sub_id


def charge(customer: str, amount: int, refunded: int) -> dict[str, Any]:
    return {"id": f"ch_{secrets.token_hex(6)}", "object": "charge", "amount": amount,
            "amount_refunded": refunded, "refunded": refunded >= amount, "currency": "usd",
            "customer": customer, "payment_intent": f"pi_{secrets.token_hex(6)}",
            "metadata": {}}


def now_s() -> int:
    return int(time.time())


# -- change-plan ----------------------------------------------------------------------------

async def test_change_plan_needs_an_owner(billing: Billing) -> None:
    for scopes in (("billing:read",), ("mirror:manage", "follower:manage")):
        r = await billing.client.post("/v1/subscriptions/change-plan",
                                      headers=billing.auth(scopes=scopes),
                                      json={"plan": "pro", "provider": "stripe"})
        assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    r = await billing.client.post("/v1/subscriptions/change-plan",
                                  json={"plan": "pro", "provider": "stripe"})
    assert r.status_code == 401
    assert not billing.sim.requests


async def test_unknown_plan_or_provider_is_422(billing: Billing) -> None:
    for body, code, field in (({"plan": "platinum"}, "unknown_plan", "plan"),
                              ({"plan": "pro", "provider": "paypal"}, "invalid_provider",
                               "provider"),
                              ({"plan": "pro", "quantity": 2}, "unknown_field", "quantity"),
                              ({}, "missing_field", "plan")):
        r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth(),
                                      json=body)
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == (code, field)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert not billing.sim.requests and not billing.btc.requests


async def test_new_tenant_gets_checkout_and_events_switch_features_on(billing: Billing) -> None:
    before = await billing.me()
    assert before["status"] == "none" and before["entitlements"]["features"]["flip_mode"] is False

    r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth(),
                                  json={"plan": "pro", "provider": "stripe"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["action"] == "checkout"
    assert body["checkout_url"] == f"https://checkout.stripe.com/c/pay/{body['session_id']}"
    method, path, params = billing.sim.requests[-1]
    assert (method, path) == ("POST", "/v1/checkout/sessions")
    assert params["client_reference_id"] == "tnt_a"
    assert params["line_items"] == [{"price": "price_pro", "quantity": "1"}]
    assert params["success_url"].startswith("https://app.example/billing/success")
    assert (await billing.me())["status"] == "none", "nothing changes before payment"

    events = billing.sim.complete_checkout(body["session_id"])
    answers = await deliver_all(billing, events)
    assert [a["outcome"] for a in answers] == ["applied", "recorded", "linked"]
    me = await billing.me()
    assert (me["plan"], me["status"], me["provider"]) == ("pro", "active", "stripe")
    assert me["entitlements"]["active"] is True
    assert me["entitlements"]["features"]["flip_mode"] is True
    assert me["renewal_at"] is not None
    row = await billing.row()
    assert row is not None
    assert row.provider_ref == billing.sim.sessions[body["session_id"]]["subscription"]
    assert row.customer_ref == billing.sim.sessions[body["session_id"]]["customer"]
    assert len(await billing.inbox()) == 3
    assert [e.entity for e in await billing.audit("subscription_created")] == ["subscription"]
    # another tenant saw nothing
    assert (await billing.me("tnt_b"))["status"] == "none"


async def test_checkout_delivered_out_of_order_still_ends_active(billing: Billing) -> None:
    r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth(),
                                  json={"plan": "institutional"})
    session_id = r.json()["session_id"]
    created, paid, completed = billing.sim.complete_checkout(session_id)
    answers = await deliver_all(billing, [completed, paid, created])
    assert [a["outcome"] for a in answers] == ["applied", "recorded", "applied"]
    me = await billing.me()
    assert (me["plan"], me["status"]) == ("institutional", "active")
    assert me["entitlements"]["features"]["api_pull_feed"] is True


async def test_existing_subscription_changes_price_with_proration(billing: Billing) -> None:
    sub_id = await subscribe(billing, plan="core")
    assert (await billing.me())["plan"] == "core"
    r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth(),
                                  json={"plan": "pro", "provider": "stripe"})
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "plan_changed" and r.json()["subscription_ref"] == sub_id
    method, path, params = billing.sim.requests[-1]
    assert (method, path) == ("POST", f"/v1/subscriptions/{sub_id}")
    assert params["proration_behavior"] == "create_prorations"
    assert params["items"][0]["price"] == "price_pro"
    assert len(billing.sim.sessions) == 1, "no second checkout"
    # the local subscription follows Stripe's event
    assert (await billing.me())["plan"] == "core"
    updated = billing.sim.events[-1]
    assert updated["type"] == "customer.subscription.updated"
    assert (await billing.stripe(updated)).json()["outcome"] == "applied"
    me = await billing.me()
    assert me["plan"] == "pro" and me["entitlements"]["features"]["persona_boosts"] is True
    # downgrade: features go on the next call after the event
    await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth(),
                              json={"plan": "core"})
    await billing.stripe(billing.sim.events[-1])
    me = await billing.me()
    assert me["plan"] == "core" and me["entitlements"]["features"]["persona_boosts"] is False
    # the same plan again sends nothing
    before = len(billing.sim.requests)
    r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth(),
                                  json={"plan": "core"})
    assert r.status_code == 200 and r.json()["action"] == "unchanged"
    assert all(m == "GET" for m, _, _ in billing.sim.requests[before:])


async def test_another_tenants_subscription_is_404_and_untouched(billing: Billing) -> None:
    sub_a = await subscribe(billing, "tnt_a", "core")
    before = len(billing.sim.requests)
    r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth("tnt_b"),
                                  json={"plan": "institutional", "subscription_ref": sub_a})
    assert r.status_code == 404 and r.json()["code"] == "subscription_not_found"
    assert billing.sim.requests[before:] == []
    # without a ref, tenant B gets its own checkout; A's subscription is never named
    r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth("tnt_b"),
                                  json={"plan": "pro"})
    assert r.status_code == 201
    assert billing.sim.requests[-1][2]["client_reference_id"] == "tnt_b"
    assert billing.sim.subscriptions[sub_a]["items"]["data"][0]["price"]["id"] == "price_core"
    assert (await billing.me("tnt_a"))["plan"] == "core"
    # A's own ref works for A
    r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth("tnt_a"),
                                  json={"plan": "pro", "subscription_ref": sub_a})
    assert r.status_code == 200


async def test_event_naming_another_tenant_is_not_applied(billing: Billing) -> None:
    sub_a = await subscribe(billing, "tnt_a", "pro")
    forged = sub_event(billing, sub_a, billing.sim.now(), status="canceled",
                       metadata={"tenant_id": "tnt_b", "plan_id": "pro"})
    r = await billing.stripe(forged)
    assert r.status_code == 200 and r.json()["outcome"] == "tenant_mismatch"
    assert (await billing.me("tnt_a"))["status"] == "active"
    assert (await billing.me("tnt_b"))["status"] == "none"


# -- webhooks -------------------------------------------------------------------------------

async def test_duplicate_delivery_changes_nothing(billing: Billing) -> None:
    sub_id = await subscribe(billing)
    ev = sub_event(billing, sub_id, billing.sim.now(), status="past_due")
    first = await billing.stripe(ev)
    assert first.json() == {"received": True, "duplicate": False, "outcome": "applied",
                            "event_type": "customer.subscription.updated"}
    row, audit, inbox = await billing.row(), await billing.audit(), await billing.inbox()
    again = await billing.stripe(ev)  # Stripe redelivers with a fresh signature
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert await billing.row() == row
    assert len(await billing.audit()) == len(audit)
    assert await billing.inbox() == inbox


async def test_older_update_arriving_late_is_recorded_not_applied(billing: Billing) -> None:
    sub_id = await subscribe(billing)
    row = await billing.row()
    assert row is not None and row.last_event_at is not None
    older = sub_event(billing, sub_id, int(row.last_event_at.timestamp()) - 5,
                      status="past_due")
    r = await billing.stripe(older)
    assert r.status_code == 200 and r.json()["outcome"] == "stale"
    me = await billing.me()
    assert me["status"] == "active" and me["entitlements"]["active"] is True
    stored = {i.inbox_id: i for i in await billing.inbox()}[f"stripe:{older['id']}"]
    assert stored.outcome == "stale" and stored.processed_at is not None


async def test_impossible_transition_is_recorded_as_ignored(billing: Billing) -> None:
    sub_id = await subscribe(billing)
    await billing.stripe(sub_event(billing, sub_id, billing.sim.now(), status="canceled",
                                   type_="customer.subscription.deleted"))
    assert (await billing.me())["status"] == "canceled"
    r = await billing.stripe(sub_event(billing, sub_id, billing.sim.now(), status="active"))
    assert r.json()["outcome"] == "ignored_invalid_transition"
    assert (await billing.me())["status"] == "canceled"


async def test_late_event_may_skip_states_when_reachable(billing: Billing) -> None:
    sub_id = await subscribe(billing)
    # active -> unpaid skips past_due (its event came late or never): reachable, applied
    r = await billing.stripe(sub_event(billing, sub_id, billing.sim.now(), status="unpaid"))
    assert r.json()["outcome"] == "applied"
    me = await billing.me()
    assert me["status"] == "unpaid" and me["entitlements"]["active"] is False


async def test_refused_signatures_change_nothing(billing: Billing) -> None:
    sub_id = await subscribe(billing)
    inbox, row = await billing.inbox(), await billing.row()
    ev = sub_event(billing, sub_id, billing.sim.now(), status="canceled")
    body = json.dumps(ev).encode()
    tampered_sig = stripe_signature(body, STRIPE_SECRET)
    cases = [
        (dict(signature=None), "missing_signature"),
        (dict(secret="whsec_wrong"), "bad_signature"),
        (dict(timestamp=now_s() - 3600), "stale"),
        (dict(body=body.replace(b'"canceled"', b'"active"'), signature=tampered_sig),
         "bad_signature"),
        (dict(signature="t=1,v1=zz"), "bad_signature"),
        (dict(body=b'{"not": "an event"}'), "malformed"),
    ]
    for kwargs, reason in cases:
        r = await billing.stripe(ev, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 400, (reason, r.text)
        assert r.json()["code"] == reason
        assert r.headers["content-type"].startswith("application/problem+json")
    deliveries = billing.btc.deliveries
    billing.btc.deliveries = []
    for kwargs, reason in ((dict(signed=False), "missing_signature"),
                           (dict(secret="nope"), "bad_signature")):
        r = await billing.btcpay({"deliveryId": "d1", "type": "InvoiceSettled",
                                  "timestamp": now_s(), "invoiceId": "inv1",
                                  "metadata": {"tenant_id": "tnt_a", "plan_id": "pro"}},
                                 **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 400 and r.json()["code"] == reason
    billing.btc.deliveries = deliveries
    assert await billing.inbox() == inbox
    assert await billing.row() == row


async def test_unhandled_event_types_are_recorded(billing: Billing) -> None:
    r = await billing.stripe(event("customer.created", {"id": "cus_1", "object": "customer"},
                                   now_s()))
    assert r.status_code == 200 and r.json()["outcome"] == "not_handled"
    assert [i.outcome for i in await billing.inbox()] == ["not_handled"]


async def test_lapse_takes_features_but_never_touches_orders(billing: Billing) -> None:
    sub_id = await subscribe(billing, plan="pro")
    r = await billing.client.post("/v1/vaults/VA/followers", headers=billing.auth(),
                                  json={"webhook": {"url": "https://f.example/h"}})
    assert r.status_code == 201, r.text
    follower_id = r.json()["follower_id"]
    r = await billing.client.post("/v1/manager-orders", headers=billing.auth(), json={
        "id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10})
    assert r.status_code == 201, r.text
    flip = {"flip": {"amplify": 0.35, "ttl_minutes": 30}}
    assert (await billing.client.post("/v1/vaults/VA/overlay", headers=billing.auth(),
                                      json=flip)).status_code == 201
    orders = (await billing.client.get("/v1/follower-orders", headers=billing.auth())).json()
    follower = (await billing.client.get(f"/v1/followers/{follower_id}",
                                         headers=billing.auth())).json()

    await billing.stripe(sub_event(billing, sub_id, billing.sim.now(), status="canceled",
                                   type_="customer.subscription.deleted"))
    me = await billing.me()
    assert me["status"] == "canceled" and me["entitlements"]["active"] is False
    r = await billing.client.post("/v1/vaults/VA/overlay", headers=billing.auth(), json=flip)
    assert r.status_code == 403 and r.json()["code"] == "subscription_inactive"
    assert (await billing.client.get("/v1/follower-orders",
                                     headers=billing.auth())).json() == orders
    assert (await billing.client.get(f"/v1/followers/{follower_id}",
                                     headers=billing.auth())).json() == follower


async def test_past_due_keeps_features_for_the_grace_period_only(billing: Billing) -> None:
    now = datetime.now(UTC)
    for tenant, failed_ago, expect_active in (("tnt_a", timedelta(days=1), True),
                                              ("tnt_b", timedelta(days=4), False)):
        customer = billing.sim.add_customer()
        sub = billing.sim.add_subscription(customer, "price_pro",
                                           metadata={"tenant_id": tenant, "plan_id": "pro"})
        created = await billing.stripe(sub_event(billing, sub["id"], now - timedelta(days=10),
                                                 type_="customer.subscription.created"))
        assert created.json()["outcome"] == "applied"
        failed = event("invoice.payment_failed", {
            "id": f"in_{secrets.token_hex(5)}", "object": "invoice", "customer": customer,
            "amount_due": 4900, "currency": "usd", "status": "open", "attempt_count": 1,
            "parent": {"subscription_details": {"subscription": sub["id"],
                                                "metadata": sub["metadata"]}}},
            now - failed_ago)
        assert (await billing.stripe(failed)).json()["outcome"] == "applied"
        me = await billing.me(tenant)
        assert me["status"] == "past_due"
        assert me["entitlements"]["active"] is expect_active, tenant
        row = await billing.row(tenant)
        assert row is not None
        assert row.past_due_since == (now - failed_ago).replace(microsecond=0)

    # the retry succeeds: features are back and the grace mark is cleared
    paid = event("invoice.paid", {
        "id": f"in_{secrets.token_hex(5)}", "object": "invoice",
        "customer": billing.sim.subscriptions[row.provider_ref]["customer"],
        "amount_paid": 4900, "currency": "usd", "status": "paid",
        "parent": {"subscription_details": {"subscription": row.provider_ref,
                                            "metadata": {"tenant_id": "tnt_b"}}}}, now)
    assert (await billing.stripe(paid)).json()["outcome"] == "applied"
    me = await billing.me("tnt_b")
    assert me["status"] == "active" and me["entitlements"]["active"] is True
    row = await billing.row("tnt_b")
    assert row is not None and row.past_due_since is None
    actions = [e.action for e in await billing.audit() if e.entity == "subscription"]
    assert actions.count("subscription_payment_failed") == 2
    assert actions.count("subscription_payment_paid") == 1


async def test_full_refund_takes_features_until_paid_again(billing: Billing) -> None:
    sub_id = await subscribe(billing, plan="pro")
    customer = billing.sim.subscriptions[sub_id]["customer"]
    partial = event("charge.refunded", charge(customer, 4900, 1000), billing.sim.now())
    assert (await billing.stripe(partial)).json()["outcome"] == "refund_recorded_partial"
    assert (await billing.me())["entitlements"]["active"] is True

    full = event("charge.refunded", charge(customer, 4900, 4900), billing.sim.now())
    assert (await billing.stripe(full)).json()["outcome"] == "refund_hold"
    me = await billing.me()
    assert me["status"] == "unpaid" and me["entitlements"]["active"] is False
    hold = await billing.audit("subscription_refund_hold")
    assert len(hold) == 1 and hold[0].payload["review"] is True

    # Stripe still calls the subscription active; that does not undo the refund
    r = await billing.stripe(sub_event(billing, sub_id, billing.sim.now(), status="active"))
    assert r.json()["outcome"] == "held"
    assert (await billing.me())["entitlements"]["active"] is False

    paid = event("invoice.paid", {
        "id": f"in_{secrets.token_hex(5)}", "object": "invoice", "customer": customer,
        "amount_paid": 4900, "currency": "usd", "status": "paid",
        "parent": {"subscription_details": {"subscription": sub_id,
                                            "metadata": {"tenant_id": "tnt_a"}}}},
        billing.sim.now())
    assert (await billing.stripe(paid)).json()["outcome"] == "applied"
    me = await billing.me()
    assert me["status"] == "active" and me["entitlements"]["active"] is True


# -- BTCPay ---------------------------------------------------------------------------------

async def btcpay_invoice(b: Billing, tenant: str = "tnt_b", plan: str = "core"
                         ) -> dict[str, Any]:
    r = await b.client.post("/v1/subscriptions/change-plan", headers=b.auth(tenant),
                            json={"plan": plan, "provider": "btcpay"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def deliver_btcpay(b: Billing, deliveries: list[dict[str, Any]]) -> list[str]:
    out = []
    for d in deliveries:
        r = await b.btcpay(d)
        assert r.status_code == 200, r.text
        out.append(r.json()["outcome"])
    return out


async def test_btcpay_invoice_then_settlement_activates_a_period(billing: Billing) -> None:
    body = await btcpay_invoice(billing)
    assert (body["action"], body["amount"], body["currency"]) == ("invoice", "19.00", "USD")
    inv = billing.btc.invoices[body["invoice_id"]]
    assert body["checkout_url"] == inv["checkoutLink"]
    assert inv["metadata"]["tenant_id"] == "tnt_b" and inv["metadata"]["plan_id"] == "core"
    again = await btcpay_invoice(billing)
    assert again["invoice_id"] == body["invoice_id"], "an unpaid invoice is reused"

    outcomes = await deliver_btcpay(billing, billing.btc.receive_payment(body["invoice_id"],
                                                                         "19.00"))
    assert outcomes == ["recorded_pending", "recorded_pending", "recorded_pending", "activated"]
    me = await billing.me("tnt_b")
    assert (me["plan"], me["status"], me["provider"]) == ("core", "active", "btcpay")
    renewal = datetime.fromisoformat(me["renewal_at"])
    assert timedelta(days=29, hours=23) < renewal - datetime.now(UTC) <= timedelta(days=30)

    settled = billing.btc.deliveries[-1]
    r = await billing.btcpay(billing.btc.redeliver(settled))
    assert r.json()["duplicate"] is True
    assert (await billing.me("tnt_b"))["renewal_at"] == me["renewal_at"]

    # paying the next period early extends from the end of the running one
    nxt = await btcpay_invoice(billing, plan="pro")
    assert nxt["invoice_id"] != body["invoice_id"] and nxt["amount"] == "49.00"
    await deliver_btcpay(billing, billing.btc.receive_payment(nxt["invoice_id"], "49.00"))
    me2 = await billing.me("tnt_b")
    assert me2["plan"] == "pro"
    assert datetime.fromisoformat(me2["renewal_at"]) == renewal + timedelta(days=30)


async def test_btcpay_expired_or_invalid_never_activates(billing: Billing) -> None:
    body = await btcpay_invoice(billing)
    assert await deliver_btcpay(billing, billing.btc.expire(body["invoice_id"])) == \
        ["not_activated_expired"]
    assert (await billing.me("tnt_b"))["status"] == "none"
    other = await btcpay_invoice(billing)
    assert other["invoice_id"] != body["invoice_id"], "an expired invoice is not reused"
    assert await deliver_btcpay(billing, billing.btc.mark(other["invoice_id"], "Invalid")) == \
        ["not_activated_invalid"]
    assert (await billing.me("tnt_b"))["status"] == "none"


async def test_btcpay_late_payment_activates_flagged_for_review(billing: Billing) -> None:
    body = await btcpay_invoice(billing)
    await deliver_btcpay(billing, billing.btc.expire(body["invoice_id"]))
    outcomes = await deliver_btcpay(billing, billing.btc.receive_payment(body["invoice_id"],
                                                                         "19.00"))
    assert outcomes == ["late_payment_unconfirmed", "activated_review"]
    me = await billing.me("tnt_b")
    assert me["status"] == "active" and me["plan"] == "core"
    paid = await billing.audit("btcpay_period_paid")
    assert len(paid) == 1 and paid[0].payload["review"] is True
    assert paid[0].payload["reason"] == "late_payment" and paid[0].entity == "subscription"
    # the operator then marks the invoice settled: no second period
    assert await deliver_btcpay(billing, billing.btc.mark(body["invoice_id"], "Settled")) == \
        ["already_activated"]
    assert (await billing.me("tnt_b"))["renewal_at"] == me["renewal_at"]


async def test_btcpay_short_late_payment_is_only_flagged(billing: Billing) -> None:
    body = await btcpay_invoice(billing)
    await deliver_btcpay(billing, billing.btc.expire(body["invoice_id"]))
    outcomes = await deliver_btcpay(billing, billing.btc.receive_payment(body["invoice_id"],
                                                                         "5.00"))
    assert outcomes == ["late_payment_unconfirmed", "late_payment_short_review"]
    assert (await billing.me("tnt_b"))["status"] == "none"


async def test_btcpay_period_end_gives_grace_then_lapses(billing: Billing) -> None:
    body = await btcpay_invoice(billing)
    await deliver_btcpay(billing, billing.btc.receive_payment(body["invoice_id"], "19.00"))
    row = await billing.row("tnt_b")
    assert row is not None
    end = row.renewal_at
    assert await expire_btcpay_periods(billing.container.uow, clock=lambda: end
                                       - timedelta(seconds=1)) == 0
    assert await expire_btcpay_periods(billing.container.uow,
                                       clock=lambda: end + timedelta(hours=1)) == 1
    me = await billing.me("tnt_b")
    assert me["status"] == "past_due" and me["entitlements"]["active"] is True
    assert await expire_btcpay_periods(billing.container.uow,
                                       clock=lambda: end + timedelta(days=3, hours=1)) == 1
    me = await billing.me("tnt_b")
    assert me["status"] == "unpaid" and me["entitlements"]["active"] is False
    # paying again reactivates
    nxt = await btcpay_invoice(billing)
    await deliver_btcpay(billing, billing.btc.receive_payment(nxt["invoice_id"], "19.00"))
    assert (await billing.me("tnt_b"))["status"] == "active"


async def test_btcpay_refused_while_a_stripe_subscription_is_live(billing: Billing) -> None:
    await subscribe(billing, "tnt_a", "pro")
    r = await billing.client.post("/v1/subscriptions/change-plan", headers=billing.auth(),
                                  json={"plan": "core", "provider": "btcpay"})
    assert r.status_code == 409 and r.json()["code"] == "stripe_subscription_active"
    assert not [q for q in billing.btc.requests if q[0] == "POST"]


# -- inbox review ---------------------------------------------------------------------------

async def test_inbox_lists_a_tenants_own_events_newest_first(billing: Billing) -> None:
    sub_a = await subscribe(billing, "tnt_a", "pro")
    forged = sub_event(billing, sub_a, billing.sim.now(), status="canceled",
                       metadata={"tenant_id": "tnt_b", "plan_id": "pro"})
    assert (await billing.stripe(forged)).json()["outcome"] == "tenant_mismatch"
    ev = sub_event(billing, sub_a, billing.sim.now() + 5, status="past_due")
    assert (await billing.stripe(ev)).json()["outcome"] == "applied"
    reader = billing.auth("tnt_a", ("billing:read",))
    r = await billing.client.get("/v1/billing/inbox", headers=reader)
    assert r.status_code == 200, r.text
    items = r.json()["data"]
    ids = {i["event_id"] for i in items}
    assert items[0]["event_id"] == ev["id"] and forged["id"] not in ids
    assert all(i["provider"] == "stripe" and i["status"] in ("applied", "ignored")
               and i["processed_at"] for i in items)
    assert all("payload" not in i for i in items)
    # the forged event named tnt_b, but it is not tnt_b's: tnt_b sees nothing at all
    r = await billing.client.get("/v1/billing/inbox", headers=billing.auth("tnt_b"))
    assert r.json() == {"data": [], "next_cursor": None}
    # one at a time, the cursor walks the same list
    walked, cursor = [], None
    while True:
        q = "?limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = (await billing.client.get(f"/v1/billing/inbox{q}", headers=reader)).json()
        walked += [i["event_id"] for i in page["data"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert walked == [i["event_id"] for i in items]


async def test_inbox_needs_billing_read_and_a_cursor_it_issued(billing: Billing) -> None:
    r = await billing.client.get("/v1/billing/inbox",
                                 headers=billing.auth("tnt_a", ("vault:read",)))
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    r = await billing.client.get("/v1/billing/inbox?cursor=bm9wZQ",
                                 headers=billing.auth("tnt_a"))
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"
    assert r.headers["content-type"].startswith("application/problem+json")


# -- cancel and resume ----------------------------------------------------------------------

async def test_stripe_cancel_at_period_end_then_resume_then_cancel_now(billing: Billing) -> None:
    sub_id = await subscribe(billing, "tnt_a", "pro")
    owner = billing.auth("tnt_a")
    r = await billing.client.post("/v1/subscriptions/cancel", headers=owner,
                                  json={"at": "period_end"})
    assert r.status_code == 200, r.text
    assert (r.json()["action"], r.json()["status"]) == ("cancel_at_period_end", "active")
    assert r.json()["ends_at"] is not None
    assert billing.sim.subscriptions[sub_id]["cancel_at_period_end"] is True
    assert (await billing.me())["status"] == "active"
    r = await billing.client.post("/v1/subscriptions/resume", headers=owner)
    assert r.status_code == 200 and r.json()["action"] == "resumed"
    assert billing.sim.subscriptions[sub_id]["cancel_at_period_end"] is False

    r = await billing.client.post("/v1/subscriptions/cancel", headers=owner, json={"at": "now"})
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert billing.sim.subscriptions[sub_id]["status"] == "canceled"
    gone = sub_event(billing, sub_id, billing.sim.now() + 5,
                     type_="customer.subscription.deleted")
    assert (await billing.stripe(gone)).json()["outcome"] == "applied"
    me = await billing.me()
    assert me["status"] == "canceled" and me["entitlements"]["active"] is False
    r = await billing.client.post("/v1/subscriptions/cancel", headers=owner, json={"at": "now"})
    assert r.status_code == 200 and r.json()["action"] == "already_canceled"
    r = await billing.client.post("/v1/subscriptions/resume", headers=owner)
    assert r.status_code == 409 and r.json()["code"] == "subscription_not_resumable"
    assert [e.payload["at"] for e in await billing.audit("cancel_requested")] \
        == ["period_end", "now"]
    assert len(await billing.audit("resume_requested")) == 1


async def test_cancel_needs_a_paid_subscription_and_a_known_moment(billing: Billing) -> None:
    owner = billing.auth("tnt_b")
    r = await billing.client.post("/v1/subscriptions/cancel", headers=owner, json={"at": "now"})
    assert r.status_code == 404 and r.json()["code"] == "subscription_not_found"
    r = await billing.client.post("/v1/subscriptions/cancel", headers=owner,
                                  json={"at": "tomorrow"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cancel_at"
    r = await billing.client.post("/v1/subscriptions/cancel", json={"at": "now"},
                                  headers=billing.auth("tnt_b", ("billing:read",)))
    assert r.status_code == 403


async def test_btcpay_cancel_at_period_end_ends_without_grace(billing: Billing) -> None:
    body = await btcpay_invoice(billing)
    await deliver_btcpay(billing, billing.btc.receive_payment(body["invoice_id"], "19.00"))
    row = await billing.row("tnt_b")
    assert row is not None and row.renewal_at is not None
    end = row.renewal_at
    owner = billing.auth("tnt_b")
    r = await billing.client.post("/v1/subscriptions/cancel", headers=owner,
                                  json={"at": "period_end"})
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["ends_at"]) == end
    assert (await billing.me("tnt_b"))["entitlements"]["active"] is True
    sent = len(billing.btc.requests)
    assert await expire_btcpay_periods(billing.container.uow,
                                       clock=lambda: end + timedelta(hours=1)) == 1
    me = await billing.me("tnt_b")
    assert me["status"] == "canceled" and me["entitlements"]["active"] is False
    assert len(billing.btc.requests) == sent, "nothing is sent to BTCPay"
    assert len(await billing.audit("btcpay_canceled")) == 1



async def test_btcpay_paying_another_period_withdraws_the_cancel(billing: Billing) -> None:
    body = await btcpay_invoice(billing)
    await deliver_btcpay(billing, billing.btc.receive_payment(body["invoice_id"], "19.00"))
    r = await billing.client.post("/v1/subscriptions/cancel", headers=billing.auth("tnt_b"),
                                  json={"at": "period_end"})
    assert r.status_code == 200, r.text
    nxt = await btcpay_invoice(billing)
    await deliver_btcpay(billing, billing.btc.receive_payment(nxt["invoice_id"], "19.00"))
    row = await billing.row("tnt_b")
    assert row is not None and row.renewal_at is not None
    assert await expire_btcpay_periods(billing.container.uow,
                                       clock=lambda: row.renewal_at + timedelta(hours=1)) == 1
    assert (await billing.me("tnt_b"))["status"] == "past_due", "the grace applies again"


async def test_btcpay_resume_restores_the_grace_and_cancel_now_ends_access(
        billing: Billing) -> None:
    body = await btcpay_invoice(billing)
    await deliver_btcpay(billing, billing.btc.receive_payment(body["invoice_id"], "19.00"))
    owner = billing.auth("tnt_b")
    for path, payload in (("cancel", {"at": "period_end"}), ("resume", None)):
        r = await billing.client.post(f"/v1/subscriptions/{path}", headers=owner, json=payload)
        assert r.status_code == 200, r.text
    row = await billing.row("tnt_b")
    assert row is not None and row.renewal_at is not None
    assert await expire_btcpay_periods(billing.container.uow,
                                       clock=lambda: row.renewal_at + timedelta(hours=1)) == 1
    assert (await billing.me("tnt_b"))["status"] == "past_due"
    r = await billing.client.post("/v1/subscriptions/cancel", headers=owner, json={"at": "now"})
    assert r.status_code == 200 and r.json()["action"] == "canceled"
    me = await billing.me("tnt_b")
    assert me["status"] == "canceled" and me["entitlements"]["active"] is False
