"""Signed Stripe webhooks in, billing facts out: verification reasons and the translator.

Events are signed here the way Stripe documents it (``t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<payload>">``), by ``stripe_signature`` in the test helpers, not by the SDK under test.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.billing_fakes import stripe_signature
from vanta.adapters.billing.errors import BillingEventRejected
from vanta.adapters.billing.stripe_events import (
    HANDLED_EVENT_TYPES,
    PaymentFact,
    PaymentOutcome,
    RefundFact,
    StripeEvent,
    SubscriptionFact,
    translate_event,
)
from vanta.adapters.billing.stripe_gateway import StripeGateway, verify_stripe_event
from vanta.domain.errors import InvalidTransition
from vanta.domain.subscriptions import SUBSCRIPTION_TABLE, SubscriptionStatus, transition

SECRET = "whsec_contract_test_secret"
PRICES = {"core": "price_core_m", "pro": "price_pro_m", "institutional": "price_inst_m"}
PLANS_BY_PRICE = {v: k for k, v in PRICES.items()}
T0 = 1_760_000_000


@pytest.fixture
async def gateway():
    gw = StripeGateway("sk_test_unit", webhook_secret=SECRET, price_ids=PRICES,
                       api_base="http://127.0.0.1:9")  # never contacted by these tests
    yield gw
    await gw.aclose()


def envelope(type_: str, obj: dict[str, Any], *, created: int = T0,
             event_id: str = "evt_1", previous: dict[str, Any] | None = None) -> bytes:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return json.dumps({"id": event_id, "object": "event", "api_version": "2025-03-31.basil",
                       "created": created, "data": data, "livemode": False,
                       "type": type_}).encode()


def subscription(status: str = "active", *, price: str = "price_pro_m",
                 metadata: dict[str, str] | None = None, legacy: bool = False,
                 sub_id: str = "sub_1") -> dict[str, Any]:
    item: dict[str, Any] = {"id": "si_1", "object": "subscription_item",
                            "price": {"id": price, "object": "price"}, "quantity": 1}
    obj: dict[str, Any] = {
        "id": sub_id, "object": "subscription", "customer": "cus_1", "status": status,
        "cancel_at_period_end": False,
        "metadata": {"tenant_id": "tnt_a", "plan_id": "pro"} if metadata is None else metadata,
        "items": {"object": "list", "data": [item]},
    }
    if legacy:  # before 2025-03-31: period on the subscription, plan object on the item
        obj["current_period_end"] = T0 + 86400
        item["plan"] = item.pop("price")
    else:
        item["current_period_end"] = T0 + 86400
    return obj


def event_of(payload: bytes) -> StripeEvent:
    return verify_stripe_event(payload, stripe_signature(payload, SECRET), SECRET)


def fact_of(type_: str, obj: dict[str, Any], **kw: Any) -> Any:
    return translate_event(event_of(envelope(type_, obj, **kw)), plans_by_price=PLANS_BY_PRICE)


# -- verification ---------------------------------------------------------------------------

def test_a_correctly_signed_event_verifies_into_plain_data(gateway: StripeGateway) -> None:
    payload = envelope("customer.subscription.updated", subscription(), created=T0,
                       previous={"status": "trialing"})
    ev = gateway.verify_event(payload, stripe_signature(payload, SECRET))
    assert ev == StripeEvent(
        id="evt_1", type="customer.subscription.updated",
        created=datetime.fromtimestamp(T0, UTC), object=subscription(),
        api_version="2025-03-31.basil", livemode=False,
        previous_attributes={"status": "trialing"})


@pytest.mark.parametrize("header", [None, "", "   "])
def test_an_unsigned_event_is_refused(gateway: StripeGateway, header: str | None) -> None:
    with pytest.raises(BillingEventRejected) as e:
        gateway.verify_event(envelope("invoice.paid", {"id": "in_1"}), header)  # type: ignore[arg-type]
    assert e.value.reason == "missing_signature"


def test_a_wrong_secret_is_refused(gateway: StripeGateway) -> None:
    payload = envelope("invoice.paid", {"id": "in_1"})
    with pytest.raises(BillingEventRejected) as e:
        gateway.verify_event(payload, stripe_signature(payload, "whsec_someone_else"))
    assert e.value.reason == "bad_signature"


def test_a_tampered_body_is_refused(gateway: StripeGateway) -> None:
    payload = envelope("invoice.paid", {"id": "in_1", "amount_paid": 100})
    header = stripe_signature(payload, SECRET)
    tampered = payload.replace(b'"amount_paid": 100', b'"amount_paid": 999')
    assert tampered != payload
    with pytest.raises(BillingEventRejected) as e:
        gateway.verify_event(tampered, header)
    assert e.value.reason == "bad_signature"


def test_a_replayed_event_older_than_five_minutes_is_stale(gateway: StripeGateway) -> None:
    payload = envelope("invoice.paid", {"id": "in_1"})
    old = int(time.time()) - 301
    with pytest.raises(BillingEventRejected) as e:
        gateway.verify_event(payload, stripe_signature(payload, SECRET, timestamp=old))
    assert e.value.reason == "stale"
    # inside the window it passes, and a wider tolerance accepts the old one
    gateway.verify_event(payload, stripe_signature(payload, SECRET, int(time.time()) - 290))
    gateway.verify_event(payload, stripe_signature(payload, SECRET, old), tolerance=600)
    with pytest.raises(ValueError):  # 0 would switch the check off in the SDK
        gateway.verify_event(payload, stripe_signature(payload, SECRET, old), tolerance=0)


def test_a_stale_event_with_a_bad_signature_is_a_bad_signature(gateway: StripeGateway) -> None:
    payload = envelope("invoice.paid", {"id": "in_1"})
    header = stripe_signature(payload, "whsec_other", timestamp=int(time.time()) - 3600)
    with pytest.raises(BillingEventRejected) as e:
        gateway.verify_event(payload, header)
    assert e.value.reason == "bad_signature"


@pytest.mark.parametrize("header", ["garbage", "t=abc,v1=00", "t=1700000000", "v1=deadbeef",
                                    "t=1700000000,v0=deadbeef"])
def test_an_unparsable_signature_header_is_a_bad_signature(gateway: StripeGateway,
                                                            header: str) -> None:
    with pytest.raises(BillingEventRejected) as e:
        gateway.verify_event(envelope("invoice.paid", {"id": "in_1"}), header)
    assert e.value.reason == "bad_signature"


def test_a_rolled_secret_verifies_when_any_signature_matches(gateway: StripeGateway) -> None:
    payload = envelope("invoice.paid", {"id": "in_1"})
    t = int(time.time())
    old = stripe_signature(payload, "whsec_old", t).split(",")[1]
    header = f"{stripe_signature(payload, SECRET, t)},{old}"
    assert gateway.verify_event(payload, header).id == "evt_1"


@pytest.mark.parametrize("body", [
    b"not json at all",
    b"[1, 2, 3]",
    b'{"id": "evt_1", "type": "invoice.paid", "created": 1760000000}',  # no data.object
    b'{"type": "invoice.paid", "created": 1760000000, "data": {"object": {}}}',  # no id
    b'{"id": "evt_1", "type": "invoice.paid", "created": "soon", "data": {"object": {}}}',
    b"\xff\xfe not utf-8",
])
def test_a_signed_body_that_is_not_an_event_is_malformed(gateway: StripeGateway,
                                                         body: bytes) -> None:
    with pytest.raises(BillingEventRejected) as e:
        gateway.verify_event(body, stripe_signature(body, SECRET))
    assert e.value.reason == "malformed"


# -- translation ----------------------------------------------------------------------------

def test_every_handled_type_is_listed() -> None:
    assert {
        "checkout.session.completed", "customer.subscription.created",
        "customer.subscription.updated", "customer.subscription.deleted", "invoice.paid",
        "invoice.payment_succeeded", "invoice.payment_failed", "charge.refunded",
    } == HANDLED_EVENT_TYPES


@pytest.mark.parametrize(("payment_status", "status"), [
    ("paid", SubscriptionStatus.ACTIVE),
    ("no_payment_required", SubscriptionStatus.TRIALING),
    ("unpaid", SubscriptionStatus.INCOMPLETE),
])
def test_checkout_completed_links_tenant_customer_and_subscription(
        payment_status: str, status: SubscriptionStatus) -> None:
    session = {"id": "cs_1", "object": "checkout.session", "mode": "subscription",
               "status": "complete", "payment_status": payment_status,
               "client_reference_id": "tnt_a", "customer": "cus_1", "subscription": "sub_1",
               "metadata": {"tenant_id": "tnt_a", "plan_id": "pro"}}
    fact = fact_of("checkout.session.completed", session, event_id="evt_cs")
    assert fact == SubscriptionFact(
        tenant_id="tnt_a", subscription_ref="sub_1", customer_ref="cus_1", status=status,
        plan_id="pro", current_period_end=None,
        event_created=datetime.fromtimestamp(T0, UTC), event_id="evt_cs",
        event_type="checkout.session.completed", status_is_inferred=True)


def test_checkout_tenant_falls_back_to_metadata_and_payment_mode_is_ignored() -> None:
    session = {"id": "cs_1", "mode": "subscription", "payment_status": "paid",
               "client_reference_id": None, "customer": {"id": "cus_9"},
               "subscription": {"id": "sub_9"}, "metadata": {"tenant_id": "tnt_b"}}
    fact = fact_of("checkout.session.completed", session)
    assert (fact.tenant_id, fact.customer_ref, fact.subscription_ref) == (
        "tnt_b", "cus_9", "sub_9")
    assert fact_of("checkout.session.completed", dict(session, mode="payment")) is None


@pytest.mark.parametrize(("stripe_status", "ours"), [
    ("incomplete", SubscriptionStatus.INCOMPLETE),
    ("incomplete_expired", SubscriptionStatus.CANCELED),
    ("trialing", SubscriptionStatus.TRIALING),
    ("active", SubscriptionStatus.ACTIVE),
    ("past_due", SubscriptionStatus.PAST_DUE),
    ("unpaid", SubscriptionStatus.UNPAID),
    ("canceled", SubscriptionStatus.CANCELED),
    ("paused", SubscriptionStatus.UNPAID),
])
@pytest.mark.parametrize("type_", ["customer.subscription.created",
                                   "customer.subscription.updated"])
def test_subscription_events_map_every_stripe_status(type_: str, stripe_status: str,
                                                     ours: SubscriptionStatus) -> None:
    fact = fact_of(type_, subscription(stripe_status))
    assert isinstance(fact, SubscriptionFact)
    assert fact.status is ours
    assert (fact.tenant_id, fact.subscription_ref, fact.customer_ref, fact.plan_id) == (
        "tnt_a", "sub_1", "cus_1", "pro")
    assert fact.current_period_end == datetime.fromtimestamp(T0 + 86400, UTC)
    assert not fact.status_is_inferred


def test_deleted_is_canceled_whatever_the_object_says() -> None:
    fact = fact_of("customer.subscription.deleted", subscription("active"))
    assert fact.status is SubscriptionStatus.CANCELED


def test_the_plan_comes_from_the_price_before_the_metadata() -> None:
    # metadata says pro, the item is billed at the core price: the price wins
    assert fact_of("customer.subscription.updated",
                   subscription(price="price_core_m")).plan_id == "core"
    # an unknown price falls back to metadata, and without metadata the plan is unknown
    assert fact_of("customer.subscription.updated",
                   subscription(price="price_unknown")).plan_id == "pro"
    assert fact_of("customer.subscription.updated",
                   subscription(price="price_unknown", metadata={})).plan_id is None


def test_older_api_shapes_are_read_too() -> None:
    fact = fact_of("customer.subscription.updated",
                   subscription(legacy=True, price="price_inst_m"))
    assert fact.plan_id == "institutional"
    assert fact.current_period_end == datetime.fromtimestamp(T0 + 86400, UTC)


def test_an_unknown_subscription_status_is_malformed_not_guessed() -> None:
    with pytest.raises(BillingEventRejected) as e:
        fact_of("customer.subscription.updated", subscription("exotic"))
    assert e.value.reason == "malformed"
    with pytest.raises(BillingEventRejected):
        fact_of("customer.subscription.updated", {"status": "active"})


def invoice(**overrides: Any) -> dict[str, Any]:
    inv: dict[str, Any] = {
        "id": "in_1", "object": "invoice", "customer": "cus_1", "currency": "usd",
        "amount_due": 4900, "amount_paid": 4900, "attempt_count": 1,
        "billing_reason": "subscription_cycle", "metadata": {}, "next_payment_attempt": None,
        "parent": {"type": "subscription_details", "subscription_details": {
            "subscription": "sub_1", "metadata": {"tenant_id": "tnt_a", "plan_id": "pro"}}},
    }
    inv.update(overrides)
    return inv


@pytest.mark.parametrize("type_", ["invoice.paid", "invoice.payment_succeeded"])
def test_a_paid_invoice_is_a_payment_fact(type_: str) -> None:
    fact = fact_of(type_, invoice(), event_id="evt_pay")
    assert fact == PaymentFact(
        invoice_ref="in_1", customer_ref="cus_1", subscription_ref="sub_1", tenant_id="tnt_a",
        outcome=PaymentOutcome.PAID, amount_cents=4900, currency="usd",
        event_created=datetime.fromtimestamp(T0, UTC), event_id="evt_pay", event_type=type_,
        billing_reason="subscription_cycle", attempt_count=1)
    assert fact.dedupe_key == ("in_1", "paid")


def test_a_failed_invoice_carries_the_retry_schedule() -> None:
    fact = fact_of("invoice.payment_failed",
                   invoice(amount_paid=0, attempt_count=2, next_payment_attempt=T0 + 3 * 86400))
    assert fact.outcome is PaymentOutcome.FAILED
    assert fact.amount_cents == 4900  # amount_due
    assert fact.attempt_count == 2
    assert fact.next_payment_attempt == datetime.fromtimestamp(T0 + 3 * 86400, UTC)


def test_a_fee_invoice_names_its_fee_and_a_legacy_invoice_its_subscription() -> None:
    fee = fact_of("invoice.paid", invoice(parent=None, billing_reason="manual",
                                          metadata={"vanta_fee_key": "fee:tnt_a:2025-09"}))
    assert (fee.fee_key, fee.subscription_ref, fee.tenant_id) == ("fee:tnt_a:2025-09", None,
                                                                 None)
    legacy = fact_of("invoice.paid", invoice(parent=None, subscription="sub_7",
                                             subscription_details={"metadata": {
                                                 "tenant_id": "tnt_c"}}))
    assert (legacy.subscription_ref, legacy.tenant_id) == ("sub_7", "tnt_c")


@pytest.mark.parametrize(("refunded", "full"), [(1000, False), (4900, True)])
def test_a_refund_is_the_cumulative_amount_refunded(refunded: int, full: bool) -> None:
    charge = {"id": "ch_1", "object": "charge", "amount": 4900, "amount_refunded": refunded,
              "refunded": full, "currency": "usd", "customer": "cus_1",
              "payment_intent": "pi_1", "metadata": {}}
    fact = fact_of("charge.refunded", charge)
    assert fact == RefundFact(
        charge_ref="ch_1", payment_intent_ref="pi_1", customer_ref="cus_1", invoice_ref=None,
        tenant_id=None, amount_cents=4900, amount_refunded_cents=refunded, currency="usd",
        fully_refunded=full, event_created=datetime.fromtimestamp(T0, UTC), event_id="evt_1",
        event_type="charge.refunded")


def test_events_vanta_does_not_act_on_translate_to_nothing() -> None:
    assert fact_of("customer.created", {"id": "cus_1"}) is None
    assert fact_of("invoice.finalized", invoice()) is None


# -- order safety ---------------------------------------------------------------------------

def reachable(src: SubscriptionStatus, dst: SubscriptionStatus) -> bool:
    seen, todo = {src}, [src]
    while todo:
        for nxt in SUBSCRIPTION_TABLE.allowed(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return dst in seen


def apply_in_order(facts: list[SubscriptionFact]) -> tuple[SubscriptionStatus, int]:
    """A caller that keeps ``event_created`` per subscription, ignores older facts and
    accepts a newer status when the state table can reach it (intermediate facts may be late
    or lost, so the newest one can skip states)."""
    state: SubscriptionStatus | None = None
    last: datetime | None = None
    applied = 0
    for f in facts:
        if not f.supersedes(last):
            continue
        if state is not None and not reachable(state, f.status):
            raise InvalidTransition(f"{state} -> {f.status}")
        state, last = f.status, f.event_created
        applied += 1
    assert state is not None
    return state, applied


def test_out_of_order_delivery_ends_in_the_newest_state() -> None:
    lifecycle = [
        fact_of("customer.subscription.created", subscription("incomplete"), created=T0,
                event_id="evt_a"),
        fact_of("customer.subscription.updated", subscription("active"), created=T0 + 5,
                event_id="evt_b"),
        fact_of("customer.subscription.updated", subscription("past_due"), created=T0 + 60,
                event_id="evt_c"),
        fact_of("customer.subscription.deleted", subscription("canceled"), created=T0 + 120,
                event_id="evt_d"),
    ]
    assert [f.event_created for f in lifecycle] == sorted(f.event_created for f in lifecycle)
    for order in itertools.permutations(lifecycle):
        final, _ = apply_in_order(list(order))
        assert final is SubscriptionStatus.CANCELED
    # delivered newest-first, only the newest is applied; an old "active" cannot resurrect
    _, applied = apply_in_order(list(reversed(lifecycle)))
    assert applied == 1


def test_without_event_created_a_late_fact_would_break_the_state_table() -> None:
    """Why the caller must compare ``event_created``: applying blindly raises."""
    canceled = fact_of("customer.subscription.deleted", subscription("canceled"),
                       created=T0 + 10)
    late_active = fact_of("customer.subscription.updated", subscription("active"), created=T0)
    assert not late_active.supersedes(canceled.event_created)
    with pytest.raises(InvalidTransition):
        transition(canceled.status, late_active.status)


def test_the_same_event_twice_is_the_same_fact() -> None:
    payload = envelope("customer.subscription.updated", subscription("active"))
    assert fact_of("customer.subscription.updated", subscription("active")) == translate_event(
        event_of(payload), plans_by_price=PLANS_BY_PRICE)
