"""Redis :class:`~vanta.adapters.cache.CacheStore` (``redis.asyncio``, redis-py >= 5).

The token bucket is one Lua script: read, refill, take and write happen atomically on the
server, timed by the server's own ``TIME``, so any number of API processes (with clocks that
disagree) share one limit exactly. The bucket is a hash ``{tokens, ts}`` that expires once it
would have refilled completely (a missing bucket is a full one).
"""

from __future__ import annotations

import math
from typing import Any

import redis.asyncio as aioredis

from vanta.adapters.cache import (
    EPSILON,
    BucketResult,
    bucket_ttl_s,
    check_bucket_args,
    check_ttl,
)

__all__ = ["EXTEND_SCRIPT", "TAKE_SCRIPT", "RedisStore"]

# A copy of vanta.adapters.cache.bucket_step. Numbers travel as '%.17g' strings: Redis would
# truncate a Lua number reply to an integer and format arguments with only 14 digits.
TAKE_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local ttl_ms = tonumber(ARGV[4])
local eps = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
local retry_after = 0
if tokens + eps >= cost then
  tokens = math.max(0, tokens - cost)
  allowed = 1
else
  retry_after = (cost - tokens) / rate
end
local reset_after = (burst - tokens) / rate
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return {allowed, string.format('%.17g', tokens), string.format('%.17g', reset_after),
        string.format('%.17g', retry_after)}
"""


# Compare and extend in one step: a heartbeat must not revive a key that changed meanwhile.
EXTEND_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def _ms(ttl_s: float) -> int:
    return max(1, math.ceil(ttl_s * 1000))


class RedisStore:
    """``RedisStore("redis://host:6379/0")``. ``prefix`` is put in front of every key (handy
    to share one database between deployments or test runs); ``client`` replaces the
    connection built from ``url``; other keyword arguments go to ``redis.asyncio.from_url``."""

    def __init__(self, url: str, *, prefix: str = "", client: aioredis.Redis | None = None,
                 **kwargs: Any) -> None:
        self.url = url
        self.prefix = prefix
        self._redis: aioredis.Redis = (client if client is not None
                                       else aioredis.from_url(url, **kwargs))
        self._take = self._redis.register_script(TAKE_SCRIPT)
        self._extend = self._redis.register_script(EXTEND_SCRIPT)

    @property
    def client(self) -> aioredis.Redis:
        return self._redis

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self.prefix + key)
        if value is None or isinstance(value, bytes):
            return value
        return str(value).encode()  # a client built with decode_responses=True

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        check_ttl(ttl_s)
        await self._redis.set(self.prefix + key, value, px=_ms(ttl_s))

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        check_ttl(ttl_s)
        return bool(await self._redis.set(self.prefix + key, value, px=_ms(ttl_s), nx=True))

    async def extend_if_equal(self, key: str, value: bytes, ttl_s: float) -> bool:
        check_ttl(ttl_s)
        return int(await self._extend(keys=[self.prefix + key],
                                      args=[value, str(_ms(ttl_s))])) == 1

    async def delete(self, key: str) -> None:
        await self._redis.delete(self.prefix + key)

    async def take(self, bucket_key: str, rate_per_s: float, burst: int,
                   cost: int = 1) -> BucketResult:
        check_bucket_args(rate_per_s, burst, cost)
        args = [repr(float(rate_per_s)), str(int(burst)), str(int(cost)),
                str(_ms(bucket_ttl_s(rate_per_s, burst))), repr(EPSILON)]
        allowed, tokens, reset_after, retry_after = await self._take(
            keys=[self.prefix + bucket_key], args=args)
        return BucketResult(allowed=int(allowed) == 1,
                            remaining=math.floor(float(tokens) + EPSILON),
                            reset_after_s=float(reset_after),
                            retry_after_s=float(retry_after))

    async def close(self) -> None:
        await self._redis.aclose()
