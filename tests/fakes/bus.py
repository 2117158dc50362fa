"""The bus fake is the in-process bus itself.

:class:`vanta.adapters.bus.inprocess.InProcessBus` is already an honest in-memory
implementation of the :mod:`vanta.application.ports.bus` port (duplicate window, durables as
work queues, nak / ack-wait / handler-error redelivery, ``num_delivered``), and the contract
suite (``tests/contract/test_bus_contract.py``) runs it side by side with NATS JetStream. A
second, simpler fake would only be a second thing to keep honest. What tests need on top is
a record of what was published, which :class:`RecordingBus` adds without changing anything
else; the contract suite runs on this subclass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vanta.adapters.bus.inprocess import InProcessBus

__all__ = ["Published", "RecordingBus"]


@dataclass(frozen=True, slots=True)
class Published:
    subject: str
    payload: bytes
    msg_id: str
    accepted: bool  # False: dropped as a duplicate of an id in the window
    headers: dict[str, str] = field(default_factory=dict)


class RecordingBus(InProcessBus):
    """An :class:`InProcessBus` that remembers every ``publish`` call, in order.

    The defaults are short (ack wait 1 s, error nak 0.1 s) so redelivery tests stay fast.
    """

    def __init__(self, *, duplicate_window_s: float = 120.0, ack_wait_s: float = 1.0,
                 max_deliver: int = -1, error_nak_delay_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(duplicate_window_s=duplicate_window_s, ack_wait_s=ack_wait_s,
                         max_deliver=max_deliver, error_nak_delay_s=error_nak_delay_s,
                         clock=clock)
        self.published: list[Published] = []

    async def publish(self, subject: str, payload: bytes, msg_id: str,
                      headers: Mapping[str, str] | None = None) -> bool:
        accepted = await super().publish(subject, payload, msg_id, headers)
        self.published.append(Published(subject, bytes(payload), msg_id, accepted,
                                        dict(headers or {})))
        return accepted

    def payloads(self, subject: str | None = None) -> list[bytes]:
        """Accepted payloads, optionally of one subject."""
        return [p.payload for p in self.published
                if p.accepted and (subject is None or p.subject == subject)]
