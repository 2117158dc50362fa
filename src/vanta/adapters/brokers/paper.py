"""In-process paper broker: the embedded default venue.

A small, deterministic market simulator. Given the same seed, settings, clock readings and
call sequence it produces the same prices, fills, trade ids and balances.

* **Prices** start from :attr:`PaperSettings.prices` and take one bounded random-walk step per
  tick (``volatility`` is the largest relative move per tick), rounded to ``price_increment``.
* **Time** is measured in ticks. With ``tick`` set, every call first catches up with the ticks
  that the clock says have elapsed since the broker was created; :meth:`PaperBroker.step`
  advances explicitly (tests usually set ``tick=None`` and step by hand, or pass a manual
  clock).
* **Orders** are checked when submitted (known symbol, buying power, holdings unless
  ``allow_short``) and refused with :class:`BrokerRejected` otherwise, leaving nothing behind,
  like a venue's synchronous refusal. An accepted order is split into ``fill_steps`` partial
  fills (a random count and random sizes, in lot steps) and fills one part per tick while its
  price condition holds: market orders always, limit buys at or below the limit, limit sells
  at or above it, at the current price. ``ioc`` fills at most one part then cancels the rest;
  ``fok`` fills completely on its first tick or is cancelled. With ``reject_probability`` an
  accepted order may be rejected by the "venue" on its first tick (status ``rejected``).
* **Accounting**: every fill moves the position and the cash (``fee_rate`` of the notional is
  charged on top); NAV is cash plus each position at the current price.
* **Idempotency**: a second submit with the same client order id returns the first order's ack
  (and raises ``client_order_id_conflict`` if the order differs).
* **Fault injection** for outage tests: :meth:`PaperBroker.set_outage`,
  :meth:`PaperBroker.fail_next` (the next calls raise :class:`BrokerUnavailable` and do
  nothing) and :meth:`PaperBroker.lose_next_ack` (the order *is* placed, then the answer is
  "lost" as ``BrokerUnavailable``, the case that makes idempotent retries necessary).

Nothing here is a real market: there is no order book, no market hours and no ``day`` expiry.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from vanta.application.brokers import (
    TERMINAL_ORDER_STATUSES,
    BrokerAck,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    Fill,
    OrderNotFound,
    OrderReport,
    OrderStatus,
)
from vanta.application.clock import Clock, utcnow
from vanta.domain.orders import Side, TimeInForce

ZERO = Decimal(0)
_PROBABILITY_SCALE = 1_000_000
_WALK_SCALE = 1_000_000
_MAX_CATCH_UP_TICKS = 10_000  # after a long idle spell, only the last ticks are simulated
_AVG_PRICE_QUANTUM = Decimal("1e-10")


@dataclass(frozen=True, slots=True)
class PaperSettings:
    """Everything that shapes the simulation. Money and probabilities are ``Decimal``."""

    prices: Mapping[str, Decimal]
    cash: Decimal = Decimal(100_000)
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    seed: int = 0
    volatility: Decimal = Decimal("0.002")
    tick: timedelta | None = timedelta(milliseconds=250)
    latency: timedelta = timedelta(0)
    fill_steps: tuple[int, int] = (1, 3)
    reject_probability: Decimal = ZERO
    fee_rate: Decimal = ZERO
    price_increment: Decimal = Decimal("0.01")
    lot_steps: Mapping[str, Decimal] = field(default_factory=dict)
    allow_short: bool = False

    def __post_init__(self) -> None:
        for name in ("cash", "volatility", "reject_probability", "fee_rate", "price_increment"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                raise TypeError(f"{name} must be a Decimal")
        for symbol, price in self.prices.items():
            if not isinstance(price, Decimal) or price <= 0:
                raise ValueError(f"price of {symbol} must be a positive Decimal")
        for symbol, qty in self.positions.items():
            if not isinstance(qty, Decimal):
                raise TypeError(f"position in {symbol} must be a Decimal")
        lo, hi = self.fill_steps
        if not 1 <= lo <= hi:
            raise ValueError("fill_steps must be (min, max) with 1 <= min <= max")
        if not ZERO <= self.reject_probability <= 1:
            raise ValueError("reject_probability must be within [0, 1]")
        if self.volatility < 0 or self.volatility >= 1:
            raise ValueError("volatility must be within [0, 1)")
        if self.price_increment <= 0:
            raise ValueError("price_increment must be positive")
        if self.tick is not None and self.tick <= timedelta(0):
            raise ValueError("tick must be positive (or None for manual stepping)")


@dataclass(slots=True)
class _Order:
    request: BrokerOrder
    broker_order_id: str
    submitted_at: datetime
    parts: list[Decimal]
    reject_on_first_tick: bool
    status: OrderStatus = OrderStatus.NEW
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)
    reason: str | None = None

    @property
    def open(self) -> bool:
        return self.status not in TERMINAL_ORDER_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled


class PaperBroker:
    """A :class:`~vanta.application.brokers.BrokerGateway` over a simulated market."""

    def __init__(self, settings: PaperSettings, *, clock: Clock = utcnow) -> None:
        self.settings = settings
        self._clock = clock
        self._rng = random.Random(settings.seed)
        self._prices: dict[str, Decimal] = {s.upper(): p for s, p in settings.prices.items()}
        self._positions: dict[str, Decimal] = {
            s.upper(): q for s, q in settings.positions.items() if q != 0}
        self._cash = settings.cash
        self._orders: dict[str, _Order] = {}
        self._order_seq = 0
        self._trade_seq = 0
        self._epoch = clock()
        self._ticks = 0
        self._clock_ticks = 0
        self._outage: str | None = None
        self._fail_next = 0
        self._lose_next_ack = 0
        self.submit_attempts = 0

    # ----------------------------------------------------------------- gateway

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        await self._enter()
        self.submit_attempts += 1
        existing = self._orders.get(order.client_order_id)
        if existing is not None:
            _check_same(existing.request, order)
            return self._ack(existing)
        symbol = order.symbol.upper()
        self._check_acceptable(order, symbol)
        self._order_seq += 1
        placed = _Order(
            request=order,
            broker_order_id=f"paper-{self.settings.seed}-{self._order_seq:08d}",
            submitted_at=self._now(),
            parts=self._split(order.qty, symbol),
            reject_on_first_tick=self._roll(self.settings.reject_probability),
        )
        self._orders[order.client_order_id] = placed
        if self._lose_next_ack > 0:
            self._lose_next_ack -= 1
            raise BrokerUnavailable("paper: connection reset before the answer arrived",
                                    code="ack_lost")
        return self._ack(placed)

    async def cancel(self, client_order_id: str) -> None:
        await self._enter()
        placed = self._find(client_order_id)
        if placed.open:
            placed.status = OrderStatus.CANCELED
            placed.reason = "canceled by request"

    async def order_report(self, client_order_id: str) -> OrderReport:
        await self._enter()
        return self._report(self._find(client_order_id))

    async def positions(self) -> dict[str, Decimal]:
        await self._enter()
        return {s: q for s, q in sorted(self._positions.items()) if q != 0}

    async def account_nav(self) -> Decimal:
        await self._enter()
        return self._nav()

    async def close(self) -> None:
        return None

    # ----------------------------------------------------------- test controls

    def step(self, ticks: int = 1) -> None:
        """Advance the market by ``ticks`` ticks right now, whatever the clock says."""
        for _ in range(ticks):
            self._tick(self._now())

    def set_outage(self, reason: str | None = "503 Service Unavailable") -> None:
        """While set, every call raises :class:`BrokerUnavailable`; ``None`` ends it."""
        self._outage = reason

    def fail_next(self, calls: int = 1) -> None:
        """The next ``calls`` calls raise :class:`BrokerUnavailable` without side effects."""
        self._fail_next += calls

    def lose_next_ack(self, submits: int = 1) -> None:
        """The next ``submits`` new orders are placed, but the caller gets
        :class:`BrokerUnavailable` instead of the ack (a timeout after the venue acted)."""
        self._lose_next_ack += submits

    def reject_late(self, client_order_id: str,
                    reason: str = "paper: rejected by the simulated venue") -> None:
        """The venue rejects an order it had accepted (as a risk check would)."""
        placed = self._find(client_order_id)
        if placed.open:
            placed.status = OrderStatus.REJECTED
            placed.reason = reason

    def set_price(self, symbol: str, price: Decimal) -> None:
        if not isinstance(price, Decimal) or price <= 0:
            raise ValueError("price must be a positive Decimal")
        self._prices[symbol.upper()] = price

    def price(self, symbol: str) -> Decimal:
        return self._prices[symbol.upper()]

    @property
    def cash(self) -> Decimal:
        return self._cash

    def order_count(self, client_order_id: str | None = None) -> int:
        """Orders the venue holds (for ``client_order_id`` only, when given)."""
        if client_order_id is None:
            return len(self._orders)
        return 1 if client_order_id in self._orders else 0

    # --------------------------------------------------------------- internals

    async def _enter(self) -> None:
        latency = self.settings.latency
        if latency > timedelta(0):
            await asyncio.sleep(latency.total_seconds())
        if self._outage is not None:
            raise BrokerUnavailable(f"paper: {self._outage}", code="outage", status=503)
        if self._fail_next > 0:
            self._fail_next -= 1
            raise BrokerUnavailable("paper: injected failure", code="injected", status=503)
        self._catch_up()

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    def _catch_up(self) -> None:
        tick = self.settings.tick
        if tick is None:
            return
        due = int((self._clock() - self._epoch) / tick)
        start = max(self._clock_ticks, due - _MAX_CATCH_UP_TICKS)
        for n in range(start + 1, due + 1):
            self._tick(self._epoch + tick * n)
        self._clock_ticks = max(self._clock_ticks, due)

    def _tick(self, ts: datetime) -> None:
        self._ticks += 1
        self._walk()
        for placed in list(self._orders.values()):
            if placed.open:
                self._work(placed, ts)

    def _walk(self) -> None:
        vol = self.settings.volatility
        inc = self.settings.price_increment
        for symbol in sorted(self._prices):
            draw = self._rng.randint(-_WALK_SCALE, _WALK_SCALE)
            if vol == 0:
                continue
            move = Decimal(draw) / _WALK_SCALE * vol
            price = (self._prices[symbol] * (1 + move)).quantize(inc, rounding=ROUND_HALF_EVEN)
            self._prices[symbol] = max(price, inc)

    def _work(self, placed: _Order, ts: datetime) -> None:
        request = placed.request
        if placed.reject_on_first_tick:
            placed.reject_on_first_tick = False
            placed.status = OrderStatus.REJECTED
            placed.reason = "paper: rejected by the simulated venue"
            return
        price = self._prices[request.symbol.upper()]
        marketable = (request.limit_price is None
                      or (request.side is Side.BUY and price <= request.limit_price)
                      or (request.side is Side.SELL and price >= request.limit_price))
        if request.tif is TimeInForce.FOK:
            if marketable:
                self._fill(placed, placed.remaining, price, ts)
            else:
                placed.status = OrderStatus.CANCELED
                placed.reason = "fok: not marketable"
            return
        if marketable and placed.parts:
            self._fill(placed, placed.parts.pop(0), price, ts)
        if request.tif is TimeInForce.IOC and placed.open:
            placed.status = OrderStatus.CANCELED
            placed.reason = "ioc: remainder canceled"

    def _fill(self, placed: _Order, qty: Decimal, price: Decimal, ts: datetime) -> None:
        request = placed.request
        symbol = request.symbol.upper()
        self._trade_seq += 1
        fill = Fill(trade_id=f"PT{self.settings.seed}-{self._trade_seq:010d}", qty=qty,
                    price=price, ts=ts)
        placed.fills.append(fill)
        placed.filled += qty
        placed.notional += qty * price
        notional = qty * price
        fee = (notional * self.settings.fee_rate).quantize(Decimal("0.01"))
        sign = 1 if request.side is Side.BUY else -1
        held = self._positions.get(symbol, ZERO) + sign * qty
        if held == 0:
            self._positions.pop(symbol, None)
        else:
            self._positions[symbol] = held
        self._cash -= sign * notional + fee
        if placed.filled >= request.qty:
            placed.parts.clear()
            placed.status = OrderStatus.FILLED
        else:
            placed.status = OrderStatus.PARTIALLY_FILLED

    def _check_acceptable(self, order: BrokerOrder, symbol: str) -> None:
        if symbol not in self._prices:
            raise BrokerRejected(f"paper: unknown symbol {order.symbol}", code="unknown_symbol")
        step = self.settings.lot_steps.get(symbol)
        if step is not None and order.qty % step != 0:
            raise BrokerRejected(f"paper: qty must be a multiple of {step}", code="invalid_qty")
        price = order.limit_price or self._prices[symbol]
        if order.side is Side.BUY:
            cost = order.qty * price * (1 + self.settings.fee_rate)
            if cost > self._buying_power():
                raise BrokerRejected("paper: insufficient buying power",
                                     code="insufficient_buying_power")
        elif not self.settings.allow_short:
            available = self._positions.get(symbol, ZERO) - self._reserved_sells(symbol)
            if order.qty > available:
                raise BrokerRejected(
                    f"paper: insufficient qty available (requested {order.qty}, "
                    f"available {max(available, ZERO)})", code="insufficient_qty")

    def _buying_power(self) -> Decimal:
        reserved = ZERO
        for placed in self._orders.values():
            request = placed.request
            if placed.open and request.side is Side.BUY:
                price = request.limit_price or self._prices[request.symbol.upper()]
                reserved += placed.remaining * price * (1 + self.settings.fee_rate)
        return self._cash - reserved

    def _reserved_sells(self, symbol: str) -> Decimal:
        return sum((p.remaining for p in self._orders.values()
                    if p.open and p.request.side is Side.SELL
                    and p.request.symbol.upper() == symbol), ZERO)

    def _split(self, qty: Decimal, symbol: str) -> list[Decimal]:
        lo, hi = self.settings.fill_steps
        wanted = self._rng.randint(lo, hi)
        step = self.settings.lot_steps.get(symbol) or _unit_of(qty)
        units = int(qty / step)
        if units * step != qty or units < 2 or wanted == 1:
            return [qty]
        parts = min(wanted, units)
        cuts = sorted(self._rng.sample(range(1, units), parts - 1))
        bounds = [0, *cuts, units]
        return [(bounds[i + 1] - bounds[i]) * step for i in range(parts)]

    def _roll(self, probability: Decimal) -> bool:
        draw = self._rng.randrange(_PROBABILITY_SCALE)
        return draw < int(probability * _PROBABILITY_SCALE)

    def _nav(self) -> Decimal:
        value = sum((q * self._prices[s] for s, q in self._positions.items()
                     if s in self._prices), ZERO)
        return self._cash + value

    def _find(self, client_order_id: str) -> _Order:
        placed = self._orders.get(client_order_id)
        if placed is None:
            raise OrderNotFound(f"paper: no order with client order id {client_order_id}",
                                code="not_found")
        return placed

    @staticmethod
    def _ack(placed: _Order) -> BrokerAck:
        return BrokerAck(client_order_id=placed.request.client_order_id,
                         broker_order_id=placed.broker_order_id, status=placed.status,
                         submitted_at=placed.submitted_at)

    @staticmethod
    def _report(placed: _Order) -> OrderReport:
        request = placed.request
        avg = None
        if placed.filled > 0:
            avg = (placed.notional / placed.filled).quantize(_AVG_PRICE_QUANTUM).normalize()
        return OrderReport(
            client_order_id=request.client_order_id, broker_order_id=placed.broker_order_id,
            symbol=request.symbol, side=request.side, status=placed.status, qty=request.qty,
            filled_qty=placed.filled, avg_price=avg, fills=tuple(placed.fills),
            reason=placed.reason)


def _unit_of(qty: Decimal) -> Decimal:
    """The smallest step that ``qty`` is written in: 7 -> 1, 0.25 -> 0.01."""
    exponent = qty.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return Decimal(1).scaleb(-places)


def _check_same(first: BrokerOrder, again: BrokerOrder) -> None:
    if (first.symbol.upper(), first.side, first.qty, first.limit_price) != (
            again.symbol.upper(), again.side, again.qty, again.limit_price):
        raise BrokerRejected(
            f"client order id {again.client_order_id} already names a different order",
            code="client_order_id_conflict")
