"""The vault read-through cache: hits skip the loader, any invalidation (this process, another
replica sharing the store, or another database writer) forces a reload, tenants never mix."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from vanta.adapters.cache.memory import MemoryStore
from vanta.application.ports.records_catalog import VaultRecord
from vanta.application.vault_cache import GENERATION_KEY, VaultCache


class Db:
    """Stands in for the vaults table; counts the reads."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {
            "tnt_a": [{"vault_id": "VA", "maintenance": False}],
            "tnt_b": [{"vault_id": "VB", "maintenance": False}]}
        self.reads = 0

    def loader(self, tenant: str) -> Callable[[], Awaitable[list[VaultRecord]]]:
        async def load() -> list[VaultRecord]:
            self.reads += 1
            await asyncio.sleep(0)
            return [VaultRecord.from_row({**VAULT, "tenant_id": tenant, **r})
                    for r in self.rows[tenant]]
        return load


VAULT: dict[str, Any] = {"label": "v", "rails": {}, "personas": [], "risk_profile": {},
                         "public": False, "created_at": datetime(2026, 1, 1, tzinfo=UTC)}


async def _ids(cache: VaultCache, db: Db, tenant: str) -> list[str]:
    return [r.vault_id for r in await cache.rows(tenant, db.loader(tenant))]


async def test_a_hit_does_not_read_the_database() -> None:
    db, cache = Db(), VaultCache(MemoryStore())
    assert await _ids(cache, db, "tnt_a") == ["VA"]
    assert await _ids(cache, db, "tnt_a") == ["VA"]
    assert db.reads == 1


async def test_tenants_are_cached_separately() -> None:
    db, cache = Db(), VaultCache(MemoryStore())
    assert await _ids(cache, db, "tnt_a") == ["VA"]
    assert await _ids(cache, db, "tnt_b") == ["VB"]
    assert await _ids(cache, db, "tnt_a") == ["VA"]
    assert db.reads == 2


async def test_invalidate_forces_a_reload() -> None:
    db, cache = Db(), VaultCache(MemoryStore())
    await _ids(cache, db, "tnt_a")
    db.rows["tnt_a"].append({"vault_id": "VA2", "maintenance": False})
    await cache.invalidate()
    assert await _ids(cache, db, "tnt_a") == ["VA", "VA2"]
    assert db.reads == 2


async def test_a_write_on_another_replica_invalidates_this_one() -> None:
    shared = MemoryStore()  # stands for Redis
    db, here, there = Db(), VaultCache(shared), VaultCache(shared)
    await _ids(here, db, "tnt_a")
    db.rows["tnt_a"][0]["maintenance"] = True
    await there.invalidate()  # the replica that committed the write bumps the generation
    rows = await here.rows("tnt_a", db.loader("tnt_a"))
    assert rows[0].maintenance is True and db.reads == 2


async def test_a_lost_generation_invalidates_everything() -> None:
    store = MemoryStore()
    db, cache = Db(), VaultCache(store)
    await _ids(cache, db, "tnt_a")
    await store.delete(GENERATION_KEY)  # evicted or expired in Redis
    await _ids(cache, db, "tnt_a")
    assert db.reads == 2


async def test_a_database_change_stamp_invalidates() -> None:
    version = [1]
    db, cache = Db(), VaultCache(MemoryStore(), db_version=lambda: version[0])
    await _ids(cache, db, "tnt_a")
    await _ids(cache, db, "tnt_a")
    version[0] = 2  # another process committed to the database
    await _ids(cache, db, "tnt_a")
    assert db.reads == 2


async def test_entries_expire_after_max_age() -> None:
    now = [0.0]
    db, cache = Db(), VaultCache(MemoryStore(), max_age_s=5.0, clock=lambda: now[0])
    await _ids(cache, db, "tnt_a")
    now[0] = 4.9
    await _ids(cache, db, "tnt_a")
    now[0] = 5.0
    await _ids(cache, db, "tnt_a")
    assert db.reads == 2


async def test_concurrent_misses_share_one_read() -> None:
    db, cache = Db(), VaultCache(MemoryStore())
    results = await asyncio.gather(*(_ids(cache, db, "tnt_a") for _ in range(20)))
    assert results == [["VA"]] * 20 and db.reads == 1


async def test_an_unreachable_store_reads_the_database_every_time() -> None:
    class Down(MemoryStore):
        async def get(self, key: str) -> bytes | None:
            raise ConnectionError("redis is down")

    db, cache = Db(), VaultCache(Down())
    assert await _ids(cache, db, "tnt_a") == ["VA"]
    db.rows["tnt_a"][0]["vault_id"] = "VA_NEW"
    assert await _ids(cache, db, "tnt_a") == ["VA_NEW"]
    assert db.reads == 2


async def test_unconfigured_it_caches_nothing() -> None:
    db, cache = Db(), VaultCache(None)
    await _ids(cache, db, "tnt_a")
    await _ids(cache, db, "tnt_a")
    await cache.invalidate()
    assert db.reads == 2


async def test_a_failed_load_is_not_cached() -> None:
    cache = VaultCache(MemoryStore())

    async def boom() -> list[dict[str, Any]]:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        await cache.rows("tnt_a", boom)
    db = Db()
    assert await _ids(cache, db, "tnt_a") == ["VA"] and db.reads == 1
