"""The dispatcher's read-through secret cache: hits skip the store, entries expire and are
bounded, failures are not remembered."""

from __future__ import annotations

import pytest

from vanta.adapters.secrets.cached import CachedSecrets
from vanta.adapters.secrets.local import SecretNotFound


class CountingStore:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.reads: list[str] = []

    def get(self, ref: str) -> bytes:
        self.reads.append(ref)
        if ref not in self.values:
            raise SecretNotFound(ref)
        return self.values[ref]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hit_does_not_read_the_store_until_the_entry_expires() -> None:
    store, clock = CountingStore(), Clock()
    store.values["local:a"] = b"one"
    cache = CachedSecrets(store, ttl_seconds=10, clock=clock)
    assert [cache.get("local:a") for _ in range(3)] == [b"one"] * 3
    assert store.reads == ["local:a"]
    store.values["local:a"] = b"two"
    clock.now = 10.5
    assert cache.get("local:a") == b"two"
    assert store.reads == ["local:a", "local:a"]


def test_entries_are_bounded_least_recently_used_first() -> None:
    store = CountingStore()
    store.values.update({"a": b"1", "b": b"2", "c": b"3"})
    cache = CachedSecrets(store, max_entries=2)
    cache.get("a")
    cache.get("b")
    cache.get("a")  # "b" is now the least recently used
    cache.get("c")
    assert len(cache) == 2
    store.reads.clear()
    cache.get("a")
    cache.get("b")
    assert store.reads == ["b"]


def test_a_missing_secret_is_not_remembered() -> None:
    store = CountingStore()
    cache = CachedSecrets(store)
    with pytest.raises(SecretNotFound):
        cache.get("x")
    store.values["x"] = b"now here"
    assert cache.get("x") == b"now here"
