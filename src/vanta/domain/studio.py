"""Replay Studio: a follower-level what-if run over a vault's recorded manager orders.

Each recorded order is expanded by the engine's own code (``mirroring.expand``, under the
sizing version the order was stored with) for every configuration at once, each one a
simulated follower, on the order's recorded price, manager NAV, manager position and
overlay. What differs from the engine is only where the followers' state comes from: their
holdings, cash and NAV are the simulated ones, carried from order to order, so a sell never
exceeds what the simulated follower holds.

Accounting (exact Decimal, no rounding): the follower starts flat with ``starting_nav`` in
cash; a child fills in full at the order's recorded price (or, without one, the last price
recorded for the symbol); NAV = cash + Σ holding × last recorded price. Cash may go below
zero: the engine does not check buying power, so neither does the simulation. A child whose
symbol has no recorded price at all moves the holding (as the engine would count it) but not
the cash; it is counted in ``unpriced_fills``.

A drawdown stop pauses the simulated follower exactly as it pauses a real one: every later
order is skipped ``paused``. The NAV the protections see is the simulated one: its running
peak, and its last value before each UTC midnight (as ``navs.nav_state`` reads reported NAVs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from vanta.domain.fees import FeeState
from vanta.domain.followers import FollowerSpec
from vanta.domain.ids import FollowerId
from vanta.domain.mirroring import SIZING_VERSION, Snapshot, expand
from vanta.domain.money import ZERO, Instrument
from vanta.domain.orders import (
    POSITION_STATES,
    ChildOrder,
    ChildOrderState,
    ManagerOrder,
    Side,
)
from vanta.domain.overlays import OverlayEffect
from vanta.domain.sizing import NavState
from vanta.domain.studio_fees import FeeClock, FeeTerms, fee_nav

STUDIO_VERSION = 1
ENGINE_VERSION = f"studio-{STUDIO_VERSION}+sizing-{SIZING_VERSION}"
MAX_CONFIGS = 8
SIM_FOLLOWER = FollowerId("studio")  # the simulated follower's id inside expand()


@dataclass(frozen=True, slots=True)
class RecordedOrder:
    """One manager order as recorded: the order and the vault-wide part of its snapshot."""

    at: datetime
    order: ManagerOrder
    instrument: Instrument
    price: Decimal | None
    manager_nav: Decimal | None = None
    manager_position: Decimal = ZERO
    overlay: OverlayEffect = field(default_factory=OverlayEffect)
    sizing_version: int = SIZING_VERSION


@dataclass(frozen=True, slots=True)
class StudioConfig:
    """One configuration to try: the follower's settings and its fee terms."""

    label: str
    spec: FollowerSpec
    fees: FeeTerms = field(default_factory=FeeTerms)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one order did to one simulated (or the real) follower."""

    qty: Decimal  # the child's quantity; 0 when skipped or missing
    skip: str | None  # skip reason; "missing" for a real follower without a child
    symbol: str | None  # the child's symbol (after the follower's symbol map)
    cap_applied: bool
    fill_qty: Decimal
    fill_price: Decimal | None
    nav: Decimal  # the follower's NAV after the order


class Book:
    """Holdings, cash and the NAV history of one follower, simulated or real."""

    def __init__(self, starting_nav: Decimal, fees: FeeTerms) -> None:
        self.start = starting_nav
        self.cash = starting_nav
        self.held: dict[str, Decimal] = {}
        self.nav = starting_nav
        self.peak = starting_nav
        self.day: object = None
        self.day_start = starting_nav
        self.max_dd = ZERO  # the deepest fall from a peak, in money
        self.max_dd_ratio: tuple[Decimal, Decimal] = (ZERO, Decimal(1))  # (fall, peak)
        self.skips: Counter[str] = Counter()
        self.children = 0
        self.unpriced = 0
        self._marked = starting_nav  # NAV at the current prices, kept between before/after
        self.fees = FeeClock(fees, FeeState.open(fee_nav(starting_nav)) if fees.hwm is None
                             else FeeState(nav=fee_nav(starting_nav), hwm=fees.hwm))

    def mark(self, prices: dict[str, Decimal]) -> Decimal:
        nav = self.cash
        for sym, qty in self.held.items():
            px = prices.get(sym)
            if px is not None:
                nav += qty * px
        return nav

    def before(self, at: datetime, prices: dict[str, Decimal]) -> NavState:
        """The NAV state the protections see before an order at ``at``."""
        self.fees.reach(at, self.nav)  # a period that ended before this order closes first
        nav = self._marked = self.mark(prices)
        day = at.date()
        if day != self.day:
            self.day, self.day_start = day, self.nav  # as nav_state: the day before's last
        self.peak = max(self.peak, nav)
        return NavState(nav, self.peak, self.day_start)

    def apply(self, symbol: str, side: Side, qty: Decimal, price: Decimal | None,
              mark: Decimal | None) -> None:
        """A fill of ``qty`` at ``price``; ``mark`` is the symbol's price in the NAV."""
        if qty <= 0:
            return
        signed = qty if side is Side.BUY else -qty
        self.held[symbol] = self.held.get(symbol, ZERO) + signed
        if price is None:
            self.unpriced += 1
            return
        self.cash -= signed * price
        # the NAV moves only by the gap between the fill price and the marking price (zero
        # for a simulated fill), so it is not marked again from scratch
        self._marked += signed * ((mark if mark is not None else ZERO) - price)

    def after(self, at: datetime) -> Decimal:
        nav = self.nav = self._marked
        self.peak = max(self.peak, nav)
        fall = self.peak - nav
        self.max_dd = max(self.max_dd, fall)
        best_fall, best_peak = self.max_dd_ratio
        if self.peak > 0 and fall * best_peak > best_fall * self.peak:  # compared exactly
            self.max_dd_ratio = (fall, self.peak)
        self.fees.last_at = at
        return nav


class Simulation:
    """One configuration carried over the recorded orders, one order at a time."""

    def __init__(self, config: StudioConfig, starting_nav: Decimal, index: int = 0) -> None:
        self.config = config
        # configurations are followers "studio-0" … "studio-7" of one expansion: their ids
        # sort in configuration order
        self.spec = replace(config.spec, follower_id=FollowerId(f"{SIM_FOLLOWER}-{index}"))
        self.book = Book(starting_nav, config.fees)


def step_all(sims: Sequence[Simulation], rec: RecordedOrder,
             prices: dict[str, Decimal]) -> list[Outcome]:
    """One recorded order for every configuration: one expansion, as the engine expands an
    order for all of a vault's followers at once, each on its own holdings and NAV."""
    positions: dict[FollowerId, Decimal] = {}
    navs: dict[FollowerId, NavState] = {}
    for sim in sims:
        fid = sim.spec.follower_id
        navs[fid] = sim.book.before(rec.at, prices)
        held = sim.book.held.get(rec.order.symbol, ZERO)
        if held:
            positions[fid] = held
    snap = Snapshot(price=rec.price, positions=positions, manager_nav=rec.manager_nav,
                    manager_position=rec.manager_position, navs=navs, overlay=rec.overlay,
                    sizing_version=rec.sizing_version)
    expansion = expand(rec.order, [s.spec for s in sims], rec.instrument, snap)
    if expansion.pause:
        paused = set(expansion.pause)
        for sim in sims:
            if sim.spec.follower_id in paused:  # as the engine pauses the follower
                sim.spec = replace(sim.spec, paused=True)
    return [_settle(sim.book, rec, child, prices)
            for sim, child in zip(sims, expansion.children, strict=True)]


def _settle(book: Book, rec: RecordedOrder, child: ChildOrder,
            prices: dict[str, Decimal]) -> Outcome:
    if child.state is ChildOrderState.SKIPPED:
        book.skips[child.skip_reason or "skipped"] += 1
        return Outcome(ZERO, child.skip_reason, None, child.cap_applied, ZERO, None,
                       book.after(rec.at))
    book.children += 1
    px = prices.get(rec.order.symbol)
    book.apply(rec.order.symbol, rec.order.side, child.qty, px, px)
    return Outcome(child.qty, None, child.symbol, child.cap_applied, child.qty, px,
                   book.after(rec.at))


@dataclass(frozen=True, slots=True)
class ActualChild:
    """What the real follower recorded for one manager order."""

    qty: Decimal
    state: str
    skip_reason: str | None
    symbol: str
    cap_applied: bool
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None


# States whose child counts as held (the engine's POSITION_STATES) are filled at the recorded
# price unless the broker reported fills; the others moved nothing.
_HELD_STATES = frozenset(s.value for s in POSITION_STATES)


def actual_step(book: Book, rec: RecordedOrder, child: ActualChild | None,
                prices: dict[str, Decimal]) -> Outcome:
    """The real follower's outcome of one order, accounted like a simulated one."""
    book.before(rec.at, prices)
    if child is None:
        book.skips["missing"] += 1
        return Outcome(ZERO, "missing", None, False, ZERO, None, book.after(rec.at))
    if child.state == "skipped" or (child.state not in _HELD_STATES and child.filled_qty <= 0):
        reason = child.skip_reason or child.state
        book.skips[reason] += 1
        return Outcome(ZERO, reason, None, child.cap_applied, ZERO, None,
                       book.after(rec.at))
    book.children += 1
    mark = prices.get(rec.order.symbol)
    if child.filled_qty > 0:
        qty, px = child.filled_qty, child.avg_fill_price or mark
    else:
        qty, px = child.qty, mark
    book.apply(rec.order.symbol, rec.order.side, qty, px, mark)
    return Outcome(child.qty, None, child.symbol, child.cap_applied, qty, px,
                   book.after(rec.at))


def observe_price(prices: dict[str, Decimal], rec: RecordedOrder) -> None:
    """The market as recorded: the last price seen for each symbol."""
    if rec.price is not None:
        prices[rec.order.symbol] = rec.price
