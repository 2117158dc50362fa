"""The cache store contract (:mod:`vanta.application.ports.cache`), run on every
implementation: the memory store (which is also the fake, ``tests/fakes/cache.py``) and Redis
(VANTA_TEST_REDIS_URL, default redis://127.0.0.1:6379/15; skipped with the reason when it is
not reachable, a failure with CI=true). Each Redis case works under its own key prefix and
deletes its keys afterwards.

The key-value part is what the idempotency and entitlement caches use; the token bucket is
the rate limiter's. Redis-only behaviour (the key prefix, TTLs on the server, several clients
sharing one bucket) stays in ``tests/integration/test_redis_store.py``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.conftest import require_service
from tests.fakes.cache import memory_store
from vanta.application.ports.cache import BucketResult, CacheStore

REDIS_URL = os.environ.get("VANTA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CacheStore]:
    if request.param == "memory":
        s = memory_store()
        yield s
        await s.close()
        return
    from vanta.adapters.cache.redis_store import RedisStore

    url = require_service("Redis", REDIS_URL)
    prefix = f"vanta-test:{uuid.uuid4().hex}:"
    r = RedisStore(url, prefix=prefix)
    try:
        yield r
    finally:
        keys = [k async for k in r.client.scan_iter(match=prefix + "*")]
        if keys:
            await r.client.delete(*keys)
        await r.close()


async def test_it_is_a_cache_store(store: CacheStore) -> None:
    assert isinstance(store, CacheStore)


async def test_get_set_delete_roundtrip_bytes(store: CacheStore) -> None:
    value = bytes(range(256))
    assert await store.get("k") is None
    await store.set("k", value, 10)
    assert await store.get("k") == value
    await store.set("k", b"", 10)  # an empty value is a value, not a miss
    assert await store.get("k") == b""
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("never-set")  # deleting nothing is fine


async def test_set_replaces_and_set_if_absent_does_not(store: CacheStore) -> None:
    assert await store.set_if_absent("k", b"first", 10)
    assert not await store.set_if_absent("k", b"second", 10)
    assert await store.get("k") == b"first"
    await store.set("k", b"third", 10)
    assert await store.get("k") == b"third"


async def test_values_expire(store: CacheStore) -> None:
    await store.set("k", b"v", 0.1)
    assert await store.set_if_absent("k2", b"v", 0.1)
    await asyncio.sleep(0.25)
    assert await store.get("k") is None
    assert await store.set_if_absent("k2", b"again", 10)
    assert await store.get("k2") == b"again"


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
async def test_ttls_must_be_positive_and_finite(store: CacheStore, ttl: float) -> None:
    with pytest.raises(ValueError):
        await store.set("k", b"v", ttl)
    with pytest.raises(ValueError):
        await store.set_if_absent("k", b"v", ttl)
    assert await store.get("k") is None


async def test_extend_if_equal_renews_only_the_value_it_names(store: CacheStore) -> None:
    assert await store.set_if_absent("lock", b"mine", 0.3)
    for _ in range(3):  # 0.45 s in all, past the first TTL: kept alive by the renewals
        await asyncio.sleep(0.15)
        assert await store.extend_if_equal("lock", b"mine", 0.3)
    assert await store.get("lock") == b"mine"
    assert not await store.extend_if_equal("lock", b"theirs", 10)
    await store.set("lock", b"answer", 10)  # replaced: the heartbeat must not touch it
    assert not await store.extend_if_equal("lock", b"mine", 0.1)
    assert await store.get("lock") == b"answer"
    assert not await store.extend_if_equal("gone", b"mine", 10)  # nothing to revive
    assert await store.get("gone") is None


async def test_set_if_absent_has_exactly_one_winner(store: CacheStore) -> None:
    wins = await asyncio.gather(*(store.set_if_absent("k", str(i).encode(), 10)
                                  for i in range(100)))
    assert sum(wins) == 1
    assert await store.get("k") == str(wins.index(True)).encode()


async def test_bucket_math(store: CacheStore) -> None:
    results = [await store.take("rl:b", 0.001, 5) for _ in range(6)]
    assert all(isinstance(r, BucketResult) for r in results)
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0, 0]
    assert [r.retry_after_s for r in results[:5]] == [0.0] * 5
    last = results[-1]
    assert last.retry_after_s == pytest.approx(1000, rel=1e-3)
    assert last.reset_after_s == pytest.approx(5000, rel=1e-3)
    r = await store.take("rl:c", 1.0, 10, cost=7)
    assert r.allowed and r.remaining == 3
    r = await store.take("rl:c", 1.0, 10, cost=9)
    assert not r.allowed and r.remaining in (3, 4)  # a denied take takes nothing
    assert 5 < r.retry_after_s <= 6
    r = await store.take("rl:c", 1.0, 10, cost=0)  # a free look at the bucket
    assert r.allowed and r.remaining in (3, 4)


async def test_buckets_are_independent_and_delete_refills_one(store: CacheStore) -> None:
    for _ in range(2):
        assert (await store.take("rl:x", 0.001, 2)).allowed
    assert not (await store.take("rl:x", 0.001, 2)).allowed
    assert (await store.take("rl:y", 0.001, 2)).remaining == 1
    await store.delete("rl:x")  # a missing bucket is a full one
    assert (await store.take("rl:x", 0.001, 2)).remaining == 1


async def test_the_bucket_refills_with_time(store: CacheStore) -> None:
    for _ in range(4):
        assert (await store.take("rl:r", 20.0, 4)).allowed
    assert not (await store.take("rl:r", 20.0, 4)).allowed
    await asyncio.sleep(0.12)  # 20 tokens/s: at least two are back
    assert (await store.take("rl:r", 20.0, 4)).allowed
    assert (await store.take("rl:r", 20.0, 4)).allowed


@pytest.mark.parametrize("rate,burst,cost", [(1.0, 5, 6), (0.0, 5, 1), (-1.0, 5, 1),
                                             (float("inf"), 5, 1), (1.0, 0, 0), (1.0, 5, -1)])
async def test_impossible_buckets_are_refused(store: CacheStore, rate: float, burst: int,
                                              cost: int) -> None:
    with pytest.raises(ValueError):
        await store.take("rl:x", rate, burst, cost=cost)
