"""Token-bucket rate limits per client IP and per user, as pure ASGI middleware.

Every request (except ``/healthz``, ``/readyz``, ``/metrics``) takes one token from its IP's
bucket and, when the principal resolver names a caller, one from that user's bucket. The
default policy is 60 requests a minute (1 token/s) with a burst of 20 (the bucket's size).
Over either limit: ``429 rate_limited`` (problem+json) with ``Retry-After`` in whole seconds,
rounded up. Every answer, allowed or not, carries the IETF draft fields for the tighter bucket
(fewer tokens left)::

    RateLimit-Limit: 60            # the policy's quota per window
    RateLimit-Remaining: 19        # whole tokens left in the bucket
    RateLimit-Reset: 1             # seconds until the bucket is full again (rounded up)
    RateLimit-Policy: 60;w=60;burst=20

The IP is the ASGI ``client``, as :mod:`vanta.entrypoints.api.client_address` decided it (the
TCP peer, or behind a trusted proxy the address it forwarded); this module reads no header.
IPv6 clients are limited per /64 (``ipv6_prefix``), since one host usually holds a whole /64.
The IP bucket is taken first, so a client already over its IP limit costs no
token verification. When the store cannot be reached the request is let through (logged):
availability wins over limits.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vanta.application.ports.cache import BucketResult, CacheStore
from vanta.entrypoints.api.idempotency import PrincipalResolver, path_matches, resolve_principal
from vanta.entrypoints.api.problems import problem

__all__ = ["DEFAULT_EXEMPT", "RateLimitMiddleware", "RateLimitPolicy", "client_ip"]

log = logging.getLogger("vanta.api.ratelimit")

DEFAULT_EXEMPT: tuple[str, ...] = ("/healthz", "/readyz", "/metrics")


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """``limit`` requests per ``window_s`` seconds, sustained; up to ``burst`` at once."""

    limit: int = 60
    window_s: int = 60
    burst: int = 20

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s < 1 or self.burst < 1:
            raise ValueError("limit, window_s and burst must all be at least 1")

    @property
    def rate_per_s(self) -> float:
        return self.limit / self.window_s

    @property
    def header(self) -> str:
        return f"{self.limit};w={self.window_s};burst={self.burst}"


def _seconds(x: float) -> int:
    """Whole seconds, rounded up (float noise such as 1.0000000001 stays 1)."""
    return max(0, math.ceil(x - 1e-6))


@functools.lru_cache(maxsize=4096)  # parsing an address costs more than the bucket take
def _normalise(ip: str, ipv6_prefix: int) -> str | None:
    try:
        addr = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, ipv6_prefix), strict=False))
    return str(addr)


def client_ip(scope: Scope, *, ipv6_prefix: int = 64) -> str:
    client = scope.get("client")
    if not client:
        return "unknown"
    return _normalise(str(client[0]), ipv6_prefix) or str(client[0])


class RateLimitMiddleware:
    """``app.add_middleware(RateLimitMiddleware, store=..., resolve_principal=...)``; add it
    last (outermost) so that it also counts idempotent replays."""

    def __init__(self, app: ASGIApp, *, store: CacheStore,
                 resolve_principal: PrincipalResolver,
                 policy: RateLimitPolicy | None = None,
                 user_policy: RateLimitPolicy | None = None,
                 exempt: Iterable[str] = DEFAULT_EXEMPT,
                 ipv6_prefix: int = 64,
                 key_prefix: str = "vanta:rl:") -> None:
        self.app = app
        self.store = store
        self.resolver = resolve_principal
        self.ip_policy = policy or RateLimitPolicy()
        self.user_policy = user_policy or self.ip_policy
        self.exempt = tuple(exempt)
        self.ipv6_prefix = ipv6_prefix
        self.key_prefix = key_prefix
        # per request, only Remaining and Reset change: the other two headers are made once
        self._fixed: dict[RateLimitPolicy, tuple[tuple[bytes, bytes], tuple[bytes, bytes]]] = {}

    async def _take(self, key: str, policy: RateLimitPolicy) -> BucketResult | None:
        try:
            return await self.store.take(self.key_prefix + key, policy.rate_per_s, policy.burst)
        except Exception as e:
            log.warning("rate limit store unavailable, letting the request through: %r", e)
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or path_matches(scope["path"], self.exempt):
            await self.app(scope, receive, send)
            return
        ip = client_ip(scope, ipv6_prefix=self.ipv6_prefix)
        checks: list[tuple[BucketResult, RateLimitPolicy]] = []
        ip_result = await self._take(f"ip:{ip}", self.ip_policy)
        if ip_result is not None:
            checks.append((ip_result, self.ip_policy))
        if ip_result is None or ip_result.allowed:
            principal = await resolve_principal(scope, self.resolver)
            if principal is not None:
                user_result = await self._take(f"user:{principal}", self.user_policy)
                if user_result is not None:
                    checks.append((user_result, self.user_policy))
        if not checks:
            await self.app(scope, receive, send)
            return
        denied = [c for c in checks if not c[0].allowed]
        result, policy = (checks[0] if len(checks) == 1 else
                          min(denied or checks,
                              key=lambda c: (c[0].remaining, -c[0].reset_after_s)))
        if denied:
            headers = {
                "RateLimit-Limit": str(policy.limit),
                "RateLimit-Remaining": str(result.remaining),
                "RateLimit-Reset": str(_seconds(result.reset_after_s)),
                "RateLimit-Policy": policy.header,
            }
            retry = max(1, _seconds(max(c[0].retry_after_s for c in denied)))
            await problem(429, "rate_limited",
                          f"too many requests; retry in {retry} s",
                          headers={**headers, "Retry-After": str(retry)})(scope, receive, send)
            return
        fixed = self._fixed.get(policy)
        if fixed is None:
            fixed = self._fixed[policy] = ((b"ratelimit-limit", str(policy.limit).encode()),
                                           (b"ratelimit-policy", policy.header.encode()))
        limit, policy_header = fixed
        raw = (limit, (b"ratelimit-remaining", str(result.remaining).encode()),
               (b"ratelimit-reset", str(_seconds(result.reset_after_s)).encode()), policy_header)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *raw]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
