"""The key-value + token-bucket store (port: :mod:`vanta.application.ports.cache`, re-exported
here), with an embedded and a Redis implementation.

* :class:`~vanta.adapters.cache.memory.MemoryStore` — in-process, the embedded default (one API
  process only: nothing is shared between processes).
* :class:`~vanta.adapters.cache.redis_store.RedisStore` — ``redis.asyncio``; every operation is
  one round trip and the token bucket is one Lua script timed by the Redis server's ``TIME``, so
  several API processes share one limit exactly.

Both run the same bucket arithmetic (:func:`bucket_step` here, its Lua twin in Redis):

* the bucket holds at most ``burst`` tokens and refills continuously at ``rate_per_s``;
* a missing bucket is full, so a bucket is dropped once it would have refilled completely;
* ``take`` removes ``cost`` tokens when at least ``cost`` are there, else removes nothing;
* ``remaining`` is the whole tokens left, ``reset_after_s`` the time until the bucket is full
  again, ``retry_after_s`` (0 when allowed) the time until ``cost`` tokens are there.

Callers prefix their keys (``vanta:idem:``, ``vanta:rl:``); the stores never interpret them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from vanta.application.ports.cache import BucketResult, CacheStore

if TYPE_CHECKING:
    from vanta.adapters.cache.memory import MemoryStore
    from vanta.adapters.cache.redis_store import RedisStore

__all__ = [
    "BucketResult",
    "CacheStore",
    "MemoryStore",
    "RedisStore",
    "bucket_step",
    "check_bucket_args",
    "open_store",
]

# Float slack so that e.g. 0.1 token/s for 10 s counts as one whole token.
EPSILON = 1e-9


def check_bucket_args(rate_per_s: float, burst: int, cost: int) -> None:
    if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
        raise ValueError(f"rate_per_s must be a positive finite number, not {rate_per_s!r}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, not {burst!r}")
    if not 0 <= cost <= burst:
        # A cost above the burst could never be paid: refuse it instead of denying forever.
        raise ValueError(f"cost must be between 0 and burst ({burst}), not {cost!r}")


def check_ttl(ttl_s: float) -> None:
    if not (ttl_s > 0 and math.isfinite(ttl_s)):
        raise ValueError(f"ttl_s must be a positive finite number of seconds, not {ttl_s!r}")


def bucket_step(tokens: float | None, ts: float | None, now: float, rate_per_s: float,
                burst: int, cost: int) -> tuple[float, BucketResult]:
    """One take on a bucket last seen holding ``tokens`` at ``ts`` (None: never seen, so full).

    Returns the tokens to store (as of ``now``) and the result. The Lua script in
    :mod:`vanta.adapters.cache.redis_store` is a line-by-line copy of this function.
    """
    if tokens is None or ts is None:
        tokens, ts = float(burst), now
    elapsed = max(0.0, now - ts)  # a clock that steps back never adds tokens
    tokens = min(float(burst), tokens + elapsed * rate_per_s)
    if tokens + EPSILON >= cost:
        tokens = max(0.0, tokens - cost)
        allowed, retry_after = True, 0.0
    else:
        allowed, retry_after = False, (cost - tokens) / rate_per_s
    reset_after = (burst - tokens) / rate_per_s
    remaining = math.floor(tokens + EPSILON)
    return tokens, BucketResult(allowed, remaining, reset_after, retry_after)


def bucket_ttl_s(rate_per_s: float, burst: int) -> float:
    """How long a bucket's state is kept: after a full refill it equals a missing (full) one."""
    return burst / rate_per_s + 1.0


def open_store(url: str | None = None, **kwargs: Any) -> CacheStore:
    """``None``, ``""`` or ``memory://`` → :class:`MemoryStore`; ``redis://``, ``rediss://``,
    ``unix://`` → :class:`RedisStore` (needs the ``redis`` package)."""
    if not url or url.startswith("memory:"):
        from vanta.adapters.cache.memory import MemoryStore

        return MemoryStore(**kwargs)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from vanta.adapters.cache.redis_store import RedisStore

        return RedisStore(url, **kwargs)
    raise ValueError(f"unsupported cache URL scheme: {url.split(':', 1)[0]!r}")


def __getattr__(name: str) -> Any:
    # Lazy, so importing the port never needs redis and memory.py can import from here.
    if name == "MemoryStore":
        from vanta.adapters.cache.memory import MemoryStore

        return MemoryStore
    if name == "RedisStore":
        from vanta.adapters.cache.redis_store import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
