"""Manager orders, child orders and their state tables."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from vanta.domain.errors import ValidationFailed
from vanta.domain.fsm import TransitionTable
from vanta.domain.ids import ChildOrderId, FollowerId, ManagerOrderId, VaultId
from vanta.domain.money import (
    MAX_DECIMAL_PLACES,
    MAX_PRICE,
    MAX_QTY,
    exponent_places,
    normalize,
    to_decimal,
)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class ManagerOrderState(StrEnum):
    RECEIVED = "received"
    EXPANDED = "expanded"
    COMPLETED = "completed"
    REJECTED = "rejected"


MANAGER_ORDER_TABLE: TransitionTable[ManagerOrderState] = TransitionTable(
    "manager_order",
    {
        ManagerOrderState.RECEIVED: frozenset(
            {ManagerOrderState.EXPANDED, ManagerOrderState.REJECTED}
        ),
        # completed: every child reached a terminal state
        ManagerOrderState.EXPANDED: frozenset({ManagerOrderState.COMPLETED}),
        # a dead letter sent again reopens its order
        ManagerOrderState.COMPLETED: frozenset({ManagerOrderState.EXPANDED}),
    },
)


class ChildOrderState(StrEnum):
    PENDING = "pending"  # written with the outbox row, not yet attempted
    SENT = "sent"  # an attempt is in flight
    RETRY = "retry"  # last attempt failed, another is scheduled
    ACK = "ack"  # receiver answered 2xx / broker accepted
    CONFIRMED = "confirmed"  # fill reported
    FAILED = "failed"  # terminal refusal (e.g. a 4xx from the receiver)
    DLQ = "dlq"  # retries exhausted; parked in the dead-letter queue
    SKIPPED = "skipped"  # never dispatched; ``skip_reason`` says why
    SHADOW = "shadow"  # sized and recorded for a shadow follower, never dispatched
    CANCELLED = "cancelled"  # queued, then withdrawn (the follower's kill switch or pause)


CHILD_ORDER_TABLE: TransitionTable[ChildOrderState] = TransitionTable(
    "follower_order",
    {
        # -> dlq without an attempt: the follower's endpoint was disabled (410 Gone)
        ChildOrderState.PENDING: frozenset({ChildOrderState.SENT, ChildOrderState.CANCELLED,
                                            ChildOrderState.DLQ}),
        ChildOrderState.SENT: frozenset(
            {ChildOrderState.ACK, ChildOrderState.RETRY, ChildOrderState.FAILED,
             ChildOrderState.DLQ}
        ),
        ChildOrderState.RETRY: frozenset({ChildOrderState.SENT, ChildOrderState.CANCELLED,
                                          ChildOrderState.DLQ}),
        # a broker may still refuse or cancel an accepted order with nothing filled
        ChildOrderState.ACK: frozenset({ChildOrderState.CONFIRMED, ChildOrderState.FAILED}),
        # a dead letter can be redelivered by an operator
        ChildOrderState.DLQ: frozenset({ChildOrderState.PENDING}),
    },
)

# States whose quantity counts toward the follower's position when sizing the next order.
# In-flight buys count so two quick orders cannot both fit under one cap; a shadow
# follower's children build its virtual position so its exits are sized like everyone's.
POSITION_STATES = frozenset(
    {ChildOrderState.PENDING, ChildOrderState.SENT, ChildOrderState.RETRY,
     ChildOrderState.ACK, ChildOrderState.CONFIRMED, ChildOrderState.SHADOW}
)
TERMINAL_CHILD_STATES = frozenset(
    {ChildOrderState.ACK, ChildOrderState.CONFIRMED, ChildOrderState.FAILED,
     ChildOrderState.DLQ, ChildOrderState.SKIPPED, ChildOrderState.SHADOW,
     ChildOrderState.CANCELLED}
)

_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,31}$")
_VENUE_RE = re.compile(r"^[a-z0-9_\-]{1,32}$")


@dataclass(frozen=True, slots=True)
class ManagerOrder:
    mo_id: ManagerOrderId
    vault_id: VaultId
    client_order_id: str
    symbol: str
    venue: str
    side: Side
    qty: Decimal
    tif: TimeInForce
    ref_price: Decimal | None
    closes_position: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    manager_nav: Decimal | None = None  # the vault's NAV as the source saw it, if it sent one


class ChildOrder(NamedTuple):
    """Immutable; a NamedTuple rather than a frozen dataclass because a fan-out builds one
    per follower and frozen dataclasses are several times slower to construct."""

    fo_id: ChildOrderId
    mo_id: ManagerOrderId
    follower_id: FollowerId
    symbol: str
    venue: str
    side: Side
    qty: Decimal
    cap_applied: bool
    state: ChildOrderState
    skip_reason: str | None
    sizing: dict[str, str]


def parse_side(value: object) -> Side:
    try:
        return Side(str(value).lower()) if isinstance(value, str) else Side("?")
    except ValueError:
        raise ValidationFailed(
            "side must be 'buy' or 'sell'", code="invalid_side", field="side"
        ) from None


def parse_tif(value: object) -> TimeInForce:
    if value is None:
        return TimeInForce.DAY
    try:
        return TimeInForce(str(value).lower()) if isinstance(value, str) else TimeInForce("?")
    except ValueError:
        allowed = ", ".join(t.value for t in TimeInForce)
        raise ValidationFailed(
            f"tif must be one of {allowed}", code="invalid_tif", field="tif"
        ) from None


def parse_qty(value: object, field_name: str = "qty") -> Decimal:
    qty = to_decimal(value, field=field_name, code="invalid_quantity")
    if qty <= 0:
        raise ValidationFailed(
            f"{field_name} must be greater than zero", code="invalid_quantity", field=field_name
        )
    if qty > MAX_QTY:
        raise ValidationFailed(
            f"{field_name} exceeds the maximum of {MAX_QTY}",
            code="quantity_out_of_range", field=field_name,
        )
    if exponent_places(qty) > MAX_DECIMAL_PLACES:
        raise ValidationFailed(
            f"{field_name} has more than {MAX_DECIMAL_PLACES} decimal places",
            code="invalid_quantity", field=field_name,
        )
    return normalize(qty)


def parse_price(value: object, field_name: str = "ref_price") -> Decimal | None:
    if value is None:
        return None
    price = to_decimal(value, field=field_name, code="invalid_price")
    if price <= 0 or price > MAX_PRICE or exponent_places(price) > MAX_DECIMAL_PLACES:
        raise ValidationFailed(
            f"{field_name} must be > 0 and <= {MAX_PRICE}", code="invalid_price", field=field_name
        )
    return normalize(price)


def parse_symbol(value: object) -> str:
    if not isinstance(value, str) or not _SYMBOL_RE.match(value):
        raise ValidationFailed(
            "symbol must be 1-32 letters, digits or . _ / -", code="invalid_symbol", field="symbol"
        )
    return value.upper()


def parse_venue(value: object) -> str:
    if value is None:
        return "default"
    if not isinstance(value, str) or not _VENUE_RE.match(value.lower()):
        raise ValidationFailed("venue is not a valid venue name", code="invalid_venue",
                               field="venue")
    return value.lower()


def parse_client_order_id(value: object) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValidationFailed("id must be a string", code="invalid_order_id", field="id")
    text = str(value).strip()
    if not 1 <= len(text) <= 128:
        raise ValidationFailed("id must be 1-128 characters", code="invalid_order_id", field="id")
    return text
