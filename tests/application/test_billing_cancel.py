"""Cancel and resume over the fakes: what is asked of Stripe, what is audited, and that the
local Stripe row is left to the provider's events."""

from __future__ import annotations

import pytest

from tests.application.conftest import World
from tests.fakes.billing import FakeStripe, FakeVerifier
from vanta.application.billing import (
    BillingProviders,
    cancel_subscription,
    receive_stripe,
    resume_subscription,
)
from vanta.application.ports.billing_facts import InboundEvent, SubscriptionFact
from vanta.domain.errors import Conflict, NotFound


async def _subscribed(w: World) -> tuple[BillingProviders, FakeStripe, str]:
    stripe, verifier = FakeStripe(clock=w.clock), FakeVerifier("stripe")
    providers = BillingProviders(stripe=stripe, stripe_events=verifier)
    sid, _ = await stripe.create_checkout_session(None, "tnt_b", "pro", "https://a/ok",
                                                  "https://a/no")
    snap = stripe.complete_checkout(sid)
    fact = SubscriptionFact(
        tenant_id="tnt_b", subscription_ref=snap.subscription_ref,
        customer_ref=snap.customer_ref, status=snap.status, plan_id="pro",
        current_period_end=snap.current_period_end, event_created=w.clock.now,
        event_id="evt_1", event_type="customer.subscription.created")
    body, sig = verifier.sign(InboundEvent("stripe", "evt_1", fact.event_type, fact))
    await receive_stripe(w.db.uow, providers, body, sig, clock=w.clock)
    return providers, stripe, snap.subscription_ref


async def test_stripe_cancel_and_resume_ask_stripe_and_are_audited(world: World) -> None:
    providers, stripe, ref = await _subscribed(world)
    ans = await cancel_subscription(world.db.uow, providers, tenant_id="tnt_b",
                                    at="period_end", actor="u1", clock=world.clock)
    assert (ans["action"], ans["applies"]) == ("cancel_at_period_end", "on_provider_event")
    assert stripe.subscriptions[ref].cancel_at_period_end is True
    await resume_subscription(world.db.uow, providers, tenant_id="tnt_b", actor="u1")
    assert stripe.subscriptions[ref].cancel_at_period_end is False
    await cancel_subscription(world.db.uow, providers, tenant_id="tnt_b", at="now",
                              actor="u1", clock=world.clock)
    assert stripe.subscriptions[ref].status.value == "canceled"
    async with world.uow() as u:
        row = await u.subscriptions.current("tnt_b")
        events = [e for e in await u.audit.all() if e.action.endswith("_requested")]
    assert row is not None and row.status == "active", "the row waits for Stripe's event"
    assert [(e.action, e.actor) for e in events] == [
        ("cancel_requested", "u1"), ("resume_requested", "u1"), ("cancel_requested", "u1")]


async def test_nothing_to_cancel_or_resume(world: World) -> None:
    providers = BillingProviders(stripe=FakeStripe())
    with pytest.raises(NotFound):
        await cancel_subscription(world.db.uow, providers, tenant_id="tnt_b", at="now",
                                  actor="u1")
    providers, stripe, _ = await _subscribed(world)
    async with world.uow() as u:
        current = await u.subscriptions.current("tnt_b")
        assert current is not None
        await u.subscriptions.update(current.subscription_id, status="canceled")
        await u.commit()
    with pytest.raises(Conflict):
        await resume_subscription(world.db.uow, providers, tenant_id="tnt_b", actor="u1")
    ans = await cancel_subscription(world.db.uow, providers, tenant_id="tnt_b", at="now",
                                    actor="u1")
    assert ans["action"] == "already_canceled"
    assert not [c for c in stripe.calls if c[0] == "cancel"]
