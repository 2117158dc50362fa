"""Broker port: how a bridged follower's child order reaches the follower's own broker account.

The platform never holds money; an adapter only translates our order into the venue's API and
reports back what the venue says. Every adapter honours the same contract
(``tests/contract/test_broker_contract.py``):

* The client order id **is** our child order id. Submitting the same client order id twice
  never creates a second order: the adapter recognises the duplicate (the venue's own
  "client order id already exists" answer, or a look-up before sending) and returns the
  existing order's ack. Reusing an id for a *different* order raises
  :class:`BrokerRejected` with ``code="client_order_id_conflict"``.
* Quantities and prices are ``Decimal`` end to end; a float never enters these types.
* Errors fall in two families. :class:`BrokerRejected` is terminal: the venue refused this
  order and sending it again will not help. :class:`BrokerUnavailable` is retryable: 5xx,
  429, timeouts, refused or dropped connections. A retry after ``BrokerUnavailable`` is
  always safe because of the idempotency rule above.
* Fills carry the venue's trade id (stable across reports), so a consumer can merge
  reports by ``trade_id`` without double counting.

Hierarchy::

    BrokerError
    ├── BrokerRejected        terminal refusal of an order (or of a cancel)
    ├── BrokerUnavailable     retryable: outage, 5xx, 429, timeout, connection error
    │   └── BrokerAuthFailed  credentials refused (401/403-auth); retry after rotation
    └── OrderNotFound         the venue has no order with this client order id
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from vanta.application.ports.records_catalog import FollowerRecord
from vanta.domain.orders import Side, TimeInForce

__all__ = [
    "TERMINAL_ORDER_STATUSES",
    "BrokerAck",
    "BrokerAuthFailed",
    "BrokerError",
    "BrokerFactory",
    "BrokerGateway",
    "BrokerGateways",
    "BrokerOrder",
    "BrokerRejected",
    "BrokerUnavailable",
    "Fill",
    "OrderNotFound",
    "OrderReport",
    "OrderStatus",
]


class OrderStatus(StrEnum):
    """The venue's view of one order, normalised."""

    PENDING = "pending"  # received by the venue, not yet working (e.g. pending_new, queued)
    NEW = "new"  # working, nothing filled
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"  # may carry a partial fill: look at ``filled_qty``
    EXPIRED = "expired"
    REJECTED = "rejected"  # accepted first, refused afterwards (e.g. by the venue's risk checks)


TERMINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)


def _require_decimal(name: str, value: object, *, positive: bool = True) -> None:
    if not isinstance(value, Decimal) or isinstance(value, bool):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite")
    if positive and value <= 0:
        raise ValueError(f"{name} must be greater than zero")
    if not positive and value < 0:
        raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """What we ask a broker to do. ``client_order_id`` is the child order id."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    tif: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id or len(self.client_order_id) > 128:
            raise ValueError("client_order_id must be 1-128 characters")
        if not self.symbol:
            raise ValueError("symbol is required")
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "tif", TimeInForce(self.tif))
        _require_decimal("qty", self.qty)
        if self.limit_price is not None:
            _require_decimal("limit_price", self.limit_price)

    @property
    def order_type(self) -> str:
        return "market" if self.limit_price is None else "limit"


@dataclass(frozen=True, slots=True)
class BrokerAck:
    """The venue accepted (or already had) the order."""

    client_order_id: str
    broker_order_id: str
    status: OrderStatus
    submitted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``trade_id`` is the venue's id, unique and stable across reports."""

    trade_id: str
    qty: Decimal
    price: Decimal
    ts: datetime

    def __post_init__(self) -> None:
        _require_decimal("qty", self.qty)
        _require_decimal("price", self.price)


@dataclass(frozen=True, slots=True)
class OrderReport:
    """The venue's current view of one order.

    ``filled_qty`` and ``avg_price`` are the venue's order-level figures. ``fills`` lists the
    executions the venue reports individually; a venue may publish an execution a moment after
    it updates the order, so ``sum(f.qty for f in fills)`` can briefly trail ``filled_qty``.
    """

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    status: OrderStatus
    qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal | None
    fills: tuple[Fill, ...] = field(default_factory=tuple)
    reason: str | None = None

    def __post_init__(self) -> None:
        _require_decimal("qty", self.qty)
        _require_decimal("filled_qty", self.filled_qty, positive=False)
        if self.avg_price is not None:
            _require_decimal("avg_price", self.avg_price, positive=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_ORDER_STATUSES

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty


class BrokerError(Exception):
    """Base of every error a broker adapter raises. Messages never carry credentials."""

    def __init__(self, reason: str, *, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.status = status


class BrokerRejected(BrokerError):
    """Terminal: the venue refused the request; sending it again will not change the answer."""


class BrokerUnavailable(BrokerError):
    """Retryable: the venue could not be reached or answered 5xx/429/timeout.

    The request may or may not have reached the venue; retrying a submit is safe because
    the client order id makes it idempotent.
    """

    def __init__(self, reason: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason, code=code, status=status)
        self.retry_after = retry_after


class BrokerAuthFailed(BrokerUnavailable):
    """The venue refused the credentials. Retryable once the secret has been rotated."""


class OrderNotFound(BrokerError, LookupError):
    """The venue has no order with this client order id."""


@runtime_checkable
class BrokerGateway(Protocol):
    """One follower's broker account."""

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        """Place ``order``; if the client order id already exists, return that order's ack."""
        ...

    async def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel. A no-op when the order is already finished; read the
        outcome with :meth:`order_report`. Raises :class:`OrderNotFound` for unknown ids."""
        ...

    async def order_report(self, client_order_id: str) -> OrderReport:
        """The order's status, filled quantity, average price and fills."""
        ...

    async def positions(self) -> dict[str, Decimal]:
        """Signed quantity held per symbol (short positions are negative); zeros omitted."""
        ...

    async def account_nav(self) -> Decimal:
        """Net asset value of the account in its base currency, as the venue values it."""
        ...

    async def balances(self) -> dict[str, Decimal]:
        """Cash held, by currency code (``{"USD": ...}``; a crypto venue's quote currency):
        what a buy may spend. Reconciliation cuts a fix-up buy to it."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...


class BrokerFactory(Protocol):
    """Builds the gateway for one follower account: ``factory(broker, credentials,
    follower_id)``. The composition root supplies it (``vanta.bootstrap.brokers``)."""

    def __call__(self, broker: str, creds: dict[str, str], follower_id: str) -> BrokerGateway:
        ...


class BrokerGateways(Protocol):
    """The gateway of each bridged follower (one per account, built on first use)."""

    def for_follower(self, follower: FollowerRecord) -> BrokerGateway: ...

    async def close(self) -> None: ...
