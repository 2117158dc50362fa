"""A small read-through cache in front of a secret store, for hot paths that sign.

The dispatcher signs every delivery with the follower's key; reading and decrypting the same
file for every child of a fan-out is wasted work. Webhook keys are written once under a
versioned name (a rotation makes a new name), so a short time-to-live only bounds how long a
deleted or replaced value may still be used; the entry count is bounded too. Values stay in
this process's memory, as they would while signing anyway; nothing is logged.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from vanta.application.ports.secrets import SecretReader

__all__ = ["CachedSecrets", "SecretReader"]


class CachedSecrets:
    def __init__(self, store: SecretReader, *, ttl_seconds: float = 60.0,
                 max_entries: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, ref: str) -> bytes:
        now = self._clock()
        hit = self._entries.get(ref)
        if hit is not None and hit[0] > now:
            self._entries.move_to_end(ref)
            return hit[1]
        value = self._store.get(ref)  # errors (missing, unreadable) are never cached
        self._entries[ref] = (now + self._ttl, value)
        self._entries.move_to_end(ref)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
