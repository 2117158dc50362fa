"""Running a long-lived command's coroutine on the fastest event loop available.

uvloop (libuv) roughly halves the per-request cost of asyncio's own loop for network work:
HTTP serving, webhook sends, database and bus round trips. ``VANTA_EVENT_LOOP=asyncio``
keeps the standard loop; on platforms without uvloop it is used anyway.
"""

from __future__ import annotations

import asyncio
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


def run(coro: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(coro)
