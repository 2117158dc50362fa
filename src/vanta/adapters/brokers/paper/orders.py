"""A paper order as the simulated venue holds it, and what the gateway reports about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from vanta.adapters.brokers.paper.settings import ZERO
from vanta.application.ports.brokers import (
    TERMINAL_ORDER_STATUSES,
    BrokerAck,
    BrokerOrder,
    BrokerRejected,
    Fill,
    OrderReport,
    OrderStatus,
)

_AVG_PRICE_QUANTUM = Decimal("1e-10")


@dataclass(slots=True)
class PaperOrder:
    request: BrokerOrder
    broker_order_id: str
    submitted_at: datetime
    parts: list[Decimal]
    reject_on_first_tick: bool
    status: OrderStatus = OrderStatus.NEW
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)
    reason: str | None = None

    @property
    def open(self) -> bool:
        return self.status not in TERMINAL_ORDER_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled


def ack_of(placed: PaperOrder) -> BrokerAck:
    return BrokerAck(client_order_id=placed.request.client_order_id,
                     broker_order_id=placed.broker_order_id, status=placed.status,
                     submitted_at=placed.submitted_at)


def report_of(placed: PaperOrder) -> OrderReport:
    request = placed.request
    avg = None
    if placed.filled > 0:
        avg = (placed.notional / placed.filled).quantize(_AVG_PRICE_QUANTUM).normalize()
    return OrderReport(
        client_order_id=request.client_order_id, broker_order_id=placed.broker_order_id,
        symbol=request.symbol, side=request.side, status=placed.status, qty=request.qty,
        filled_qty=placed.filled, avg_price=avg, fills=tuple(placed.fills),
        reason=placed.reason)


def check_same(first: BrokerOrder, again: BrokerOrder) -> None:
    """A resubmitted client order id must name the same order."""
    if (first.symbol.upper(), first.side, first.qty, first.limit_price) != (
            again.symbol.upper(), again.side, again.qty, again.limit_price):
        raise BrokerRejected(
            f"client order id {again.client_order_id} already names a different order",
            code="client_order_id_conflict")


def unit_of(qty: Decimal) -> Decimal:
    """The smallest step that ``qty`` is written in: 7 -> 1, 0.25 -> 0.01."""
    exponent = qty.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return Decimal(1).scaleb(-places)
