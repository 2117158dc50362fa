"""Provider webhooks into the inbox over the in-memory billing repositories: verify,
de-duplicate by event id, apply subscription facts in order, record the outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.application.conftest import World
from tests.fakes.billing import FakeVerifier
from vanta.application.billing.inbox import receive_stripe
from vanta.application.billing.providers import BillingProviders
from vanta.application.ports.billing import BillingEventRejected
from vanta.application.ports.billing_facts import InboundEvent, SubscriptionFact
from vanta.application.ports.records_billing import InboxRecord
from vanta.domain.subscriptions import SubscriptionStatus as S


@pytest.fixture
def billing(world: World) -> tuple[World, FakeVerifier, BillingProviders]:
    verifier = FakeVerifier("stripe")
    return world, verifier, BillingProviders(stripe_events=verifier)


def _fact(w: World, event_id: str, status: S, seconds: float, plan: str = "pro",
          tenant: str | None = "tnt_b") -> SubscriptionFact:
    return SubscriptionFact(
        tenant_id=tenant, subscription_ref="sub_1", customer_ref="cus_1", status=status,
        plan_id=plan, current_period_end=w.clock.now + timedelta(days=30),
        event_created=w.clock.now + timedelta(seconds=seconds), event_id=event_id,
        event_type="customer.subscription.updated")


async def _deliver(b: tuple[World, FakeVerifier, BillingProviders], event_id: str,
                   fact: SubscriptionFact | None, forged: bool = False) -> tuple[bool, str]:
    w, verifier, providers = b
    body, signature = verifier.sign(InboundEvent("stripe", event_id,
                                                 "customer.subscription.updated", fact))
    res = await receive_stripe(w.db.uow, providers, body, "v1=forged" if forged else signature,
                               clock=w.clock)
    return res.duplicate, res.outcome


async def test_a_new_subscription_replaces_the_manual_plan(billing: tuple) -> None:
    w = billing[0]
    assert await _deliver(billing, "evt_1", _fact(w, "evt_1", S.ACTIVE, 0)) \
        == (False, "applied")
    async with w.uow() as u:
        sub = await u.subscriptions.current("tnt_b")
        [inbox] = await u.inbox.list("stripe")
    assert sub is not None
    assert (sub.provider, sub.provider_ref, sub.plan_id, sub.status) \
        == ("stripe", "sub_1", "pro", "active")
    assert type(inbox) is InboxRecord
    assert (inbox.inbox_id, inbox.outcome, inbox.payload["id"]) \
        == ("stripe:evt_1", "applied", "evt_1")


async def test_a_redelivered_event_is_recorded_once(billing: tuple) -> None:
    w = billing[0]
    fact = _fact(w, "evt_1", S.ACTIVE, 0)
    await _deliver(billing, "evt_1", fact)
    assert await _deliver(billing, "evt_1", fact) == (True, "duplicate")
    async with w.uow() as u:
        assert len(await u.inbox.list()) == 1


async def test_an_older_event_arriving_late_is_stale(billing: tuple) -> None:
    w = billing[0]
    await _deliver(billing, "evt_1", _fact(w, "evt_1", S.ACTIVE, 0))
    assert await _deliver(billing, "evt_3", _fact(w, "evt_3", S.PAST_DUE, 20)) \
        == (False, "applied")
    assert await _deliver(billing, "evt_2", _fact(w, "evt_2", S.ACTIVE, 10)) \
        == (False, "stale")
    async with w.uow() as u:
        sub = await u.subscriptions.current("tnt_b")
    assert sub is not None and sub.status == "past_due"
    assert sub.past_due_since == w.clock.now + timedelta(seconds=20)


async def test_events_for_unknown_tenants_and_unhandled_types_are_only_recorded(
        billing: tuple) -> None:
    w = billing[0]
    assert await _deliver(billing, "evt_x", _fact(w, "evt_x", S.ACTIVE, 0,
                                                  tenant="tnt_nope")) \
        == (False, "unknown_tenant")
    assert await _deliver(billing, "evt_y", None) == (False, "not_handled")
    async with w.uow() as u:
        outcomes = [r.outcome for r in await u.inbox.list("stripe")]
        sub = await u.subscriptions.current("tnt_b")
    assert sorted(outcomes) == ["not_handled", "unknown_tenant"]
    assert sub is not None and sub.provider == "manual"


async def test_a_bad_signature_writes_nothing(billing: tuple) -> None:
    w = billing[0]
    with pytest.raises(BillingEventRejected):
        await _deliver(billing, "evt_1", _fact(w, "evt_1", S.ACTIVE, 0), forged=True)
    async with w.uow() as u:
        assert await u.inbox.list() == []
