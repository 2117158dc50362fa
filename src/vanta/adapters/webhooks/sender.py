"""HTTP delivery of a signed body with aiohttp: vetted targets, bounded time, bounded reads.

* The target is vetted once (``ssrf.resolve_and_vet``) and the connection goes to exactly
  the vetted addresses: the session's resolver (``VettedResolver``) answers only from the
  target vetted for the current ``send`` call and the connector's DNS cache is off, so there
  is no second lookup a rebinding DNS server could answer differently. The URL's hostname
  is kept for the Host header, TLS SNI and certificate verification.
* Redirects are never followed; a 3xx comes back as its status.
* The answer is read up to ``max_response_bytes``; beyond that the connection is closed.
  Only ``excerpt_bytes`` of it are kept. Bodies are not decompressed.
* One ``send`` never takes longer than ``timeout_seconds`` in total (waiting for an endpoint
  slot, DNS, connect, request and reading included); connecting is bounded separately.
* At most ``per_endpoint_limit`` requests run against one scheme+host+port at a time, so a
  slow follower cannot hold every connection while deliveries to others wait.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from vanta.adapters.webhooks.ssrf import (
    TargetPolicy,
    TargetRefused,
    VettedTarget,
    parse_target,
    resolve_and_vet,
    resolve_unvetted,
)
from vanta.application.ports.delivery import SendResult

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
_READ_CHUNK = 16 * 1024

__all__ = ["AiohttpWebhookSender", "SendResult", "VettedResolver"]

_current_target: contextvars.ContextVar[VettedTarget | None] = contextvars.ContextVar(
    "vanta_webhook_vetted_target", default=None)


class VettedResolver(AbstractResolver):
    """Answers only with the addresses vetted for the current ``send`` (a context variable).

    It never performs a lookup itself, and fails closed when asked about anything else.
    """

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        target = _current_target.get()
        if target is None or _norm(host) != _norm(target.host):
            raise OSError(f"no vetted address for host {host!r}")
        results: list[ResolveResult] = []
        for addr in target.addresses:
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            if family not in (socket.AF_UNSPEC, fam):
                continue
            results.append(ResolveResult(
                hostname=host, host=addr, port=port, family=fam, proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV))
        if not results:
            raise OSError(f"no vetted address of family {family!r} for host {host!r}")
        return results

    async def close(self) -> None:
        return None


class _EndpointSlots:
    """A semaphore per endpoint, created on first use and dropped when nobody holds it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[tuple[str, str, int], tuple[asyncio.Semaphore, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str, int]) -> AsyncIterator[None]:
        entry = self._slots.get(key)
        if entry is None:
            entry = self._slots[key] = (asyncio.Semaphore(self._limit), [0])
        sem, users = entry
        users[0] += 1
        try:
            async with sem:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0 and self._slots.get(key) is entry:
                del self._slots[key]

    def __len__(self) -> int:
        return len(self._slots)


class AiohttpWebhookSender:
    def __init__(self, *, timeout_seconds: float, excerpt_bytes: int = 1024,
                 connections: int = 100, policy: TargetPolicy | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 per_endpoint_limit: int = 4,
                 connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        """``policy=None`` allows every address (local demo); production passes a policy.

        ``ssl_context`` replaces the default verifying context (e.g. to trust a private CA);
        certificates are always checked against the URL's hostname.
        """
        if timeout_seconds <= 0 or connect_timeout_seconds <= 0:
            raise ValueError("timeouts must be positive")
        if per_endpoint_limit < 1:
            raise ValueError("per_endpoint_limit must be at least 1")
        self._total = float(timeout_seconds)
        connect = min(float(connect_timeout_seconds), self._total)
        self._timeout = aiohttp.ClientTimeout(total=self._total, connect=connect,
                                              sock_connect=connect, sock_read=self._total)
        self._excerpt = max(0, excerpt_bytes)
        self._max_response = max(max_response_bytes, self._excerpt)
        self._connections = connections
        self._policy = policy
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._slots = _EndpointSlots(per_endpoint_limit)
        self._session: aiohttp.ClientSession | None = None

    @property
    def policy(self) -> TargetPolicy | None:
        return self._policy

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(
                    limit=self._connections, resolver=VettedResolver(), ssl=self._ssl,
                    use_dns_cache=False),  # a cache would be a second, unvetted answer
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # no state carried between followers
                trust_env=False,  # never route through an environment proxy
            )
        return self._session

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        start = time.perf_counter()
        try:
            scheme, host, port = parse_target(url)
        except TargetRefused as e:
            return _refused(start, e)
        phase = "waiting for a free slot for this endpoint"
        try:
            async with asyncio.timeout(self._total):
                async with self._slots.hold((scheme, _norm(host), port)):
                    phase = "resolving"
                    if self._policy is None:
                        target = await resolve_unvetted(url)
                    else:
                        target = await resolve_and_vet(url, self._policy)
                    phase = "request"
                    return await self._post(target, url, headers, body, start)
        except TargetRefused as e:
            return _refused(start, e)
        except aiohttp.InvalidURL:
            # e.g. a legacy numeric host (2130706433) that an allowlist let through: aiohttp
            # will never send to it, so retrying is pointless
            return _refused(start, TargetRefused("invalid_url"))
        except aiohttp.ConnectionTimeoutError:
            return SendResult(None, _ms(start), None, "timeout: connect")
        except TimeoutError:
            error = "timeout" if phase == "request" else f"timeout: {phase}"
            return SendResult(None, _ms(start), None, error)
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as e:
            return SendResult(None, _ms(start), None, f"{type(e).__name__}: {e}"[:500])

    async def _post(self, target: VettedTarget, url: str, headers: dict[str, str],
                    body: bytes, start: float) -> SendResult:
        session = await self._get_session()
        token = _current_target.set(target)
        try:
            async with session.post(url, data=body, headers=headers,
                                    allow_redirects=False) as resp:
                excerpt, complete = await self._read_capped(resp)
                if not complete:
                    resp.close()  # drop the connection rather than drain an oversized body
                return SendResult(
                    status=resp.status, latency_ms=_ms(start),
                    response_excerpt=excerpt.decode("utf-8", "replace"), error=None,
                    retry_after=resp.headers.get("Retry-After"))
        finally:
            _current_target.reset(token)

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """Up to ``excerpt_bytes`` of the body, and whether the body ended within the cap."""
        declared = resp.content_length
        budget = self._max_response
        if declared is not None and declared > budget:
            budget = self._excerpt  # will be cut anyway: read only what we keep
        kept = bytearray()
        total = 0
        while total <= budget:
            chunk = await resp.content.read(min(_READ_CHUNK, budget + 1 - total))
            if not chunk:
                return bytes(kept), declared is None or declared <= self._max_response
            total += len(chunk)
            if len(kept) < self._excerpt:
                kept += chunk[: self._excerpt - len(kept)]
        return bytes(kept), False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _refused(start: float, e: TargetRefused) -> SendResult:
    if e.temporary:  # DNS trouble that may pass: worth another try, not a verdict
        return SendResult(None, _ms(start), None, f"unresolvable (temporary): {e.detail}"[:500])
    return SendResult(None, _ms(start), None, f"refused: {e.reason}", refused=True)


def _norm(host: str) -> str:
    return host.rstrip(".").lower()


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
