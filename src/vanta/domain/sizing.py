"""Sizing one child order: every rule, in a fixed order, and nothing else (sizing version 2).

For each follower (all quantities Decimal; the only rounding is one floor to the lot step):

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
   a cap with room for no lot at all → ``cap_exhausted``, even when the proportional
   quantity floors to zero as well (the cap takes precedence over ``below_minimum``: no
   larger share could be sent, so the cap is what the follower would have to change);
   a cap without a price → ``price_unavailable``.
5. Sells: nothing held → ``no_position``. When the manager's order closes its position (flag,
   or qty ≥ the manager's position) the follower's whole position is sold; otherwise the same
   fraction of the follower's position as the manager sells of its own; with no known manager
   position, floor(qty × scale). Never more than held; overlays and risk guards do not apply.
6. Below the instrument's minimum quantity or notional → ``below_minimum``. Never rounded up.
   Exception, by policy: an exit of the whole position is sent even when it is below the
   minimum (dust). Refusing would strand it: every later exit would meet the same minimum,
   and closing is what the follower asked for by following. The child records it in its
   trace, ``dust`` = ``below_min_qty`` or ``below_min_notional``, so a venue rejection of it
   is expected rather than a surprise.

Exactness: every ratio (NAV ratio × multiplier × overlay boost, exit fraction, cap room) is
kept as numerator and denominator, multiplied exactly, and divided once, inside the final
floor (``money.floor_ratio``). Minimum-notional checks multiply exactly too. So when the exact
share is a whole number of lots the child is exactly that, and never more than the exact share.

Version 1 (``sizing_v1``) rounded each division at 28 digits first; orders stored with it are
replayed with it. ``SIZING_VERSION`` is recorded in every new order's snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from vanta.domain.followers import FollowerSpec, ScaleMode
from vanta.domain.money import (
    EXACT,
    ZERO,
    Instrument,
    exact_mul,
    exact_sub,
    floor_ratio,
    normalize,
    ratio_str,
)
from vanta.domain.orders import ManagerOrder, Side
from vanta.domain.overlays import OverlayEffect

SIZING_VERSION = 2
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

    # The scale is the exact fraction num / den; it is divided only inside the final floor.
    if follower.scale_mode is ScaleMode.NAV_RATIO:
        if nav is None or c.manager_nav is None or c.manager_nav <= 0 or nav.nav <= 0:
            return Skipped("nav_unavailable", trace)
        num, den = exact_mul(nav.nav, follower.nav_multiplier), c.manager_nav
        trace["scale"] = ratio_str(num, den)
    else:
        num, den = follower.scale, _ONE

    if order.side is Side.SELL:
        result = _size_sell(order, follower, instrument, c, held, num, den, px, trace)
    else:
        result = _size_buy(order, follower, instrument, c, held, num, den, px, nav, trace)
    if mapped is not None and isinstance(result, Sized):
        return Sized(result.qty, result.cap_applied, result.trace, mapped)
    return result


def _size_buy(
    order: ManagerOrder, follower: FollowerSpec, instrument: Instrument, c: OrderContext,
    held: Decimal, num: Decimal, den: Decimal, px: Decimal | None, nav: NavState | None,
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
        num = exact_mul(num, boost)
        trace["overlay"] = str(boost)
    fractional = follower.fractional
    step = instrument.step_for(fractional)
    raw = exact_mul(order.qty, num)
    qty = floor_ratio(raw, den, step)
    trace["raw"] = ratio_str(raw, den)
    cap_applied = False
    # A cap with room for no lot at all applies even when the share floors to zero too, so
    # the reason is cap_exhausted (see the module docstring).
    if prot.max_order_usd is not None:
        if px is None:
            return Skipped("price_unavailable", trace)
        allowed = floor_ratio(prot.max_order_usd, px, step)
        if allowed < qty or not allowed:
            qty, cap_applied = allowed, True
            trace["order_cap"] = str(allowed)
    if follower.max_pos_usd is not None:  # only capped mode may carry one
        if px is None:
            return Skipped("price_unavailable", trace)
        # room = max_pos_usd / px − held, as one fraction: (max_pos_usd − held × px) / px
        room = exact_sub(follower.max_pos_usd, exact_mul(max(held, ZERO), px))
        allowed = floor_ratio(room, px, step)
        if allowed < qty or not allowed:
            qty, cap_applied = allowed, True
            trace["cap_room"] = str(allowed)
    if cap_applied and qty <= 0:
        return Skipped("cap_exhausted", trace)
    return _apply_minimums(qty, cap_applied, instrument, fractional, px, trace)


def _size_sell(
    order: ManagerOrder, follower: FollowerSpec, instrument: Instrument, c: OrderContext,
    held: Decimal, num: Decimal, den: Decimal, px: Decimal | None, trace: dict[str, str],
) -> SizeResult:
    if held <= 0:
        return Skipped("no_position", trace)
    mpos = c.manager_position
    fractional = follower.fractional
    if order.closes_position or (mpos > 0 and order.qty >= mpos):
        # the whole position, not a floored share of it: nothing is left behind by rounding
        trace["exit"] = "close"
        return _whole_exit(held, instrument, fractional, px, trace)
    step = instrument.step_for(fractional)
    if mpos > 0:
        trace["exit"] = f"fraction {ratio_str(order.qty, mpos)}"
        qty = floor_ratio(exact_mul(held, order.qty), mpos, step)
    else:
        qty = floor_ratio(exact_mul(order.qty, num), den, step)
    if qty >= held:
        trace["exit"] = "limited_to_held"
        return _whole_exit(held, instrument, fractional, px, trace)
    return _apply_minimums(qty, False, instrument, fractional, px, trace)


def _min_qty(instrument: Instrument, fractional: bool) -> Decimal:
    if fractional and instrument.fractional_step:
        return instrument.fractional_step
    return instrument.min_qty


def _whole_exit(
    held: Decimal, instrument: Instrument, fractional: bool, px: Decimal | None,
    trace: dict[str, str],
) -> Sized:
    """Sell everything held. Sent even below the venue minimum (policy in the module
    docstring); the trace says so."""
    if held < _min_qty(instrument, fractional):
        trace["dust"] = "below_min_qty"
    elif instrument.min_notional > 0 and px is not None and \
            exact_mul(held, px) < instrument.min_notional:
        trace["dust"] = "below_min_notional"
    return Sized(normalize(held), False, trace)


def _apply_minimums(
    qty: Decimal, cap_applied: bool, instrument: Instrument, fractional: bool,
    px: Decimal | None, trace: dict[str, str],
) -> SizeResult:
    if qty <= 0 or qty < _min_qty(instrument, fractional):
        return Skipped("below_minimum", trace)
    if instrument.min_notional > 0 and px is not None and \
            exact_mul(qty, px) < instrument.min_notional:
        return Skipped("below_minimum", trace)
    if not fractional and instrument.whole_lots and qty == qty.to_integral_value():
        return Sized(qty.quantize(_ONE, context=EXACT), cap_applied, trace)  # skip normalize
    return Sized(normalize(qty), cap_applied, trace)
