"""The inbox review listing over the in-memory repositories: each event is listed to the
tenant it was attributed to when applied (never by a name the event carried that applying
it found wrong), newest first, with a status and the failing outcome as its error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.application.conftest import World
from tests.fakes.billing import FakeVerifier
from tests.fakes.clock import T0
from vanta.application.billing.inbox import receive_stripe
from vanta.application.billing.inbox_review import event_status, inbox_page
from vanta.application.billing.providers import BillingProviders
from vanta.application.ports.billing_facts import InboundEvent, SubscriptionFact
from vanta.domain.subscriptions import SubscriptionStatus as S


@pytest.fixture
def billing(world: World) -> tuple[World, FakeVerifier, BillingProviders]:
    verifier = FakeVerifier("stripe")
    return world, verifier, BillingProviders(stripe_events=verifier)


async def _deliver(b: tuple[World, FakeVerifier, BillingProviders], event_id: str,
                   tenant: str | None, plan: str = "pro", ref: str = "sub_1",
                   handled: bool = True) -> str:
    w, verifier, providers = b
    w.clock.advance(1)
    fact = SubscriptionFact(
        tenant_id=tenant, subscription_ref=ref, customer_ref=f"cus_{ref}",
        status=S.ACTIVE, plan_id=plan, current_period_end=w.clock.now + timedelta(days=30),
        event_created=w.clock.now, event_id=event_id,
        event_type="customer.subscription.updated") if handled else None
    body, sig = verifier.sign(InboundEvent("stripe", event_id,
                                           "customer.subscription.updated", fact))
    return (await receive_stripe(w.db.uow, providers, body, sig, clock=w.clock)).outcome


async def test_a_tenant_sees_only_the_events_attributed_to_it(billing: tuple) -> None:
    w = billing[0]
    assert await _deliver(billing, "evt_1", "tnt_b") == "applied"
    assert await _deliver(billing, "evt_2", "tnt_b", plan="nope", ref="sub_2") \
        == "unknown_plan"
    assert await _deliver(billing, "evt_3", None, handled=False) == "not_handled"
    assert await _deliver(billing, "evt_4", "tnt_zz", ref="sub_4") == "unknown_tenant"
    # sub_1 belongs to tnt_b: an event naming tnt_a for it is not listed to tnt_a
    assert await _deliver(billing, "evt_5", "tnt_a") == "tenant_mismatch"

    page = await inbox_page(w.db.uow(readonly=True), tenant_id="tnt_b", limit=10)
    assert [(i["event_id"], i["status"], i["error"]) for i in page.items] \
        == [("evt_2", "failed", "unknown_plan"), ("evt_1", "applied", None)]
    assert page.next_before is None
    first = page.items[1]
    assert (first["id"], first["provider"], first["type"]) \
        == ("stripe:evt_1", "stripe", "customer.subscription.updated")
    assert first["received_at"] == first["processed_at"]
    assert "payload" not in first
    assert (await inbox_page(w.db.uow(readonly=True), tenant_id="tnt_a", limit=10)).items \
        == []


async def test_pages_follow_on_without_gaps_or_repeats(billing: tuple) -> None:
    w = billing[0]
    for n in range(5):
        await _deliver(billing, f"evt_{n}", "tnt_b")
    seen: list[str] = []
    before = None
    while True:
        page = await inbox_page(w.db.uow(readonly=True), tenant_id="tnt_b", limit=2,
                                before=before)
        seen += [i["event_id"] for i in page.items]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == ["evt_4", "evt_3", "evt_2", "evt_1", "evt_0"]


def test_statuses_name_what_became_of_the_event() -> None:
    assert event_status(None, None) == "pending"
    assert [event_status(o, T0) for o in
            ("applied", "activated", "stale", "late_payment_short_review",
             "late_payment_unconfirmed", "unknown_plan")] \
        == ["applied", "applied", "ignored", "needs_review", "needs_review", "failed"]
