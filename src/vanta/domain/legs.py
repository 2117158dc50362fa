"""Child legs: the steps of a cross-rail child order, each with its own state.

A leg that depends on another (the asset order after a USD→USDC conversion) waits until that
one is closed. A conversion that closes short of its amount resizes the asset leg to what the
USDC received pays for, keeping the stablecoin buffer whole; if nothing tradable is left the
asset leg is cancelled with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from vanta.domain.errors import ValidationFailed
from vanta.domain.fsm import TransitionTable
from vanta.domain.money import ZERO, floor_ratio, normalize
from vanta.domain.routing import LegKind, RouteDecision
from vanta.domain.venues import MAX_BPS


class LegState(StrEnum):
    WAITING = "waiting"  # its predecessor has not closed yet
    PLANNED = "planned"  # ready to be sent
    SENT = "sent"  # an attempt is in flight
    PARTIAL = "partial"  # part filled, still working
    FILLED = "filled"  # closed; ``filled`` may be below ``amount`` (a partial close)
    FAILED = "failed"  # the venue refused it, or retries ran out
    CANCELLED = "cancelled"  # never sent; ``reason`` says why


LEG_TABLE: TransitionTable[LegState] = TransitionTable(
    "child_leg",
    {
        LegState.WAITING: frozenset({LegState.PLANNED, LegState.CANCELLED}),
        LegState.PLANNED: frozenset({LegState.SENT, LegState.CANCELLED}),
        # sent -> planned: a failed attempt to be retried
        LegState.SENT: frozenset({LegState.PARTIAL, LegState.FILLED, LegState.FAILED,
                                  LegState.PLANNED}),
        LegState.PARTIAL: frozenset({LegState.PARTIAL, LegState.FILLED}),
    },
)


@dataclass(frozen=True, slots=True)
class Leg:
    fo_id: str
    index: int
    kind: LegKind
    venue: str
    pair: str
    side: str
    amount: Decimal  # USDC for a conversion, base quantity for a trade
    state: LegState
    after: int | None = None
    filled: Decimal = ZERO
    attempts: int = 0
    reason: str | None = None

    @property
    def leg_id(self) -> str:
        return f"{self.fo_id}.{self.index}"

    def move(self, dst: LegState, **changes: Any) -> Leg:
        return replace(self, state=LEG_TABLE.check(self.state, dst), **changes)

    def to_json(self) -> dict[str, Any]:
        return {"leg_id": self.leg_id, "index": self.index, "kind": self.kind.value,
                "venue": self.venue, "pair": self.pair, "side": self.side,
                "amount": str(normalize(self.amount)), "after": self.after,
                "state": self.state.value, "filled": str(normalize(self.filled)),
                "attempts": self.attempts, "reason": self.reason}


def plan_legs(fo_id: str, decision: RouteDecision) -> list[Leg]:
    """The legs of the chosen route: the first ready, each dependent one waiting."""
    if decision.chosen is None:
        raise ValidationFailed("no feasible route to plan", code="no_feasible_route")
    return [Leg(fo_id, i, p.kind, p.venue, p.pair, p.side, p.amount,
                LegState.WAITING if p.after is not None else LegState.PLANNED, p.after)
            for i, p in enumerate(decision.chosen.legs)]


def record_fill(leg: Leg, filled: Decimal, *, closed: bool) -> Leg:
    """A venue report: ``filled`` is the cumulative amount; ``closed`` ends the leg."""
    if filled < leg.filled or filled > leg.amount:
        raise ValidationFailed("a fill must not shrink or exceed the leg",
                               code="invalid_fill", field="filled")
    done = closed or filled == leg.amount
    return leg.move(LegState.FILLED if done else LegState.PARTIAL, filled=filled)


def resized_trade_qty(*, planned_qty: Decimal, usdc_before: Decimal, converted: Decimal,
                      buffer: Decimal, price: Decimal, fee_bps: Decimal,
                      lot_step: Decimal) -> Decimal:
    """The asset quantity the USDC on hand pays for, fees included, keeping ``buffer``:
    ``(usdc_before + converted − buffer) × 10,000 / (price × (10,000 + fee_bps))`` floored
    once to the lot step, never above the planned quantity."""
    spendable = usdc_before + converted - buffer
    if spendable <= 0:
        return ZERO
    qty = floor_ratio(spendable * MAX_BPS, price * (MAX_BPS + fee_bps), lot_step)
    return min(planned_qty, normalize(qty))


def release_after(legs: list[Leg], closed: Leg, *, usdc_before: Decimal, buffer: Decimal,
                  price: Decimal, fee_bps: Decimal, lot_step: Decimal,
                  min_qty: Decimal) -> list[Leg]:
    """Legs waiting on ``closed`` become ready (resized after a short conversion), or are
    cancelled when their predecessor failed or nothing tradable is left."""
    out: list[Leg] = []
    for leg in legs:
        if leg.after != closed.index or leg.state is not LegState.WAITING:
            out.append(leg)
            continue
        if closed.state is not LegState.FILLED or closed.filled <= 0:
            out.append(leg.move(LegState.CANCELLED, reason="predecessor_failed"))
            continue
        qty = leg.amount
        if closed.kind is LegKind.CONVERT and closed.filled < closed.amount:
            qty = resized_trade_qty(planned_qty=leg.amount, usdc_before=usdc_before,
                                    converted=closed.filled, buffer=buffer, price=price,
                                    fee_bps=fee_bps, lot_step=lot_step)
        elif closed.kind is LegKind.TRADE and closed.filled < closed.amount:
            # a sell that filled short has less to convert back: in proportion, floored once
            qty = floor_ratio(leg.amount * closed.filled, closed.amount, Decimal("0.01"))
        if qty <= 0 or qty < min_qty:
            out.append(leg.move(LegState.CANCELLED, amount=qty, reason="resized_below_minimum"))
        else:
            out.append(leg.move(LegState.PLANNED, amount=qty))
    return out
