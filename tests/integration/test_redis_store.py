"""RedisStore against a real Redis (VANTA_TEST_REDIS_URL, default redis://127.0.0.1:6379/15).

Skipped with the reason when Redis is not reachable; with CI=true that is a failure instead.
Every test works under its own key prefix and deletes its keys afterwards (no FLUSHDB).
What every cache store does (round trips, expiry, one winner, the bucket arithmetic) is the
contract suite's, ``tests/contract/test_cache_contract.py``, run on Redis and the memory
store; what is left here is Redis's own: the prefix, server-side TTLs, several clients.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio

from tests.conftest import require_service
from vanta.adapters.cache import CacheStore, open_store
from vanta.adapters.cache.redis_store import RedisStore

REDIS_URL = os.environ.get("VANTA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url() -> str:
    return require_service("Redis", REDIS_URL)


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    p = f"vanta-test:{uuid.uuid4().hex}:"
    yield p
    cleaner = RedisStore(redis_url)
    keys = [k async for k in cleaner.client.scan_iter(match=p + "*")]
    if keys:
        await cleaner.client.delete(*keys)
    await cleaner.close()


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[RedisStore]:
    s = RedisStore(redis_url, prefix=prefix)
    assert await s.ping()
    yield s
    await s.close()


async def test_it_is_a_cache_store(redis_url: str, store: RedisStore) -> None:
    assert isinstance(store, CacheStore)
    other = open_store(redis_url)
    assert isinstance(other, RedisStore)
    await other.close()




async def test_keys_carry_the_prefix_and_their_ttl(store: RedisStore, prefix: str) -> None:
    await store.set("vanta:idem:x", b"v", 30)
    ttl_ms = await store.client.pttl(prefix + "vanta:idem:x")
    assert 29_000 < ttl_ms <= 30_000
    await store.set_if_absent("vanta:idem:y", b"v", 0.5)
    assert 0 < await store.client.pttl(prefix + "vanta:idem:y") <= 500




async def test_set_if_absent_has_exactly_one_winner_across_clients(redis_url: str,
                                                                   prefix: str) -> None:
    a, b = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    try:
        wins = await asyncio.gather(*(s.set_if_absent("k", str(i).encode(), 10)
                                      for i in range(100) for s in (a, b)))
        assert sum(wins) == 1
        assert not await b.set_if_absent("k", b"late", 10)
    finally:
        await a.close()
        await b.close()




async def test_two_clients_share_one_bucket_exactly(redis_url: str, prefix: str) -> None:
    a, b = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    try:
        results = await asyncio.gather(*(s.take("rl:shared", 0.001, 50)
                                         for _ in range(100) for s in (a, b)))
        assert sum(r.allowed for r in results) == 50
        assert sorted(r.remaining for r in results if r.allowed) == list(range(50))
    finally:
        await a.close()
        await b.close()




async def test_bucket_state_expires_once_it_would_be_full(store: RedisStore,
                                                          prefix: str) -> None:
    await store.take("rl:t", 2.0, 10)  # full again after 0.5 s
    ttl_ms = await store.client.pttl(prefix + "rl:t")
    assert 0 < ttl_ms <= 6_000  # burst / rate + 1 s
    assert set(await store.client.hkeys(prefix + "rl:t")) == {b"tokens", b"ts"}




async def test_entitlement_cache_on_redis_is_shared_and_invalidated() -> None:
    import os
    import uuid

    from tests.conftest import require_service
    from vanta.adapters.cache.redis_store import RedisStore
    from vanta.application.entitlements_cache import EntitlementCache
    from vanta.application.ports.records_tenancy import SubscriptionRecord

    url = require_service("Redis", os.environ.get("VANTA_TEST_REDIS_URL",
                                                  "redis://127.0.0.1:6379/15"))
    a, b = RedisStore(url), RedisStore(url)
    tenant = f"t-{uuid.uuid4().hex}"
    one, two = EntitlementCache(a, ttl_s=30), EntitlementCache(b, ttl_s=30)
    try:
        await one.put(tenant, SubscriptionRecord(
            "s1", tenant, "pro", "active", {"plan": "pro"}, None, datetime.now(UTC), "manual",
            None, None, None, None, None))
        got = await two.get(tenant)  # another API process sees it
        assert got == {"row": {"entitlements": {"plan": "pro"}, "status": "active",
                               "past_due_since": None}}
        await two.invalidate(tenant)
        assert await one.get(tenant) is None
    finally:
        await a.close()
        await b.close()


async def test_vault_create_from_the_cli_tells_api_replicas_through_redis(
    redis_url: str, tmp_path: Path
) -> None:
    from vanta.application import vault_cache
    from vanta.config import Settings
    from vanta.entrypoints.cli import commands

    s = Settings(data_dir=tmp_path / "data", redis_url=redis_url)
    client = redis.asyncio.from_url(redis_url)
    try:
        await commands.tenant_create(s, "tnt_cli", "CLI", "pro")
        before = await client.get(vault_cache.GENERATION_KEY)
        await commands.vault_create(s, "tnt_cli", "V_CLI", "From the CLI")
        after = await client.get(vault_cache.GENERATION_KEY)
        assert after is not None and after != before  # every replica's copy is now stale
    finally:
        vault_cache.configure(None)  # the process-wide cache goes back to "off"
        await client.aclose()
