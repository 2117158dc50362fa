"""Finding a subscription: by provider identifiers, and how far its status can move.

``reachable`` is a breadth-first search over ``SUBSCRIPTION_TABLE``: provider events can skip
states (a late event), so a move is accepted when some chain of allowed moves leads there.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from vanta.application.ports.billing import BillingUnitOfWork
from vanta.domain.subscriptions import SUBSCRIPTION_TABLE, SubscriptionStatus


def reachable(src: SubscriptionStatus, dst: SubscriptionStatus) -> bool:
    """Whether ``dst`` can follow ``src`` through zero or more allowed moves."""
    if src == dst:
        return True
    seen, todo = {src}, deque([src])
    while todo:
        for nxt in SUBSCRIPTION_TABLE.allowed(todo.popleft()):
            if nxt == dst:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


async def resolve_row(uow: BillingUnitOfWork, *, subscription_ref: str | None,
                      customer_ref: str | None) -> dict[str, Any] | None:
    """The subscription a provider event names (locked): by its ref, else its customer."""
    subs = uow.billing_subscriptions
    if subscription_ref:
        row = await subs.by_provider_ref_for_update(subscription_ref)
        if row is not None:
            return row
    if customer_ref:
        return await subs.by_customer_ref(customer_ref)
    return None


async def stripe_customer_of(uow: BillingUnitOfWork, tenant_id: str) -> str | None:
    """The tenant's Stripe customer (from its Stripe subscription), for fee invoices."""
    row = await uow.subscriptions.current(tenant_id)
    if row is None or row.provider != "stripe":
        return None
    return row.customer_ref or None
