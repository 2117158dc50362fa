"""Token-bucket arithmetic and TTLs of the embedded MemoryStore, on a hand-driven clock."""

from __future__ import annotations

import asyncio

import pytest

from vanta.adapters.cache import BucketResult, CacheStore, bucket_step, open_store
from vanta.adapters.cache.memory import MemoryStore


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


async def drain(store: MemoryStore, key: str, rate: float, burst: int) -> list[BucketResult]:
    return [await store.take(key, rate, burst) for _ in range(burst)]


async def test_a_new_bucket_is_full_and_allows_exactly_the_burst(store: MemoryStore) -> None:
    results = await drain(store, "b", 1.0, 5)
    assert [r.allowed for r in results] == [True] * 5
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0]
    assert all(r.retry_after_s == 0 for r in results)
    sixth = await store.take("b", 1.0, 5)
    assert sixth == BucketResult(allowed=False, remaining=0, reset_after_s=5.0,
                                 retry_after_s=1.0)


async def test_retry_after_is_the_time_until_cost_tokens_are_back(store: MemoryStore,
                                                                  clock: Clock) -> None:
    await drain(store, "b", 0.5, 4)  # one token every 2 s
    r = await store.take("b", 0.5, 4)
    assert not r.allowed and r.retry_after_s == pytest.approx(2.0)
    clock.advance(1.5)
    r = await store.take("b", 0.5, 4)
    assert not r.allowed and r.retry_after_s == pytest.approx(0.5)
    clock.advance(0.5)
    r = await store.take("b", 0.5, 4)
    assert r.allowed and r.remaining == 0 and r.retry_after_s == 0


async def test_refill_is_continuous_and_capped_at_the_burst(store: MemoryStore,
                                                            clock: Clock) -> None:
    await drain(store, "b", 2.0, 10)
    clock.advance(1.0)  # 2 tokens back
    assert (await store.take("b", 2.0, 10)).remaining == 1
    clock.advance(3600)  # far longer than a full refill: still only 10
    results = [await store.take("b", 2.0, 10) for _ in range(11)]
    assert sum(r.allowed for r in results) == 10
    assert results[0].remaining == 9


async def test_reset_after_is_the_time_until_the_bucket_is_full(store: MemoryStore,
                                                                clock: Clock) -> None:
    r = await store.take("b", 1.0, 20)
    assert r.reset_after_s == pytest.approx(1.0)
    for _ in range(9):
        r = await store.take("b", 1.0, 20)
    assert r.remaining == 10 and r.reset_after_s == pytest.approx(10.0)
    clock.advance(4)
    r = await store.take("b", 1.0, 20, cost=0)  # a peek
    assert r.allowed and r.remaining == 14 and r.reset_after_s == pytest.approx(6.0)


async def test_cost_takes_several_tokens_and_a_denied_take_takes_none(store: MemoryStore,
                                                                     clock: Clock) -> None:
    r = await store.take("b", 1.0, 10, cost=7)
    assert r.allowed and r.remaining == 3
    r = await store.take("b", 1.0, 10, cost=5)
    assert not r.allowed and r.remaining == 3 and r.retry_after_s == pytest.approx(2.0)
    r = await store.take("b", 1.0, 10, cost=3)  # the denied take left the 3 tokens alone
    assert r.allowed and r.remaining == 0
    clock.advance(5)
    assert (await store.take("b", 1.0, 10, cost=5)).allowed


async def test_fractional_rates_count_whole_tokens_without_float_drift(store: MemoryStore,
                                                                       clock: Clock) -> None:
    await drain(store, "b", 0.1, 3)  # 6 per minute
    for _ in range(10):
        clock.advance(1)
    r = await store.take("b", 0.1, 3)
    assert r.allowed and r.remaining == 0


async def test_buckets_are_independent_per_key(store: MemoryStore) -> None:
    await drain(store, "a", 1.0, 2)
    assert not (await store.take("a", 1.0, 2)).allowed
    assert (await store.take("b", 1.0, 2)).allowed


async def test_a_clock_stepping_back_adds_no_tokens(store: MemoryStore, clock: Clock) -> None:
    await drain(store, "b", 1.0, 3)
    clock.advance(-100)
    assert not (await store.take("b", 1.0, 3)).allowed


async def test_a_bucket_is_forgotten_once_it_would_be_full_again(store: MemoryStore,
                                                                 clock: Clock) -> None:
    await store.take("b", 1.0, 5)
    assert len(store) == 1
    clock.advance(6.01)
    assert len(store) == 0
    assert (await store.take("b", 1.0, 5)).remaining == 4


@pytest.mark.parametrize(("rate", "burst", "cost"),
                         [(0, 5, 1), (-1, 5, 1), (float("inf"), 5, 1), (1, 0, 0), (1, 5, 6),
                          (1, 5, -1)])
async def test_impossible_buckets_are_refused(store: MemoryStore, rate: float, burst: int,
                                              cost: int) -> None:
    with pytest.raises(ValueError):
        await store.take("b", rate, burst, cost)


async def test_concurrent_takes_never_overspend(store: MemoryStore) -> None:
    results = await asyncio.gather(*(store.take("b", 0.001, 50) for _ in range(200)))
    assert sum(r.allowed for r in results) == 50


def test_bucket_step_treats_a_missing_bucket_as_full() -> None:
    tokens, r = bucket_step(None, None, 5.0, 1.0, 3, 1)
    assert tokens == 2.0 and r == BucketResult(True, 2, 1.0, 0.0)


# --- key-value part ---------------------------------------------------------------------------

async def test_get_set_delete(store: MemoryStore) -> None:
    assert await store.get("k") is None
    await store.set("k", b"v1", 10)
    assert await store.get("k") == b"v1"
    await store.set("k", b"v2", 10)
    assert await store.get("k") == b"v2"
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("k")  # deleting nothing is fine


async def test_values_expire_after_their_ttl(store: MemoryStore, clock: Clock) -> None:
    await store.set("k", b"v", 2.0)
    clock.advance(1.999)
    assert await store.get("k") == b"v"
    clock.advance(0.002)
    assert await store.get("k") is None
    assert len(store) == 0


async def test_set_if_absent_is_atomic_and_respects_expiry(store: MemoryStore,
                                                           clock: Clock) -> None:
    wins = await asyncio.gather(*(store.set_if_absent("k", str(i).encode(), 5) for i in range(50)))
    assert sum(wins) == 1
    winner = await store.get("k")
    assert not await store.set_if_absent("k", b"other", 5)
    assert await store.get("k") == winner
    clock.advance(5)
    assert await store.set_if_absent("k", b"other", 5)
    assert await store.get("k") == b"other"


@pytest.mark.parametrize("ttl", [0, -1, float("nan")])
async def test_bad_ttls_are_refused(store: MemoryStore, ttl: float) -> None:
    with pytest.raises(ValueError):
        await store.set("k", b"v", ttl)


def test_open_store_picks_the_implementation() -> None:
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store("memory://"), MemoryStore)
    assert isinstance(open_store(), CacheStore)
    with pytest.raises(ValueError):
        open_store("memcached://x")
