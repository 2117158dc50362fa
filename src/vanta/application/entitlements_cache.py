"""A cache of each tenant's subscription, in front of the database.

Production points it at Redis (shared by every API process) through the cache store; the
embedded profile uses the in-process store. Every change to a subscription deletes the
tenant's entry after its commit; the TTL only bounds how long a missed deletion could last.
What is cached is the subscription's grant and status, not the decision: the grace period
depends on the clock, so it is evaluated on every read.
"""

from __future__ import annotations

import json
from typing import Any

from vanta.application.ports.cache import KeyValueStore
from vanta.application.ports.records_tenancy import SubscriptionRecord


class EntitlementCache:
    def __init__(self, store: KeyValueStore | None = None, ttl_s: float = 300.0) -> None:
        self.store = store
        self.ttl_s = ttl_s

    @staticmethod
    def key(tenant_id: str) -> str:
        return f"vanta:entitlements:{tenant_id}"

    async def get(self, tenant_id: str) -> dict[str, Any] | None:
        if self.store is None:
            return None
        raw = await self.store.get(self.key(tenant_id))
        return None if raw is None else json.loads(raw)

    async def put(self, tenant_id: str, sub: SubscriptionRecord | None) -> None:
        if self.store is None:
            return
        doc = None if sub is None else {
            "entitlements": dict(sub.entitlements), "status": sub.status,
            "past_due_since": sub.past_due_since.isoformat()
            if sub.past_due_since is not None else None}
        await self.store.set(self.key(tenant_id), json.dumps({"row": doc}).encode(),
                             self.ttl_s)

    async def invalidate(self, tenant_id: str) -> None:
        if self.store is not None:
            await self.store.delete(self.key(tenant_id))


_cache = EntitlementCache()


def configure(store: KeyValueStore | None, ttl_s: float = 300.0) -> None:
    """Set once by the composition root."""
    global _cache
    _cache = EntitlementCache(store, ttl_s)


def cache() -> EntitlementCache:
    return _cache
