"""Reconciliation: how far each follower's book has drifted from the manager's, and the
smallest set of fix-up orders that brings it back (pure; no I/O).

Target. A follower's target position in a symbol is what sizing (``sizing.size_child``)
gives for one buy of the manager's whole current position, with the follower's own rules
and the manager's NAV and price, from a flat book. So a follower mirrored order by order
has zero drift up to the floors of its individual children (at most a lot or two, far
below any sensible threshold). Guards that only hold new orders back (kill switch, pause,
drawdown stop, daily loss, the per-order cap ``max_order_usd``) do not change the target:
they block or cut the fix-up instead, with the reason recorded. The position cap
``max_pos_usd`` does bound the target, as it bounds the position.

Drift. ``held + pending − target`` in the follower's symbol (children still in flight count
as pending, so a run never orders what is already on its way), in USD at the manager's last
price, and in basis points of the follower's NAV. It is over the threshold when
``|drift_usd| × 10,000 > threshold_bps × NAV``, compared exactly (no division).

Plan. One order per symbol over its threshold, moving the position to the target: a buy of
the missing lots, floored to the lot step and cut by ``max_order_usd`` and by the cash the
broker reports (less buys in flight and buys planned before it); a sell of the excess,
never more than is held (minus sells already pending). Selling the whole position to a
target of zero is sent even below the venue minimum, as a sizing exit is. Whatever stops a
fix-up, or leaves it short of the threshold, is recorded as a ``Blocked`` with its reason;
while orders of a symbol are still in flight, a drift left over waits for them to settle
(``in_flight``): a run never stacks a second order on one not yet filled.
A follower whose positions are older than the staleness limit gets a ``stale_positions``
finding and no orders at all; a vault in maintenance is refused before planning
(``mirroring.ensure_vault_accepts_orders``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from vanta.domain.errors import ValidationFailed
from vanta.domain.followers import FollowerMode, FollowerSpec, Protections
from vanta.domain.ids import FollowerId, ManagerOrderId, VaultId
from vanta.domain.money import ZERO, Instrument, exact_mul, floor_ratio, normalize
from vanta.domain.orders import ManagerOrder, Side, TimeInForce
from vanta.domain.sizing import HUNDRED, NavState, OrderContext, Sized, size_child

BPS = Decimal(10_000)
MAX_THRESHOLD_BPS = 10_000
DEFAULT_THRESHOLD_BPS = 50
DEFAULT_STALE_AFTER = timedelta(minutes=15)

# Where a follower's positions came from.
BROKER, REPORTED, DERIVED = "broker", "reported", "derived"


@dataclass(frozen=True, slots=True)
class Holding:
    """The manager's position in one symbol, its venue and last known price."""

    symbol: str
    qty: Decimal
    venue: str
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class Book:
    """One follower as reconciliation sees it. Quantities are keyed by the follower's own
    symbol (after its symbol map)."""

    spec: FollowerSpec
    positions: Mapping[str, Decimal]
    source: str  # BROKER | REPORTED | DERIVED
    as_of: datetime | None  # when the positions were read or reported; None: derived now
    pending: Mapping[str, Decimal] = field(default_factory=dict)  # signed, in flight
    nav: NavState | None = None
    threshold_bps: int = DEFAULT_THRESHOLD_BPS
    # sells in flight (positive), part of ``pending``: what is held is not sold twice
    pending_sells: Mapping[str, Decimal] = field(default_factory=dict)
    cash: Decimal | None = None  # what buys may spend (the broker's); None: not known


@dataclass(frozen=True, slots=True)
class Drift:
    follower_id: FollowerId
    symbol: str  # the follower's symbol
    manager_symbol: str
    target: Decimal
    held: Decimal
    pending: Decimal
    qty: Decimal  # held + pending − target: positive is too much, negative too little
    usd: Decimal | None
    bps: Decimal | None  # for display, two places; decisions compare exactly
    over: bool


@dataclass(frozen=True, slots=True)
class FixUp:
    follower_id: FollowerId
    symbol: str
    manager_symbol: str
    venue: str
    side: Side
    qty: Decimal
    price: Decimal | None
    cap_applied: bool = False


@dataclass(frozen=True, slots=True)
class Blocked:
    follower_id: FollowerId
    symbol: str
    reason: str
    drift_qty: Decimal
    partial: bool = False  # a fix-up went out but leaves the drift over the threshold


@dataclass(frozen=True, slots=True)
class Finding:
    follower_id: FollowerId
    kind: str  # stale_positions
    detail: str


@dataclass(frozen=True, slots=True)
class Plan:
    drifts: tuple[Drift, ...] = ()
    fixups: tuple[FixUp, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    findings: tuple[Finding, ...] = ()


def check_threshold(value: object, field_name: str = "threshold_bps") -> int:
    """A threshold in whole basis points, 0 to 10,000."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= MAX_THRESHOLD_BPS:
        raise ValidationFailed(f"{field_name} must be a whole number of basis points from 0 "
                               f"to {MAX_THRESHOLD_BPS}", code="invalid_threshold",
                               field=field_name)
    return value


def _target_spec(spec: FollowerSpec) -> FollowerSpec:
    """The rules that shape a position, without the guards that only hold orders back."""
    p = spec.protections
    return replace(spec, kill_switch=False, paused=False, protections=Protections(
        allow_symbols=p.allow_symbols, deny_symbols=p.deny_symbols, symbol_map=p.symbol_map))


def target_qty(holding: Holding, spec: FollowerSpec, instrument: Instrument,
               manager_nav: Decimal | None, nav: NavState | None) -> Decimal | str:
    """The follower's target position in ``holding.symbol``, or why there is none."""
    p = spec.protections
    if (p.allow_symbols and holding.symbol not in p.allow_symbols) or \
            holding.symbol in p.deny_symbols:
        return "symbol_not_allowed"  # whatever it holds there is its own, even at zero
    if holding.qty <= 0:
        return ZERO
    order = ManagerOrder(mo_id=ManagerOrderId("reconcile"), vault_id=VaultId("reconcile"),
                         client_order_id="reconcile", symbol=holding.symbol,
                         venue=holding.venue, side=Side.BUY, qty=holding.qty,
                         tif=TimeInForce.DAY, ref_price=holding.price)
    flat = None if nav is None else NavState(nav.nav, nav.nav, nav.nav)
    result = size_child(order, _target_spec(spec), instrument,
                        OrderContext(holding.price, manager_nav), nav=flat)
    if isinstance(result, Sized):
        return result.qty
    if result.reason in ("below_minimum", "cap_exhausted"):
        return ZERO  # the follower's share is too small to hold, or its cap leaves no room
    return result.reason


def is_stale(book: Book, now: datetime, stale_after: timedelta) -> bool:
    return book.source != DERIVED and (book.as_of is None or now - book.as_of > stale_after)


def _stale_detail(book: Book, stale_after: timedelta) -> str:
    if book.as_of is None:
        return f"no {book.source} positions could be read"
    return f"{book.source} positions as of {book.as_of.isoformat()} are older than " \
        f"{int(stale_after.total_seconds())} s"


def _over(usd: Decimal, nav: Decimal, threshold_bps: int) -> bool:
    return exact_mul(abs(usd), BPS) > exact_mul(Decimal(threshold_bps), nav)


def _bps(usd: Decimal | None, nav: Decimal | None) -> Decimal | None:
    """For display (decisions compare exactly, in ``_over``): two places, however large."""
    if usd is None or nav is None or nav <= 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 80
        return (abs(usd) * BPS / nav).quantize(Decimal("0.01"))


def plan(holdings: Sequence[Holding], books: Sequence[Book],
         instruments: Mapping[str, Instrument], *, manager_nav: Decimal | None,
         now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER) -> Plan:
    """Drift of every follower in every symbol the vault trades, and the fix-ups.

    ``holdings`` lists every symbol the manager has traded (zero when it closed it), so a
    follower still holding a closed symbol is brought back to zero; symbols the vault never
    traded are the follower's own business and are left alone."""
    drifts: list[Drift] = []
    fixups: list[FixUp] = []
    blocked: list[Blocked] = []
    findings: list[Finding] = []
    for book in sorted(books, key=lambda b: b.spec.follower_id):
        fid = book.spec.follower_id
        if is_stale(book, now, stale_after):
            findings.append(Finding(fid, "stale_positions", _stale_detail(book, stale_after)))
            continue
        cash = _spendable(book, holdings)
        for h in sorted(holdings, key=lambda h: h.symbol):
            step = _follower_symbol(book, h, instruments[h.symbol], manager_nav, cash)
            drifts.append(step.drift)
            if step.fixup is not None:
                fixups.append(step.fixup)
                if cash is not None and step.fixup.side is Side.BUY:
                    cash -= exact_mul(step.fixup.qty, step.fixup.price or ZERO)
            if step.blocked is not None:
                blocked.append(step.blocked)
    return Plan(tuple(drifts), tuple(fixups), tuple(blocked), tuple(findings))


def _spendable(book: Book, holdings: Sequence[Holding]) -> Decimal | None:
    """The book's cash less what the buys in flight will spend."""
    if book.cash is None:
        return None
    cash = book.cash
    for h in holdings:
        sym = book.spec.protections.symbol_map.get(h.symbol, h.symbol)
        buys = book.pending.get(sym, ZERO) + book.pending_sells.get(sym, ZERO)
        if buys > 0 and h.price is not None:
            cash -= exact_mul(buys, h.price)
    return cash


@dataclass(frozen=True, slots=True)
class _Step:
    drift: Drift
    fixup: FixUp | None = None
    blocked: Blocked | None = None


def _follower_symbol(book: Book, h: Holding, instrument: Instrument,
                     manager_nav: Decimal | None, cash: Decimal | None) -> _Step:
    spec = book.spec
    fid = spec.follower_id
    sym = spec.protections.symbol_map.get(h.symbol, h.symbol)
    held = book.positions.get(sym, ZERO)
    pend = book.pending.get(sym, ZERO)
    target = target_qty(h, spec, instrument, manager_nav, book.nav)
    if isinstance(target, str):
        effective = held + pend
        drift = Drift(fid, sym, h.symbol, ZERO, held, pend, ZERO, None, None, False)
        # Nothing to measure against: only a position or an order in flight is worth a line.
        return _Step(drift, None, Blocked(fid, sym, target, ZERO) if effective else None)
    dq = held + pend - target
    usd = None if h.price is None else exact_mul(dq, h.price)
    nav = book.nav.nav if book.nav is not None and book.nav.nav > 0 else None
    if not dq:
        return _Step(Drift(fid, sym, h.symbol, target, held, pend, dq, usd, _bps(usd, nav),
                           False))
    if usd is None or nav is None:
        missing = "price_unavailable" if usd is None else "nav_unavailable"
        return _Step(Drift(fid, sym, h.symbol, target, held, pend, dq, usd, None, True),
                     None, Blocked(fid, sym, missing, dq))
    over = _over(usd, nav, book.threshold_bps)
    drift = Drift(fid, sym, h.symbol, target, held, pend, dq, usd, _bps(usd, nav), over)
    if not over:
        return _Step(drift)
    guard = _guard(spec, dq, book.nav)
    if guard is None and (pend or book.pending_sells.get(sym)):
        # orders of this symbol are still on their way and leave the drift over: wait for
        # them to settle rather than stack another order on top (e.g. a capped fix-up)
        guard = "in_flight"
    if guard is not None:
        return _Step(drift, None, Blocked(fid, sym, guard, dq))
    assert h.price is not None
    if dq < 0:
        fix, reason = _buy(spec, sym, h, instrument, -dq, cash)
    else:
        sellable = held - book.pending_sells.get(sym, ZERO)
        fix, reason = _sell(spec, sym, h, instrument, dq, sellable, target)
    if fix is None:
        return _Step(drift, None, Blocked(fid, sym, reason or "below_minimum", dq))
    rest = dq + (fix.qty if fix.side is Side.BUY else -fix.qty)
    if rest and _over(exact_mul(rest, h.price), nav, book.threshold_bps):
        return _Step(drift, fix, Blocked(fid, sym, reason or "lot_step", rest, partial=True))
    return _Step(drift, fix)


def _guard(spec: FollowerSpec, dq: Decimal, nav: NavState | None) -> str | None:
    """Why no order may go out for this drift at all."""
    if spec.mode is FollowerMode.SHADOW:
        return "shadow"
    if spec.kill_switch:
        return "kill_switch"
    if spec.paused:
        return "paused"
    p = spec.protections
    if dq < 0 and nav is not None:  # risk guards stop buys only, as in sizing
        if p.drawdown_stop_pct is not None and nav.peak > 0 and \
                (nav.peak - nav.nav) * HUNDRED >= p.drawdown_stop_pct * nav.peak:
            return "drawdown_stop"
        if p.daily_loss_limit_usd is not None and \
                nav.day_start - nav.nav >= p.daily_loss_limit_usd:
            return "daily_loss_limit"
    return None


def _min_qty(instrument: Instrument, fractional: bool) -> Decimal:
    if fractional and instrument.fractional_step:
        return instrument.fractional_step
    return instrument.min_qty


def _meets_minimums(qty: Decimal, instrument: Instrument, fractional: bool,
                    px: Decimal) -> bool:
    return qty > 0 and qty >= _min_qty(instrument, fractional) and \
        exact_mul(qty, px) >= instrument.min_notional


def _buy(spec: FollowerSpec, sym: str, h: Holding, instrument: Instrument,
         missing: Decimal, cash: Decimal | None) -> tuple[FixUp | None, str | None]:
    assert h.price is not None
    step = instrument.step_for(spec.fractional)
    qty = floor_ratio(missing, Decimal(1), step)
    cut = None
    for limit, why in ((spec.protections.max_order_usd, "max_order_usd"),
                       (cash, "insufficient_cash")):
        if limit is None:
            continue
        allowed = floor_ratio(limit, h.price, step)
        if allowed < qty:
            qty, cut = allowed, why
    if qty <= 0:
        return None, cut or "lot_step"
    if not _meets_minimums(qty, instrument, spec.fractional, h.price):
        return None, "below_minimum"
    return FixUp(spec.follower_id, sym, h.symbol, h.venue, Side.BUY, normalize(qty), h.price,
                 cut == "max_order_usd"), cut


def _sell(spec: FollowerSpec, sym: str, h: Holding, instrument: Instrument, excess: Decimal,
          sellable: Decimal, target: Decimal) -> tuple[FixUp | None, str | None]:
    """``sellable``: held, less the sells already on their way (never sold twice)."""
    assert h.price is not None
    if sellable <= 0:
        return None, "no_position"
    if target <= 0 and excess >= sellable:
        # the whole position: sent even below the minimum, like a sizing exit (dust)
        return FixUp(spec.follower_id, sym, h.symbol, h.venue, Side.SELL, normalize(sellable),
                     h.price), None if excess == sellable else "pending_buys"
    qty = floor_ratio(min(excess, sellable), Decimal(1), instrument.step_for(spec.fractional))
    if qty <= 0:
        return None, "lot_step"
    if not _meets_minimums(qty, instrument, spec.fractional, h.price):
        return None, "below_minimum"
    return FixUp(spec.follower_id, sym, h.symbol, h.venue, Side.SELL, normalize(qty),
                 h.price), None if excess <= sellable else "held_limit"
