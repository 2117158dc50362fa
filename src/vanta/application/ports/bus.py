"""The message bus port: at-least-once work queues that carry *work*, never *truth*.

The database stays the source of truth (the outbox and the child orders); the bus only tells
a worker which row to look at next. Two adapters implement it with the same semantics:

* ``vanta.adapters.bus.inprocess.InProcessBus`` — asyncio, one process (embedded profile, tests);
* ``vanta.adapters.bus.nats_jetstream.NatsJetStreamBus`` — NATS JetStream (production).

Semantics both keep:

* ``publish`` with a ``msg_id``: a second publish of the same id within the duplicate window
  is dropped (and reported by returning ``False``);
* ``subscribe`` on a *durable* name: subscribers sharing a durable share its messages (work
  queue); every message goes to one of them at a time;
* at-least-once: a message is delivered again after ``nak(delay_s)``, after the ack wait runs
  out without an ack (a dead worker), and when its handler raises (a nak with the
  subscription's default delay); ``in_progress()`` restarts the ack wait;
* ``num_delivered`` counts deliveries of the message, starting at 1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class BusMessage(Protocol):
    """One delivery of a message. Call exactly one of ``ack`` or ``nak`` (or neither: the ack
    wait then runs out and the message comes again)."""

    @property
    def subject(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def num_delivered(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The headers it was published with (e.g. ``traceparent``); empty when none."""
        ...

    async def ack(self) -> None: ...

    async def nak(self, delay_s: float | None = None) -> None: ...

    async def in_progress(self) -> None: ...


Handler = Callable[[BusMessage], Awaitable[None]]


@runtime_checkable
class Subscription(Protocol):
    async def drain(self) -> None:
        """Stop pulling, then wait until every handler already running has returned."""
        ...

    async def cancel(self) -> None:
        """Stop at once: running handlers are cancelled and their messages left unacked (they
        are delivered again after the ack wait), as if the worker had died."""
        ...


@runtime_checkable
class Bus(Protocol):
    async def publish(self, subject: str, payload: bytes, msg_id: str,
                      headers: Mapping[str, str] | None = None) -> bool:
        """Store a message (with ``headers``, delivered beside it); ``False`` if ``msg_id``
        was already published within the window."""
        ...

    async def subscribe(self, subject: str, durable: str, handler: Handler, *,
                        concurrency: int = 1) -> Subscription:
        """Run ``handler`` for the durable's messages, at most ``concurrency`` at a time."""
        ...

    async def close(self) -> None:
        """Cancel every subscription (no drain) and release the connection."""
        ...
