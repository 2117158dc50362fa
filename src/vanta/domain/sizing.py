"""Sizing one child order: the spec's rule and nothing else.

Rule, in order:
1. ``kill_switch`` on → skipped ``kill_switch``.
2. raw = manager qty × follower scale, floored to the instrument's lot step.
3. Buy with ``max_pos_usd`` set: (held + qty) × price may not exceed the cap; the qty is cut
   to the largest lot multiple that fits and ``cap_applied`` is set; nothing fits → skipped
   ``cap_exhausted``; no price known → skipped ``price_unavailable`` (never guessed).
4. Sell: never more than held (no position → skipped ``no_position``); a manager order that
   closes its position closes the follower's whole position.
5. Below the instrument's minimum quantity or notional → skipped ``below_minimum``; never
   rounded up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from vanta.domain.followers import FollowerSpec
from vanta.domain.money import ZERO, Instrument, floor_to_step, normalize
from vanta.domain.orders import ManagerOrder, Side


@dataclass(frozen=True, slots=True)
class Sized:
    qty: Decimal
    cap_applied: bool
    trace: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str
    trace: dict[str, str] = field(default_factory=dict)


SizeResult = Sized | Skipped


def size_child(
    order: ManagerOrder,
    follower: FollowerSpec,
    instrument: Instrument,
    *,
    held: Decimal = ZERO,
    price: Decimal | None = None,
) -> SizeResult:
    """Size the child of ``order`` for ``follower`` holding ``held`` units at ``price``."""
    trace: dict[str, str] = {"scale": str(follower.scale), "held": str(held)}
    if price is not None:
        trace["price"] = str(price)
    if follower.kill_switch:
        return Skipped("kill_switch", trace)

    if order.side is Side.SELL:
        return _size_sell(order, follower, instrument, held, price, trace)
    return _size_buy(order, follower, instrument, held, price, trace)


def _size_buy(
    order: ManagerOrder, follower: FollowerSpec, instrument: Instrument,
    held: Decimal, price: Decimal | None, trace: dict[str, str],
) -> SizeResult:
    raw = order.qty * follower.scale
    qty = instrument.floor(raw)
    trace["raw"] = str(normalize(raw))
    trace["floored"] = str(qty)
    cap_applied = False
    if follower.max_pos_usd is not None:
        if price is None:
            return Skipped("price_unavailable", trace)
        room = follower.max_pos_usd / price - max(held, ZERO)
        allowed = floor_to_step(room, instrument.lot_step) if room > 0 else ZERO
        trace["cap_room"] = str(allowed)
        if allowed < qty:
            qty, cap_applied = allowed, True
            if qty <= 0:
                return Skipped("cap_exhausted", trace)
    return _apply_minimums(qty, cap_applied, instrument, price, trace)


def _size_sell(
    order: ManagerOrder, follower: FollowerSpec, instrument: Instrument,
    held: Decimal, price: Decimal | None, trace: dict[str, str],
) -> SizeResult:
    if held <= 0:
        return Skipped("no_position", trace)
    if order.closes_position:
        # the whole position, not a floored share of it: nothing is left behind by rounding
        trace["closes_position"] = "true"
        return Sized(normalize(held), False, trace)
    raw = order.qty * follower.scale
    qty = instrument.floor(raw)
    trace["raw"] = str(normalize(raw))
    trace["floored"] = str(qty)
    if qty >= held:
        trace["limited_to_held"] = "true"
        return Sized(normalize(held), False, trace)
    return _apply_minimums(qty, False, instrument, price, trace)


def _apply_minimums(
    qty: Decimal, cap_applied: bool, instrument: Instrument,
    price: Decimal | None, trace: dict[str, str],
) -> SizeResult:
    if qty <= 0 or qty < instrument.min_qty:
        return Skipped("below_minimum", trace)
    if instrument.min_notional > 0 and price is not None and qty * price < instrument.min_notional:
        return Skipped("below_minimum", trace)
    return Sized(normalize(qty), cap_applied, trace)
