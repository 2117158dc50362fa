"""A follower's positions and in-flight quantities, from whichever source it has (pure).

* ``broker``: the bridged follower's broker account is the truth for what is held. Children
  not yet accepted by the venue (pending, sent, retry) are pending in full; accepted ones
  (ack) are pending for what has not filled yet. Confirmed children are in the positions.
* ``reported``: a webhook follower's own report at ``as_of``. Children still on their way
  are pending, and so are children created after the report (the report cannot know them).
* ``derived``: without a report, the platform's record stands in: acknowledged children
  (their quantity) and confirmed ones (their filled quantity) are held; children on their
  way are pending.

A shadow follower's children (sized, never sent) are its derived book, so its virtual
positions do not show as drift. Dead-lettered, failed, skipped and cancelled children count
nowhere: that is exactly the
drift reconciliation exists to repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from vanta.domain.money import ZERO
from vanta.domain.orders import ChildOrderState, Side
from vanta.domain.reconciliation import BROKER, DERIVED, REPORTED

IN_FLIGHT = frozenset({ChildOrderState.PENDING, ChildOrderState.SENT, ChildOrderState.RETRY})
DONE = frozenset({ChildOrderState.ACK, ChildOrderState.CONFIRMED})
# every state reconciliation reads: a shadow follower's children are its virtual book
BOOK_STATES = IN_FLIGHT | DONE | {ChildOrderState.SHADOW}


@dataclass(frozen=True, slots=True)
class ChildLine:
    """What reconciliation reads of one child order."""

    symbol: str
    side: Side
    qty: Decimal
    filled_qty: Decimal
    state: ChildOrderState
    created_at: datetime


def _add(into: dict[str, Decimal], symbol: str, side: Side, qty: Decimal) -> None:
    if qty:
        into[symbol] = into.get(symbol, ZERO) + (qty if side is Side.BUY else -qty)


def _filled(c: ChildLine) -> Decimal:
    # a confirmed child without a recorded fill quantity (a webhook follower's) counts whole
    if c.state is ChildOrderState.CONFIRMED and c.filled_qty > 0:
        return c.filled_qty
    return c.qty


@dataclass(frozen=True, slots=True)
class Flows:
    pending: dict[str, Decimal]  # signed, per symbol
    pending_sells: dict[str, Decimal]  # the sells among them, positive
    derived: dict[str, Decimal]  # positions from the platform's record (``derived`` only)


def book_flows(children: Iterable[ChildLine], source: str,
               as_of: datetime | None = None) -> Flows:
    """What is in flight, and for ``derived`` what is held, per symbol."""
    pending: dict[str, Decimal] = {}
    sells: dict[str, Decimal] = {}
    derived: dict[str, Decimal] = {}
    for c in children:
        if c.state is ChildOrderState.SHADOW:
            if source == DERIVED:
                _add(derived, c.symbol, c.side, c.qty)
        elif c.state in IN_FLIGHT:
            _add(pending, c.symbol, c.side, c.qty)
            if c.side is Side.SELL:
                _add(sells, c.symbol, Side.BUY, c.qty)
        elif c.state not in DONE:
            continue
        elif source == DERIVED:
            _add(derived, c.symbol, c.side, _filled(c))
        elif source == BROKER:
            if c.state is ChildOrderState.ACK:
                rest = max(c.qty - c.filled_qty, ZERO)
                _add(pending, c.symbol, c.side, rest)
                if c.side is Side.SELL:
                    _add(sells, c.symbol, Side.BUY, rest)
        elif source == REPORTED and as_of is not None and c.created_at > as_of:
            _add(pending, c.symbol, c.side, _filled(c))
            if c.side is Side.SELL:
                _add(sells, c.symbol, Side.BUY, _filled(c))
    return Flows(_nonzero(pending), _nonzero(sells), _nonzero(derived))


def _nonzero(m: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {k: v for k, v in m.items() if v}
