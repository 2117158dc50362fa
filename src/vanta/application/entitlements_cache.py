"""A cache of each tenant's subscription, in front of the database.

Production points it at Redis (shared by every API process) through the cache store; the
embedded profile uses the in-process store. Every change to a subscription deletes the
tenant's entry after its commit; the TTL only bounds how long a missed deletion could last.
What is cached is the subscription's grant and status, not the decision: the grace period
depends on the clock, so it is evaluated on every read.

The cache never decides availability: while the store cannot be reached (a Redis failover)
reads go to the database and writes are skipped, and the entry refills on the first read
after the store is back. A deletion that fails is retried briefly, then logged as an error:
until the TTL runs out the old grant may still be served.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from vanta.application.ports.cache import KeyValueStore
from vanta.application.ports.records_tenancy import SubscriptionRecord

log = logging.getLogger("vanta.entitlements_cache")


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
        try:
            raw = await self.store.get(self.key(tenant_id))
        except Exception as e:
            log.warning("entitlement cache unavailable, reading the database: %r", e)
            return None
        return None if raw is None else json.loads(raw)

    async def put(self, tenant_id: str, sub: SubscriptionRecord | None) -> None:
        if self.store is None:
            return
        doc = None if sub is None else {
            "entitlements": dict(sub.entitlements), "status": sub.status,
            "past_due_since": sub.past_due_since.isoformat()
            if sub.past_due_since is not None else None}
        try:
            await self.store.set(self.key(tenant_id), json.dumps({"row": doc}).encode(),
                                 self.ttl_s)
        except Exception as e:
            log.warning("entitlement cache unavailable, not caching: %r", e)

    async def invalidate(self, tenant_id: str, attempts: int = 5) -> None:
        """Called after the commit: raising here would turn a committed change into an error
        answer, so failures are retried (a failover usually ends within them) and logged."""
        if self.store is None:
            return
        pause = 0.1
        for attempt in range(attempts):
            try:
                await self.store.delete(self.key(tenant_id))
                return
            except Exception as e:
                if attempt == attempts - 1:
                    log.error("could not drop the cached entitlements of %s; the old grant "
                              "may be served for up to %.0f s: %r", tenant_id, self.ttl_s, e)
                    return
            await asyncio.sleep(pause)
            pause *= 2


_cache = EntitlementCache()


def configure(store: KeyValueStore | None, ttl_s: float = 300.0) -> None:
    """Set once by the composition root."""
    global _cache
    _cache = EntitlementCache(store, ttl_s)


def cache() -> EntitlementCache:
    return _cache
