"""The shared cache store: key-value with TTLs plus an atomic token bucket.

Implemented by ``vanta.adapters.cache.memory.MemoryStore`` (in-process, embedded profile) and
``vanta.adapters.cache.redis_store.RedisStore`` (shared by every API process). Values are
bytes; TTLs are seconds; callers prefix their keys (``vanta:idem:``, ``vanta:rl:``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class BucketResult:
    """The outcome of one :meth:`CacheStore.take`."""

    allowed: bool
    remaining: int  # whole tokens left after this take
    reset_after_s: float  # seconds until the bucket is full again
    retry_after_s: float  # seconds until ``cost`` tokens are available; 0.0 when allowed


class KeyValueStore(Protocol):
    """The part of the cache store the application's caches use."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Stores ``value`` only when ``key`` holds nothing (atomically); True when stored."""
        ...

    async def delete(self, key: str) -> None: ...


@runtime_checkable
class CacheStore(KeyValueStore, Protocol):
    """Key-value with TTLs plus an atomic token bucket."""

    async def take(self, bucket_key: str, rate_per_s: float, burst: int,
                   cost: int = 1) -> BucketResult: ...

    async def extend_if_equal(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Restart ``key``'s TTL at ``ttl_s`` only while it still holds exactly ``value``
        (atomically): a lock's heartbeat that can never revive or overwrite what replaced
        the lock. True when extended."""
        ...

    async def close(self) -> None: ...
