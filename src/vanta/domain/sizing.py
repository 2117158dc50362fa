"""Sizing one child order: every rule, in a fixed order, and nothing else.

For each follower (all quantities Decimal; every rounding is a floor to the lot step):

1. ``kill_switch`` → skipped ``kill_switch``; paused → ``paused``.
2. Symbol not in the follower's allow list, or in its deny list → ``symbol_not_allowed``;
   the symbol map renames what the follower receives (``BTC-USD`` → ``XBTUSD``).
3. Scale: fixed ``scale``, or ``nav_ratio`` = follower NAV ÷ manager NAV × ``nav_multiplier``
   (either NAV unknown → ``nav_unavailable``).
4. Buys only — risk guards: NAV at least ``drawdown_stop_pct`` below its peak →
   ``drawdown_stop`` (and the follower is paused); today's loss at or above
   ``daily_loss_limit_usd`` → ``daily_loss_limit``. Then active overlays the follower may use
   multiply the scale. qty = floor(manager qty × scale). ``max_order_usd`` cuts the notional,
   ``max_pos_usd`` (capped mode) cuts the resulting position; either sets ``cap_applied``;
   cut to nothing → ``cap_exhausted``; a cap without a price → ``price_unavailable``.
5. Sells: nothing held → ``no_position``. When the manager's order closes its position (flag,
   or qty ≥ the manager's position) the follower's whole position is sold; otherwise the same
   fraction of the follower's position as the manager sells of its own; with no known manager
   position, floor(qty × scale). Never more than held; overlays and risk guards do not apply.
6. Below the instrument's minimum quantity or notional → ``below_minimum``. Never rounded up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from vanta.domain.followers import FollowerSpec, ScaleMode
from vanta.domain.money import ZERO, Instrument, floor_to_step, normalize
from vanta.domain.orders import ManagerOrder, Side
from vanta.domain.overlays import OverlayEffect

HUNDRED = Decimal(100)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class NavState:
    """A follower's equity at the snapshot: now, its running peak, and at the day's start."""

    nav: Decimal
    peak: Decimal
    day_start: Decimal


@dataclass(frozen=True, slots=True)
class OrderContext:
    """Inputs shared by every follower of one manager order (part of its snapshot)."""

    price: Decimal | None = None
    manager_nav: Decimal | None = None
    manager_position: Decimal = ZERO  # the manager's position in the symbol before the order
    overlay: OverlayEffect = field(default_factory=OverlayEffect)


# Results are plain slotted dataclasses (not frozen): one is built per follower on the hot
# path, and frozen construction costs several times more. Treat them as values.
@dataclass(slots=True)
class Sized:
    qty: Decimal
    cap_applied: bool
    trace: dict[str, str] = field(default_factory=dict)
    symbol: str | None = None  # set when the follower's symbol map renamed it


@dataclass(slots=True)
class Skipped:
    reason: str
    trace: dict[str, str] = field(default_factory=dict)
    pause: bool = False  # the follower should be paused (drawdown stop)


SizeResult = Sized | Skipped


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

    boost = c.overlay.for_follower(follower.flip_allowed, follower.persona_allowed)
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
