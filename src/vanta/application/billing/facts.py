"""Applying verified Stripe facts to the tenant's subscription row.

* ``SubscriptionFact`` (a snapshot): applied only if not older than the row's
  ``last_event_at``; otherwise recorded as ``stale``. The new status must be *reachable* in
  ``SUBSCRIPTION_TABLE`` from the current one (late events skip states); an impossible move
  (anything out of ``canceled``) is recorded as ``ignored_invalid_transition``. Checkout's
  inferred status is applied only while nothing authoritative has been (it never sets
  ``last_event_at``); its customer link is always taken. No row is created for a subscription
  first heard of as canceled.
* ``PaymentFact`` and ``RefundFact``: see ``payments``.

``past_due_since`` is the provider's event time when entering ``past_due`` (so the grace
period runs from when the payment failed, not from when we heard of it) and is cleared on
leaving. Entitlements are recomputed from the plan (``entitlements_for(plan).to_json()``); the
stored document also carries a ``billing`` section (refund hold, last payment) that
``Entitlements.from_json`` ignores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vanta.application.billing.common import (
    ENTITLED,
    HOLDABLE,
    PLAN_IDS,
    S,
    audit,
    billing_doc,
    entitlements_doc,
    log,
    past_due_since,
    row_summary,
    status_of,
    utc,
)
from vanta.application.billing.lookup import reachable
from vanta.application.billing.payments import apply_payment_fact, apply_refund_fact
from vanta.application.ports.billing import (
    BillingFact,
    BillingUnitOfWork,
    PaymentFact,
    SubscriptionFact,
)
from vanta.domain.ids import new_id


async def apply_stripe(uow: BillingUnitOfWork, fact: BillingFact | None, now: datetime
                       ) -> tuple[str | None, str]:
    """``(tenant whose subscription changed or None, outcome)``."""
    if fact is None:
        return None, "not_handled"
    if isinstance(fact, SubscriptionFact):
        return await _apply_subscription_fact(uow, fact, now)
    if isinstance(fact, PaymentFact):
        return await apply_payment_fact(uow, fact, now)
    return await apply_refund_fact(uow, fact, now)


async def _apply_subscription_fact(uow: BillingUnitOfWork, fact: SubscriptionFact,
                                   now: datetime) -> tuple[str | None, str]:
    subs = uow.billing_subscriptions
    row = await subs.by_provider_ref_for_update(fact.subscription_ref)
    if row is not None:
        if fact.tenant_id is not None and fact.tenant_id != row["tenant_id"]:
            log.warning("Stripe event %s names tenant %s for a subscription of another tenant;"
                        " not applied", fact.event_id, fact.tenant_id)
            return None, "tenant_mismatch"
        return await _update_from_fact(uow, row, fact, now)

    tenant_id = fact.tenant_id
    if tenant_id is None and fact.customer_ref:
        known = await subs.by_customer_ref(fact.customer_ref)
        tenant_id = known["tenant_id"] if known else None
    if tenant_id is None:
        return None, "unresolved_tenant"
    if await uow.tenants.get(tenant_id) is None:
        return None, "unknown_tenant"
    if fact.status is S.CANCELED:
        return None, "ignored_unknown_canceled"
    if fact.plan_id not in PLAN_IDS:
        return None, "unknown_plan"
    current = await subs.current_for_update(tenant_id)
    if current is not None and current["provider"] == "stripe" \
            and status_of(current["status"]) is not S.CANCELED \
            and current.get("last_event_at") is not None \
            and fact.event_created < current["last_event_at"]:
        return None, "superseded"  # an older subscription of the tenant, speaking late
    assert fact.plan_id is not None
    row = {
        "subscription_id": new_id(), "tenant_id": tenant_id, "plan_id": fact.plan_id,
        "status": fact.status.value, "entitlements": entitlements_doc(fact.plan_id, {}),
        "renewal_at": utc(fact.current_period_end) if fact.current_period_end else None,
        "created_at": now, "provider": "stripe", "provider_ref": fact.subscription_ref,
        "customer_ref": fact.customer_ref,
        "past_due_since": utc(fact.event_created) if fact.status is S.PAST_DUE else None,
        "last_event_at": None if fact.status_is_inferred else utc(fact.event_created),
        "updated_at": now,
    }
    await uow.subscriptions.replace(tenant_id, row)
    replaced = row_summary(current)
    review = current is not None and current["provider"] != "manual" \
        and status_of(current["status"]) in HOLDABLE
    await audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                action="subscription_created", actor="stripe",
                payload={"provider": "stripe", "event_id": fact.event_id,
                         "event_type": fact.event_type, "after": row_summary(row),
                         "replaced": replaced, "inferred": fact.status_is_inferred,
                         "review": review})
    return tenant_id, "applied"


async def _update_from_fact(uow: BillingUnitOfWork, row: dict[str, Any],
                            fact: SubscriptionFact, now: datetime) -> tuple[str | None, str]:
    tenant_id = row["tenant_id"]
    link: dict[str, Any] = {}
    if fact.customer_ref and row.get("customer_ref") != fact.customer_ref:
        link["customer_ref"] = fact.customer_ref
    authoritative_seen = row.get("last_event_at") is not None
    if fact.status_is_inferred and authoritative_seen:
        if not link:
            return None, "linked"
        await uow.subscriptions.update(row["subscription_id"], updated_at=now, **link)
        await audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                    action="subscription_linked", actor="stripe",
                    payload={"event_id": fact.event_id, **link})
        return None, "linked"
    if not fact.status_is_inferred and not fact.supersedes(row.get("last_event_at")):
        return None, "stale"

    cur = status_of(row["status"])
    target = fact.status
    billing = billing_doc(row)
    held = bool(billing.get("hold")) and target in ENTITLED
    if held:
        target = S.UNPAID  # a refund took this period back; only a new payment restores it
    if not reachable(cur, target):
        log.info("Stripe event %s: %s -> %s is not reachable; recorded, not applied",
                 fact.event_id, cur.value, target.value)
        return None, "ignored_invalid_transition"
    plan = fact.plan_id if fact.plan_id in PLAN_IDS else row["plan_id"]
    values: dict[str, Any] = {
        "status": target.value, "plan_id": plan,
        "entitlements": entitlements_doc(plan, billing),
        "renewal_at": utc(fact.current_period_end) if fact.current_period_end
        else row.get("renewal_at"),
        "past_due_since": past_due_since(cur, target, row.get("past_due_since"),
                                         fact.event_created),
        "updated_at": now, **link,
    }
    if not fact.status_is_inferred:
        values["last_event_at"] = utc(fact.event_created)
    await uow.subscriptions.update(row["subscription_id"], **values)
    after = {**row, **values}
    material = row_summary(row) != row_summary(after) or bool(link)
    if not material:
        return None, "held" if held else "no_change"
    await audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                action="subscription_updated", actor="stripe",
                payload={"provider": "stripe", "event_id": fact.event_id,
                         "event_type": fact.event_type, "before": row_summary(row),
                         "after": row_summary(after), "held": held,
                         "unknown_plan": fact.plan_id if plan != fact.plan_id else None})
    return tenant_id, "applied_held" if held else "applied"
