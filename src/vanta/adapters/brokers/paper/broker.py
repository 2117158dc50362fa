"""The paper gateway: :class:`PaperBroker` over a :class:`~.market.PaperMarket`.

The package documentation (:mod:`vanta.adapters.brokers.paper`) describes the simulation.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from vanta.adapters.brokers.paper.market import PaperMarket
from vanta.adapters.brokers.paper.orders import ack_of, check_same, report_of
from vanta.adapters.brokers.paper.settings import PaperSettings
from vanta.application.clock import Clock, utcnow
from vanta.application.ports.brokers import (
    BrokerAck,
    BrokerOrder,
    BrokerUnavailable,
    OrderReport,
    OrderStatus,
)


class PaperBroker(PaperMarket):
    """A :class:`~vanta.application.ports.brokers.BrokerGateway` over a simulated market."""

    def __init__(self, settings: PaperSettings, *, clock: Clock = utcnow) -> None:
        super().__init__(settings, clock=clock)
        self._outage: str | None = None
        self._fail_next = 0
        self._lose_next_ack = 0
        self.submit_attempts = 0

    # ----------------------------------------------------------------- gateway

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        await self._enter()
        self.submit_attempts += 1
        existing = self._orders.get(order.client_order_id)
        if existing is not None:
            check_same(existing.request, order)
            return ack_of(existing)
        placed = self._place(order)
        if self._lose_next_ack > 0:
            self._lose_next_ack -= 1
            raise BrokerUnavailable("paper: connection reset before the answer arrived",
                                    code="ack_lost")
        return ack_of(placed)

    async def cancel(self, client_order_id: str) -> None:
        await self._enter()
        placed = self._find(client_order_id)
        if placed.open:
            placed.status = OrderStatus.CANCELED
            placed.reason = "canceled by request"

    async def order_report(self, client_order_id: str) -> OrderReport:
        await self._enter()
        return report_of(self._find(client_order_id))

    async def positions(self) -> dict[str, Decimal]:
        await self._enter()
        return {s: q for s, q in sorted(self._positions.items()) if q != 0}

    async def account_nav(self) -> Decimal:
        await self._enter()
        return self._nav()

    async def balances(self) -> dict[str, Decimal]:
        await self._enter()
        return {"USD": self.cash}

    async def close(self) -> None:
        return None

    # ----------------------------------------------------------- test controls

    def set_outage(self, reason: str | None = "503 Service Unavailable") -> None:
        """While set, every call raises :class:`BrokerUnavailable`; ``None`` ends it."""
        self._outage = reason

    def fail_next(self, calls: int = 1) -> None:
        """The next ``calls`` calls raise :class:`BrokerUnavailable` without side effects."""
        self._fail_next += calls

    def lose_next_ack(self, submits: int = 1) -> None:
        """The next ``submits`` new orders are placed, but the caller gets
        :class:`BrokerUnavailable` instead of the ack (a timeout after the venue acted)."""
        self._lose_next_ack += submits

    def reject_late(self, client_order_id: str,
                    reason: str = "paper: rejected by the simulated venue") -> None:
        """The venue rejects an order it had accepted (as a risk check would)."""
        placed = self._find(client_order_id)
        if placed.open:
            placed.status = OrderStatus.REJECTED
            placed.reason = reason

    async def _enter(self) -> None:
        latency = self.settings.latency
        if latency > timedelta(0):
            await asyncio.sleep(latency.total_seconds())
        if self._outage is not None:
            raise BrokerUnavailable(f"paper: {self._outage}", code="outage", status=503)
        if self._fail_next > 0:
            self._fail_next -= 1
            raise BrokerUnavailable("paper: injected failure", code="injected", status=503)
        self._catch_up()
