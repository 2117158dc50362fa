"""In-process :class:`~vanta.adapters.cache.CacheStore`: the embedded default.

Every method does its whole read-modify-write without awaiting, so coroutines on one event loop
can never interleave inside it; a lock also covers callers on other threads. Nothing is shared
between processes: run one API process with it, or use Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from vanta.adapters.cache import (
    BucketResult,
    bucket_step,
    bucket_ttl_s,
    check_bucket_args,
    check_ttl,
)

__all__ = ["MemoryStore"]

_SWEEP_EVERY = 1024  # writes between two sweeps of expired entries


class MemoryStore:
    """Dict-backed store with TTLs and token buckets.

    ``clock`` (seconds, monotonic by default) drives both expiry and bucket refill, so tests
    can move time by hand.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[bytes, float]] = {}  # key → (value, expires_at)
        self._buckets: dict[str, tuple[float, float, float]] = {}  # → (tokens, ts, expires_at)
        self._lock = threading.Lock()
        self._writes = 0

    def __len__(self) -> int:
        """Live entries (values and buckets); expired ones are not counted."""
        now = self._clock()
        with self._lock:
            return (sum(1 for _, exp in self._values.values() if exp > now)
                    + sum(1 for *_, exp in self._buckets.values() if exp > now))

    def _live(self, key: str, now: float) -> bytes | None:
        item = self._values.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._values[key]
            return None
        return item[0]

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
            self._buckets = {k: v for k, v in self._buckets.items() if v[2] > now}

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key, self._clock())

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        check_ttl(ttl_s)
        with self._lock:
            now = self._clock()
            self._values[key] = (bytes(value), now + ttl_s)
            self._wrote(now)

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        check_ttl(ttl_s)
        with self._lock:
            now = self._clock()
            if self._live(key, now) is not None:
                return False
            self._values[key] = (bytes(value), now + ttl_s)
            self._wrote(now)
            return True

    async def extend_if_equal(self, key: str, value: bytes, ttl_s: float) -> bool:
        check_ttl(ttl_s)
        with self._lock:
            now = self._clock()
            if self._live(key, now) != value:
                return False
            self._values[key] = (bytes(value), now + ttl_s)
            return True

    async def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._buckets.pop(key, None)

    async def take(self, bucket_key: str, rate_per_s: float, burst: int,
                   cost: int = 1) -> BucketResult:
        check_bucket_args(rate_per_s, burst, cost)
        with self._lock:
            now = self._clock()
            tokens: float | None = None
            ts: float | None = None
            state = self._buckets.get(bucket_key)
            if state is not None and state[2] > now:
                tokens, ts, _ = state
            tokens, result = bucket_step(tokens, ts, now, rate_per_s, burst, cost)
            self._buckets[bucket_key] = (tokens, now, now + bucket_ttl_s(rate_per_s, burst))
            self._wrote(now)
            return result

    async def close(self) -> None:
        with self._lock:
            self._values.clear()
            self._buckets.clear()
