"""The entitlement cache while its store is unreachable (a Redis failover): decisions come
from the database, nothing fails, and the cache refills once the store answers again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.application.conftest import World
from vanta.adapters.cache.memory import MemoryStore
from vanta.application import entitlements_cache
from vanta.application.tenancy import grant_plan, tenant_entitlements
from vanta.domain.entitlements import Feature


class Switchable(MemoryStore):
    """A memory store that raises like a client with no master while ``down``."""

    down = False

    async def get(self, key: str) -> bytes | None:
        if self.down:
            raise ConnectionError("no master known")
        return await super().get(key)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if self.down:
            raise ConnectionError("no master known")
        await super().set(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        if self.down:
            raise ConnectionError("no master known")
        await super().delete(key)


async def test_reads_fall_back_to_the_database_and_the_cache_refills(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Switchable()
    monkeypatch.setattr(entitlements_cache, "_cache", entitlements_cache.EntitlementCache(store))
    key = entitlements_cache.EntitlementCache.key("tnt_a")
    store.down = True
    async with world.uow() as u:
        ent = await tenant_entitlements(u, "tnt_a")
    assert ent.flag(Feature.API_PULL_FEED)  # institutional, read from the database
    store.down = False
    assert await store.get(key) is None
    async with world.uow() as u:
        await tenant_entitlements(u, "tnt_a")
    assert await store.get(key) is not None  # refilled on the first read after the outage


async def test_a_failed_invalidation_does_not_fail_the_committed_change(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    store = Switchable()
    monkeypatch.setattr(entitlements_cache, "_cache", entitlements_cache.EntitlementCache(store))
    store.down = True
    row = await grant_plan(world.uow(), tenant_id="tnt_b", plan_id="pro", actor="test")
    assert row["plan_id"] == "pro"  # committed and answered, despite the store
    assert "could not drop the cached entitlements" in caplog.text
