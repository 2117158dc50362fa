"""Helpers every bus adapter shares; the bus port itself is :mod:`vanta.application.ports.bus`
(re-exported here)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from vanta.application.ports.bus import Bus, BusMessage, Handler, Subscription

__all__ = ["Bus", "BusMessage", "Handler", "Subscription", "run_handler"]


async def run_handler(handler: Callable[[Any], Awaitable[None]], msg: Any,
                      nak_delay_s: float) -> None:
    """One message through its handler, for every bus: an exception naks it (it comes back
    after ``nak_delay_s``); a cancelled worker leaves it unacked until its ack wait runs out."""
    try:
        await handler(msg)
    except asyncio.CancelledError:
        raise
    except Exception:
        logging.getLogger("vanta.bus").exception("bus handler failed",
                                                 extra={"subject": msg.subject})
        if not msg.settled:
            await msg.nak(nak_delay_s)
