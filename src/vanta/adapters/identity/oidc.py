"""Keys and metadata of an external OpenID Connect provider, for :class:`TokenVerifier`.

:class:`OidcProvider` fetches ``{issuer}/.well-known/openid-configuration`` (its ``issuer``
must equal the configured one, exactly), then the ``jwks_uri``, and keeps the JWK Set as an
in-memory snapshot.

Refreshing without blocking the event loop
------------------------------------------
:meth:`TokenVerifier.verify` is synchronous and runs inside the async API, so the JWKS
callable it is given (:meth:`OidcProvider.jwks`) **never performs network I/O and never
waits**: it returns the current snapshot at once. Fetches happen only in tasks on the event
loop the provider was started on:

* :meth:`OidcProvider.start` fetches once (raising :class:`OidcError` if that fails) and then
  keeps a background task that re-fetches every ``cache_seconds`` (after a failure it retries
  with backoff from ``min_refresh_interval`` up to ``cache_seconds`` and keeps serving the last
  good key set meanwhile).
* The verifier calls ``jwks()`` again when a token names an unknown ``kid``. Such a call
  *schedules* a fetch (a task on the provider's loop; from another thread via
  ``call_soon_threadsafe``) unless one is already running or the previous fetch started less
  than ``min_refresh_interval`` seconds ago, so tokens with random ``kid`` values cannot make
  us hammer the provider. Concurrent requests share one in-flight fetch.
* The token that caused the miss is re-checked against the fresh set by
  :meth:`TokenVerifier.averify`, which awaits :meth:`OidcProvider.refresh_if_allowed` (joins
  the scheduled fetch) and verifies again. The synchronous ``verify`` cannot wait: it refuses
  that first token with ``unknown_kid`` while the fetch runs, and the next request succeeds.
  :meth:`OidcProvider.token_verifier` builds a verifier with both hooks wired.

Only ``http(s)`` URLs are used; plain ``http`` only for loopback hosts unless
``allow_insecure_http`` is set. Redirects are not followed and responses are size-capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from vanta.adapters.identity.oidc_http import OidcError, check_url, get_json, read_json
from vanta.adapters.identity.verifier import TokenVerifier

__all__ = ["ASYMMETRIC_ALGORITHMS", "OidcError", "OidcProvider", "check_url", "read_json"]

log = logging.getLogger(__name__)

#: Signature algorithms a provider may advertise that we accept (asymmetric only).
ASYMMETRIC_ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)
DISCOVERY_PATH = "/.well-known/openid-configuration"


class OidcProvider:
    """Discovery document and JWK Set of one OpenID Connect issuer, cached and refreshed.

    ``http`` is used as given (and not closed); without it the provider owns a client. Each
    request is bounded by ``timeout`` seconds as a whole, one refresh (discovery + JWKS) by
    twice that. Use it on one event loop (the one :meth:`start` ran on).
    """

    def __init__(
        self,
        issuer_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        cache_seconds: int = 300,
        min_refresh_interval: float = 10.0,
        timeout: float = 5.0,
        allow_insecure_http: bool = False,
    ) -> None:
        try:
            check_url(issuer_url, "issuer_url", allow_http=allow_insecure_http)
        except OidcError as e:
            raise ValueError(str(e)) from None
        parts = urlsplit(issuer_url)
        if parts.query or parts.fragment:
            raise ValueError("issuer_url must not have a query or fragment")
        if cache_seconds <= 0:
            raise ValueError("cache_seconds must be > 0")
        if min_refresh_interval < 0:
            raise ValueError("min_refresh_interval must be >= 0")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self._issuer = issuer_url
        self._discovery_url = issuer_url.rstrip("/") + DISCOVERY_PATH
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(
            timeout=timeout, follow_redirects=False)
        self._cache_seconds = cache_seconds
        self._min_interval = float(min_refresh_interval)
        self._timeout = float(timeout)
        self._allow_http = allow_insecure_http

        # Snapshots, replaced whole (readers never see a half-updated state).
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: dict[str, Any] = {"keys": []}
        self._jwks_at: float | None = None

        self._lock = threading.Lock()  # guards _last_attempt (jwks() may run in any thread)
        self._last_attempt = float("-inf")
        # Only touched on the provider's event loop:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._background: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._issuer!r})"

    # -- public API ------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The configured issuer; tokens must carry exactly this ``iss``."""
        return self._issuer

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client used for the provider (also by :mod:`.token_exchange`)."""
        return self._http

    @property
    def timeout(self) -> float:
        """Upper bound in seconds for one request to the provider."""
        return self._timeout

    @property
    def metadata(self) -> dict[str, Any] | None:
        """A copy of the last accepted discovery document, or None before the first fetch."""
        meta = self._metadata
        return None if meta is None else copy.deepcopy(meta)

    @property
    def jwks_age(self) -> float | None:
        """Seconds since the key set was last fetched successfully (None: never)."""
        at = self._jwks_at
        return None if at is None else time.monotonic() - at

    def jwks(self) -> dict[str, Any]:
        """The cached JWK Set, at once: never does network I/O, never blocks.

        Meant as ``TokenVerifier(jwks=provider.jwks, ...)``; the verifier calls it on first
        use and again for an unknown ``kid``, so each call also schedules a background fetch
        on the provider's loop unless one is running or the last one started less than
        ``min_refresh_interval`` seconds ago.
        """
        snapshot = self._jwks
        if not self._closed and self._reserve_attempt():
            self._schedule_fetch()
        return {"keys": [dict(k) for k in snapshot.get("keys", []) if isinstance(k, dict)]}

    async def refresh(self) -> dict[str, Any]:
        """Fetch discovery (when older than ``cache_seconds``) and the JWKS now.

        Not rate-limited; joins a fetch already in flight. Returns the new JWK Set; raises
        :class:`OidcError` (the previous snapshot stays in use).
        """
        if self._closed:
            raise OidcError("provider is closed")
        self._bind_loop()
        task = self._inflight
        if task is None or task.done():
            with self._lock:
                self._last_attempt = time.monotonic()
            task = self._spawn_fetch()
        await asyncio.shield(task)
        return self.jwks_snapshot()

    async def refresh_if_allowed(self) -> bool:
        """Wait for the in-flight fetch, or start one if the rate limit allows.

        Returns True if a fetch completed successfully while waiting, False if none was
        allowed or it failed (errors are logged, not raised). Used as the verifier's
        ``on_unknown_kid`` hook.
        """
        if self._closed:
            return False
        self._bind_loop()
        task = self._inflight
        if task is None or task.done():
            if not self._reserve_attempt():
                return False
            task = self._spawn_fetch()
        try:
            await asyncio.shield(task)
        except Exception:  # logged by _fetch_done
            return False
        return True

    async def start(self) -> None:
        """Fetch discovery and keys now (raising :class:`OidcError` on failure), then keep
        refreshing them every ``cache_seconds`` in a background task."""
        if self._closed:
            raise OidcError("provider is closed")
        await self.refresh()
        if self._background is None or self._background.done():
            self._background = asyncio.get_running_loop().create_task(
                self._refresh_forever(), name=f"oidc-refresh {self._issuer}")

    async def aclose(self) -> None:
        """Stop background work and close the HTTP client if the provider created it."""
        self._closed = True
        tasks = [t for t in (self._background, self._inflight) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._background = self._inflight = None
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> OidcProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def jwks_snapshot(self) -> dict[str, Any]:
        """The cached JWK Set (copy) without scheduling anything."""
        return {"keys": [dict(k) for k in self._jwks.get("keys", []) if isinstance(k, dict)]}

    async def discovery(self) -> dict[str, Any]:
        """The discovery document (a copy), fetched first if missing or older than
        ``cache_seconds``."""
        meta = self._metadata
        if meta is None or time.monotonic() - self._metadata_at >= self._cache_seconds:
            meta = await self._fetch_metadata()
        return copy.deepcopy(meta)

    async def endpoint(self, name: str) -> str:
        """A URL-valued discovery member (e.g. ``token_endpoint``), checked like the issuer."""
        meta = await self.discovery()
        return check_url(meta.get(name), name, allow_http=self._allow_http)

    def advertised_algorithms(self) -> tuple[str, ...]:
        """Asymmetric algorithms from ``id_token_signing_alg_values_supported``.

        ``none`` and HMAC are never returned; an absent member means ``("RS256",)`` (which
        OIDC Discovery makes mandatory). Raises :class:`OidcError` before discovery or when
        nothing acceptable is advertised.
        """
        meta = self._metadata
        if meta is None:
            raise OidcError("discovery document not fetched yet; await start() or refresh()")
        values = meta.get("id_token_signing_alg_values_supported", ["RS256"])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise OidcError("id_token_signing_alg_values_supported must be a list of strings")
        algs = tuple(dict.fromkeys(v for v in values if v in ASYMMETRIC_ALGORITHMS))
        if not algs:
            raise OidcError(f"provider advertises no acceptable asymmetric algorithm: {values}")
        return algs

    def token_verifier(
        self,
        audience: str,
        *,
        leeway: int = 30,
        algorithms: Sequence[str] | None = None,
    ) -> TokenVerifier:
        """A :class:`TokenVerifier` for this issuer: ``algorithms`` (default: the advertised
        asymmetric ones; none/HS* are refused either way), the key set re-read every
        ``cache_seconds`` (retired keys drop out) and ``averify`` re-checking after a refresh
        on an unknown ``kid``."""
        return TokenVerifier(
            self.jwks,
            issuer=self._issuer,
            audience=audience,
            leeway=leeway,
            algorithms=tuple(algorithms) if algorithms is not None
            else self.advertised_algorithms(),
            jwks_max_age=self._cache_seconds,
            on_unknown_kid=self.refresh_if_allowed,
        )

    # -- scheduling ------------------------------------------------------------------------

    def _reserve_attempt(self) -> bool:
        """Rate limiter: True (and the slot taken) if no fetch started recently."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_attempt < self._min_interval:
                return False
            self._last_attempt = now
            return True

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        old = self._loop
        if old is not loop:
            if old is not None and not old.is_closed() and old.is_running():
                raise OidcError("OidcProvider is bound to an event loop in another thread")
            self._loop, self._inflight = loop, None

    def _schedule_fetch(self) -> None:
        """Start a fetch on the provider's loop without waiting for it (any thread)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop
        if (loop is not None and loop is not running and not loop.is_closed()
                and loop.is_running()):
            loop.call_soon_threadsafe(self._spawn_fetch)  # the loop lives in another thread
        elif running is not None:
            if loop is not running:  # first use, or the old loop is gone
                self._loop, self._inflight = running, None
            self._spawn_fetch()
        else:
            log.warning("OIDC %s: cannot refresh keys outside an event loop; "
                        "await OidcProvider.start() first", self._issuer)

    def _spawn_fetch(self) -> asyncio.Task[None]:
        """The in-flight fetch, created if none runs (on the provider's loop only)."""
        task = self._inflight
        if task is None or task.done():
            assert self._loop is not None
            task = self._loop.create_task(self._fetch(), name=f"oidc-jwks {self._issuer}")
            task.add_done_callback(self._fetch_done)
            self._inflight = task
        return task

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        err = task.exception()  # also marks it retrieved
        if err is not None:
            log.warning("OIDC %s: key refresh failed: %s", self._issuer, err)

    async def _refresh_forever(self) -> None:
        failures = 0
        while True:
            if failures:
                delay = min(float(self._cache_seconds),
                            max(self._min_interval, 1.0) * 2 ** min(failures - 1, 10))
            else:
                age = self.jwks_age
                delay = self._cache_seconds - (age if age is not None else self._cache_seconds)
            await asyncio.sleep(max(delay, 0.0))
            try:
                await self.refresh()
                failures = 0
            except Exception:
                failures += 1  # logged by _fetch_done; the last good key set stays in use

    # -- fetching --------------------------------------------------------------------------

    async def _fetch(self) -> None:
        try:
            async with asyncio.timeout(self._timeout * 2):
                meta = self._metadata
                if meta is None or time.monotonic() - self._metadata_at >= self._cache_seconds:
                    meta = await self._fetch_metadata()
                jwks_uri = check_url(meta.get("jwks_uri"), "jwks_uri",
                                     allow_http=self._allow_http)
                jwks = await get_json(self._http, jwks_uri, "JWKS", timeout=self._timeout)
        except TimeoutError:
            raise OidcError(f"{self._issuer}: refresh timed out") from None
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise OidcError(f"{jwks_uri}: not a JWK Set (no 'keys' list)")
        self._jwks = {"keys": [k for k in keys if isinstance(k, dict)]}
        self._jwks_at = time.monotonic()

    async def _fetch_metadata(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                meta = await get_json(self._http, self._discovery_url, "discovery document",
                                      timeout=self._timeout)
        except TimeoutError:
            raise OidcError(f"{self._discovery_url}: timed out") from None
        if not isinstance(meta, dict):
            raise OidcError(f"{self._discovery_url}: discovery document is not an object")
        if meta.get("issuer") != self._issuer:
            raise OidcError(f"{self._discovery_url}: issuer {meta.get('issuer')!r} does not "
                            f"match the configured {self._issuer!r}")
        check_url(meta.get("jwks_uri"), "jwks_uri", allow_http=self._allow_http)
        self._metadata = meta
        self._metadata_at = time.monotonic()
        return meta
