"""A read-through cache of each tenant's vault rows, so ``GET /v1/vaults`` needs no database
round trip while nothing has changed.

The records live in the API process (a plain dict, nothing to decode); whether they are still
current is decided per read by two version stamps, both read *before* the database is queried,
so a write that commits during a refresh is never hidden behind an older stamp:

* a **generation** in the shared cache store (Redis in production, shared by every API
  replica; the in-process store on the embedded profile). Every unit of work that writes the
  ``vaults`` table replaces it with a fresh random value after its commit (see
  :mod:`vanta.adapters.db.uow`), which invalidates every process's copy at once. One
  generation for all tenants, on purpose: vault writes are rare (creation, maintenance
  toggles) and the write path cannot always tell the tenant of a raw statement.
* an optional **database change stamp** (on SQLite, ``PRAGMA data_version``: it moves on any
  commit by any other connection or process), so a writer that cannot reach the shared store
  (``vanta vault-create`` in another process on the embedded profile) is seen immediately.

``max_age_s`` bounds how long an entry is trusted at all, for the one gap left: a writer on
PostgreSQL in a process without the cache configured. When the store cannot be reached the
database is read (availability first, never stale data).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from vanta.application.ports.cache import KeyValueStore
from vanta.application.ports.records_catalog import VaultRecord

log = logging.getLogger("vanta.cache.vaults")

GENERATION_KEY = "vanta:vaults:generation"
Rows = Sequence[VaultRecord]


@dataclass(frozen=True, slots=True)
class _Entry:
    generation: bytes
    db_version: object
    loaded_at: float
    rows: tuple[VaultRecord, ...]


class VaultCache:
    def __init__(self, store: KeyValueStore | None = None, *,
                 db_version: Callable[[], object] | None = None,
                 max_age_s: float = 5.0, generation_ttl_s: float = 7 * 24 * 3600,
                 max_tenants: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._db_version = db_version
        self._max_age_s = max_age_s
        self._generation_ttl_s = generation_ttl_s
        self._max_tenants = max_tenants
        self._clock = clock
        self._local: dict[str, _Entry] = {}
        # one database read per (tenant, stamps) at a time: after an invalidation, requests
        # already in flight share one load instead of each opening a connection
        self._loading: dict[tuple[str, bytes, object], asyncio.Future[_Entry]] = {}

    @property
    def enabled(self) -> bool:
        return self.store is not None

    async def _generation(self) -> bytes | None:
        assert self.store is not None
        gen = await self.store.get(GENERATION_KEY)
        if gen is None:  # first use, or the store lost it: any fresh value invalidates all
            fresh = secrets.token_hex(8).encode()
            if await self.store.set_if_absent(GENERATION_KEY, fresh, self._generation_ttl_s):
                return fresh
            gen = await self.store.get(GENERATION_KEY)
        return gen

    async def rows(self, tenant_id: str, load: Callable[[], Awaitable[Rows]]
                   ) -> tuple[VaultRecord, ...]:
        """The tenant's vault rows, from ``load()`` (the database) unless cached and current."""
        if self.store is None:
            return tuple(await load())
        try:
            gen = await self._generation()
        except Exception as e:
            log.warning("vault cache store unavailable, reading the database: %r", e)
            gen = None
        if gen is None:
            return tuple(await load())
        version = self._db_version() if self._db_version is not None else None
        now = self._clock()
        entry = self._local.get(tenant_id)
        if (entry is not None and entry.generation == gen and entry.db_version == version
                and now - entry.loaded_at < self._max_age_s):
            return entry.rows
        key = (tenant_id, gen, version)
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(tenant_id, gen, version, now, load))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        # shielded: a cancelled caller must not cancel the load the others are waiting for
        return (await asyncio.shield(pending)).rows

    async def _load(self, tenant_id: str, gen: bytes, version: object, now: float,
                    load: Callable[[], Awaitable[Rows]]) -> _Entry:
        entry = _Entry(gen, version, now, tuple(await load()))
        if len(self._local) >= self._max_tenants and tenant_id not in self._local:
            self._local.pop(next(iter(self._local)))  # oldest first: dicts keep order
        self._local[tenant_id] = entry
        return entry

    async def invalidate(self) -> None:
        """After a committed write to the vaults table: every process reloads on next read."""
        self._local.clear()
        if self.store is None:
            return
        try:
            await self.store.set(GENERATION_KEY, secrets.token_hex(8).encode(),
                                 self._generation_ttl_s)
        except Exception as e:
            # other replicas keep their copy for at most max_age_s; say so loudly
            log.error("could not bump the vault cache generation: %r", e)


_cache = VaultCache()


def configure(store: KeyValueStore | None, *, db_version: Callable[[], object] | None = None,
              max_age_s: float = 5.0) -> VaultCache:
    """Set once by the composition root (the API app); unconfigured, nothing is cached."""
    global _cache
    _cache = VaultCache(store, db_version=db_version, max_age_s=max_age_s)
    return _cache


def cache() -> VaultCache:
    return _cache
