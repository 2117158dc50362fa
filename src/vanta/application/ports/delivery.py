"""Delivering a signed webhook: the sender port, what one attempt returns, and the outbox
lease a dispatch message names."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from vanta.application.ports.records_orders import AttemptRecord


@dataclass(frozen=True, slots=True)
class SendResult:
    """One attempt's answer, from a webhook POST or a broker submit."""

    status: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None
    retry_after: str | None = None
    # True when the target was refused before any connection (SSRF policy, bad URL, a name
    # that does not exist): sending again will not help, treat as terminal.
    refused: bool = False
    broker_ref: str | None = None  # a bridged attempt: the venue's order id


class WebhookSender(Protocol):
    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult: ...


class OutboxLease(NamedTuple):
    """The lease a dispatch message was published for."""

    row_id: int
    number: int | None = None  # the row's ``attempts`` when leased
    until: datetime | None = None  # its ``locked_until`` then: names that one lease exactly
    # The expiry the relay claimed it with, before handing it over to the bus for ``until``
    # (the message can reach a consumer before that hand-over is written): either will do.
    claimed_until: datetime | None = None


class TargetNotDeliverable(Exception):
    """A URL we will never connect to; ``reason`` is stable (``private_address``,
    ``metadata_address``, ``unresolvable``, ``scheme``, ``credentials``, ``invalid_url``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TargetVetter(Protocol):
    """Judges a URL by the same policy the sender applies before connecting, so a target
    that could never be reached is refused when it is given, not at every send."""

    async def vet(self, url: str) -> None:
        """Return when ``url`` may be contacted; raise ``TargetNotDeliverable`` otherwise.
        Must not block the event loop (name resolution included)."""
        ...


class AttemptWindow(Protocol):
    """Part of the unit of work's attempt repository (``ports.uow.AttemptRepo``)."""

    async def started_since(self, tenant_id: str, since: datetime, limit: int
                            ) -> builtins.list[AttemptRecord]:
        """The tenant's delivery attempts started at or after ``since``, in (started_at,
        id) order, at most ``limit`` (the operations charts)."""
        ...


class ChildMove(NamedTuple):
    """One answered child's new state; a None ``broker_order_ref`` or ``dead_lettered_at``
    leaves that column as it is."""

    fo_id: str
    state: str
    last_error: str | None
    broker_order_ref: str | None = None
    dead_lettered_at: datetime | None = None


class ChildMoves(Protocol):
    """Part of the unit of work's child order repository (``ports.uow.ChildOrderRepo``)."""

    async def move_many(self, moves: Sequence[ChildMove], *, expect_state: str,
                        updated_at: datetime) -> set[str]:
        """Compare-and-set a batch of children, each to its own new values: only a child
        still in ``expect_state`` moves; the ids that moved (one that another worker moved
        meanwhile is left as it is and absent)."""
        ...
