"""Sizing version 1: the rules every order stored before sizing version 2 was sized with.

Frozen, kept only so that replaying such an order reproduces exactly the children it was given
(see ``vanta.domain.mirroring.sizer_for``); new orders are sized by ``vanta.domain.sizing``.
Do not fix anything here: a change would make old orders replay as mismatching.

What version 2 changed: this version divides before it multiplies in the 28-digit Decimal
context (NAV ratio, exit fraction, cap room), so a product that is exactly a whole number of
lots can come out a hair below it and the floor removes a whole lot (NAV 1,000 of 3,000 × 30
gives 9, not 10). It also reports ``below_minimum`` when a buy floors to zero and a cap leaves
no room, where version 2 reports ``cap_exhausted``, and does not mark dust exits.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from vanta.domain.followers import FollowerSpec, ScaleMode
from vanta.domain.money import ZERO, Instrument, normalize
from vanta.domain.orders import ManagerOrder, Side
from vanta.domain.sizing import NavState, OrderContext, Sized, SizeResult, Skipped

VERSION = 1
HUNDRED = Decimal(100)
_ONE = Decimal(1)


def floor_to_step(qty: Decimal, step: Decimal) -> Decimal:
    """Version 1's floor: the quotient is rounded to 28 digits before it is floored."""
    if step <= 0:
        raise ValueError("lot step must be positive")
    if qty <= 0:
        return ZERO
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _boost(c: OrderContext, follower: FollowerSpec) -> Decimal:
    """Version 1's overlay product, in the 28-digit context."""
    o = c.overlay
    if follower.flip_allowed:
        return o.flip * o.persona if follower.persona_allowed else o.flip
    return o.persona if follower.persona_allowed else _ONE


def size_child(
    order: ManagerOrder,
    follower: FollowerSpec,
    instrument: Instrument,
    ctx: OrderContext | None = None,
    *,
    held: Decimal = ZERO,
    nav: NavState | None = None,
    price: Decimal | None = None,
) -> SizeResult:
    """Size the child of ``order`` for ``follower``; ``price`` overrides ``ctx.price``."""
    c = ctx or OrderContext()
    px = price if price is not None else c.price
    # The trace keeps what sizing computed; its inputs (settings, holdings, NAVs) are in the
    # order's snapshot already.
    trace: dict[str, str] = {}
    if follower.kill_switch:
        return Skipped("kill_switch", trace)
    if follower.paused:
        return Skipped("paused", trace)
    prot = follower.protections
    if (prot.allow_symbols and order.symbol not in prot.allow_symbols) or \
            order.symbol in prot.deny_symbols:
        return Skipped("symbol_not_allowed", trace)
    mapped = prot.symbol_map.get(order.symbol)

    if follower.scale_mode is ScaleMode.NAV_RATIO:
        if nav is None or c.manager_nav is None or c.manager_nav <= 0 or nav.nav <= 0:
            return Skipped("nav_unavailable", trace)
        scale = nav.nav / c.manager_nav * follower.nav_multiplier
        trace["scale"] = str(scale)
    else:
        scale = follower.scale

    if order.side is Side.SELL:
        result = _size_sell(order, follower, instrument, c, held, scale, px, trace)
    else:
        result = _size_buy(order, follower, instrument, c, held, scale, px, nav, trace)
    if mapped is not None and isinstance(result, Sized):
        return Sized(result.qty, result.cap_applied, result.trace, mapped)
    return result


def _size_buy(
    order: ManagerOrder, follower: FollowerSpec, instrument: Instrument, c: OrderContext,
    held: Decimal, scale: Decimal, px: Decimal | None, nav: NavState | None,
    trace: dict[str, str],
) -> SizeResult:
    prot = follower.protections
    if prot.drawdown_stop_pct is not None and nav is not None and nav.peak > 0 and \
            (nav.peak - nav.nav) * HUNDRED >= prot.drawdown_stop_pct * nav.peak:
        return Skipped("drawdown_stop", trace, pause=True)
    if prot.daily_loss_limit_usd is not None and nav is not None and \
            nav.day_start - nav.nav >= prot.daily_loss_limit_usd:
        return Skipped("daily_loss_limit", trace)

    boost = _boost(c, follower)
    if boost != 1:
        scale = scale * boost
        trace["overlay"] = str(boost)
    fractional = follower.fractional
    step = instrument.step_for(fractional)
    raw = order.qty * scale
    qty = floor_to_step(raw, step)
    trace["raw"] = str(raw)
    cap_applied = False
    if prot.max_order_usd is not None:
        if px is None:
            return Skipped("price_unavailable", trace)
        allowed = floor_to_step(prot.max_order_usd / px, step)
        if allowed < qty:
            qty, cap_applied = allowed, True
            trace["order_cap"] = str(allowed)
    if follower.max_pos_usd is not None:  # only capped mode may carry one
        if px is None:
            return Skipped("price_unavailable", trace)
        room = follower.max_pos_usd / px - max(held, ZERO)
        allowed = floor_to_step(room, step) if room > 0 else ZERO
        if allowed < qty:
            qty, cap_applied = allowed, True
            trace["cap_room"] = str(allowed)
    if cap_applied and qty <= 0:
        return Skipped("cap_exhausted", trace)
    return _apply_minimums(qty, cap_applied, instrument, fractional, px, trace)


def _size_sell(
    order: ManagerOrder, follower: FollowerSpec, instrument: Instrument, c: OrderContext,
    held: Decimal, scale: Decimal, px: Decimal | None, trace: dict[str, str],
) -> SizeResult:
    if held <= 0:
        return Skipped("no_position", trace)
    mpos = c.manager_position
    if order.closes_position or (mpos > 0 and order.qty >= mpos):
        # the whole position, not a floored share of it: nothing is left behind by rounding
        trace["exit"] = "close"
        return Sized(normalize(held), False, trace)
    step = instrument.step_for(follower.fractional)
    if mpos > 0:
        fraction = order.qty / mpos
        trace["exit"] = f"fraction {normalize(fraction)}"
        qty = floor_to_step(held * fraction, step)
    else:
        qty = floor_to_step(order.qty * scale, step)
    if qty >= held:
        trace["exit"] = "limited_to_held"
        return Sized(normalize(held), False, trace)
    return _apply_minimums(qty, False, instrument, follower.fractional, px, trace)


def _apply_minimums(
    qty: Decimal, cap_applied: bool, instrument: Instrument, fractional: bool,
    px: Decimal | None, trace: dict[str, str],
) -> SizeResult:
    min_qty = instrument.fractional_step if fractional and instrument.fractional_step \
        else instrument.min_qty
    if qty <= 0 or qty < min_qty:
        return Skipped("below_minimum", trace)
    if instrument.min_notional > 0 and px is not None and qty * px < instrument.min_notional:
        return Skipped("below_minimum", trace)
    if not fractional and instrument.whole_lots and qty == qty.to_integral_value():
        return Sized(qty.quantize(_ONE), cap_applied, trace)  # already whole: skip normalize
    return Sized(normalize(qty), cap_applied, trace)
