"""Running a long-lived command's coroutine on the fastest event loop available.

uvloop (libuv) roughly halves the per-request cost of asyncio's own loop for network work:
HTTP serving, webhook sends, database and bus round trips. ``VANTA_EVENT_LOOP=asyncio``
keeps the standard loop; on platforms without uvloop it is used anyway.

Before the loop starts, the objects the process holds by then (modules, classes, the
libraries' tables: hundreds of thousands of them) are moved out of the cyclic garbage
collector's view with ``gc.freeze()``, and young collections run every ``gc_young_threshold``
allocations instead of every 700. A profile of the dispatch worker showed about 16 % of its CPU
in the collector, mostly re-walking those objects that never become garbage.
``VANTA_GC_YOUNG_THRESHOLD=0`` keeps Python's defaults.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop constructor for ``choice`` ("auto", "uvloop" or "asyncio"); None = stdlib."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise RuntimeError("VANTA_EVENT_LOOP=uvloop but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def tune_gc(young_threshold: int) -> None:
    """Freeze what exists now and collect the young generation less often (0: no change)."""
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


def run(coro: Coroutine[Any, Any, T], choice: str = "auto", *,
        gc_young_threshold: int = 0) -> T:
    tune_gc(gc_young_threshold)
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(coro)
