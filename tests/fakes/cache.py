"""The cache fake is the memory store itself.

:class:`vanta.adapters.cache.memory.MemoryStore` is an honest in-process implementation of
the :mod:`vanta.application.ports.cache` port (TTLs, atomic ``set_if_absent``, the same token
bucket arithmetic as the Redis script), and it already takes a clock, so tests move time by
hand instead of sleeping. A separate fake would add nothing; the contract suite
(``tests/contract/test_cache_contract.py``) runs the memory store against Redis.
"""

from __future__ import annotations

from tests.fakes.clock import FakeClock
from vanta.adapters.cache.memory import MemoryStore

__all__ = ["MemoryStore", "memory_store"]


def memory_store(clock: FakeClock | None = None) -> MemoryStore:
    """A memory store, on ``clock``'s monotonic seconds when given (expiry and refill then
    move only when the test advances the clock)."""
    return MemoryStore() if clock is None else MemoryStore(clock=clock.monotonic)
