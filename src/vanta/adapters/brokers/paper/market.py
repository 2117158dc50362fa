"""The simulated market behind :class:`~vanta.adapters.brokers.paper.PaperBroker`.

Prices walk, orders are checked, split into parts and filled tick by tick, and every fill
moves the position and the cash. Synchronous and deterministic: the same seed, settings,
clock readings and call sequence give the same result.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from vanta.adapters.brokers.paper.orders import PaperOrder, unit_of
from vanta.adapters.brokers.paper.settings import ZERO, PaperSettings
from vanta.application.clock import Clock, utcnow
from vanta.application.ports.brokers import (
    BrokerOrder,
    BrokerRejected,
    Fill,
    OrderNotFound,
    OrderStatus,
)
from vanta.domain.orders import Side, TimeInForce

_PROBABILITY_SCALE = 1_000_000
_WALK_SCALE = 1_000_000
_MAX_CATCH_UP_TICKS = 10_000  # after a long idle spell, only the last ticks are simulated
# The USDC balance is the position in the conversion pair (bought with USD at par); pairs
# quoted in USDC (``BTC-USDC``) are paid from and into it instead of the USD cash.
USDC = "USDC-USD"
_USDC_QUOTE = "-USDC"


def _in_usdc(symbol: str) -> bool:
    return symbol.endswith(_USDC_QUOTE)


class PaperMarket:
    """Prices, orders, positions and cash of one simulated account."""

    def __init__(self, settings: PaperSettings, *, clock: Clock = utcnow) -> None:
        self.settings = settings
        self._clock = clock
        self._rng = random.Random(settings.seed)
        self._prices: dict[str, Decimal] = {s.upper(): p for s, p in settings.prices.items()}
        if any(_in_usdc(s) for s in self._prices):
            self._prices.setdefault(USDC, Decimal(1))  # USDC converts at par
        self._positions: dict[str, Decimal] = {
            s.upper(): q for s, q in settings.positions.items() if q != 0}
        self._cash = settings.cash
        self._orders: dict[str, PaperOrder] = {}
        self._order_seq = 0
        self._trade_seq = 0
        self._epoch = clock()
        self._ticks = 0
        self._clock_ticks = 0

    def step(self, ticks: int = 1) -> None:
        """Advance the market by ``ticks`` ticks right now, whatever the clock says."""
        for _ in range(ticks):
            self._tick(self._now())

    def set_price(self, symbol: str, price: Decimal) -> None:
        if not isinstance(price, Decimal) or price <= 0:
            raise ValueError("price must be a positive Decimal")
        self._prices[symbol.upper()] = price

    def price(self, symbol: str) -> Decimal:
        return self._prices[symbol.upper()]

    @property
    def cash(self) -> Decimal:
        return self._cash

    @property
    def usdc(self) -> Decimal:
        return self._positions.get(USDC, ZERO)

    def order_count(self, client_order_id: str | None = None) -> int:
        """Orders the venue holds (for ``client_order_id`` only, when given)."""
        if client_order_id is None:
            return len(self._orders)
        return 1 if client_order_id in self._orders else 0

    # ---------------------------------------------------------------- placing

    def _place(self, order: BrokerOrder) -> PaperOrder:
        """Check ``order`` and hold it (a refusal leaves nothing behind)."""
        symbol = order.symbol.upper()
        self._check_acceptable(order, symbol)
        self._order_seq += 1
        placed = PaperOrder(
            request=order,
            broker_order_id=f"paper-{self.settings.seed}-{self._order_seq:08d}",
            submitted_at=self._now(),
            parts=self._split(order.qty, symbol),
            reject_on_first_tick=self._roll(self.settings.reject_probability),
        )
        self._orders[order.client_order_id] = placed
        return placed

    def _check_acceptable(self, order: BrokerOrder, symbol: str) -> None:
        if symbol not in self._prices:
            raise BrokerRejected(f"paper: unknown symbol {order.symbol}", code="unknown_symbol")
        step = self.settings.lot_steps.get(symbol)
        if step is not None and order.qty % step != 0:
            raise BrokerRejected(f"paper: qty must be a multiple of {step}", code="invalid_qty")
        price = order.limit_price or self._prices[symbol]
        if order.side is Side.BUY:
            cost = order.qty * price * (1 + self.settings.fee_rate)
            if cost > self._buying_power(usdc=_in_usdc(symbol)):
                raise BrokerRejected("paper: insufficient buying power",
                                     code="insufficient_buying_power")
        elif not self.settings.allow_short:
            available = self._positions.get(symbol, ZERO) - self._reserved_sells(symbol)
            if order.qty > available:
                raise BrokerRejected(
                    f"paper: insufficient qty available (requested {order.qty}, "
                    f"available {max(available, ZERO)})", code="insufficient_qty")

    def _buying_power(self, *, usdc: bool = False) -> Decimal:
        """USD cash (or the USDC balance) not yet promised to open buys paid in it."""
        reserved = ZERO
        for placed in self._orders.values():
            request = placed.request
            if placed.open and request.side is Side.BUY and \
                    _in_usdc(request.symbol.upper()) == usdc:
                price = request.limit_price or self._prices[request.symbol.upper()]
                reserved += placed.remaining * price * (1 + self.settings.fee_rate)
        if usdc:
            return self.usdc - reserved - self._reserved_sells(USDC)
        return self._cash - reserved

    def _reserved_sells(self, symbol: str) -> Decimal:
        return sum((p.remaining for p in self._orders.values()
                    if p.open and p.request.side is Side.SELL
                    and p.request.symbol.upper() == symbol), ZERO)

    def _split(self, qty: Decimal, symbol: str) -> list[Decimal]:
        lo, hi = self.settings.fill_steps
        wanted = self._rng.randint(lo, hi)
        step = self.settings.lot_steps.get(symbol) or unit_of(qty)
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

    def _find(self, client_order_id: str) -> PaperOrder:
        placed = self._orders.get(client_order_id)
        if placed is None:
            raise OrderNotFound(f"paper: no order with client order id {client_order_id}",
                                code="not_found")
        return placed

    # ------------------------------------------------------------------- time

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
            if vol == 0 or symbol == USDC:
                continue
            move = Decimal(draw) / _WALK_SCALE * vol
            price = (self._prices[symbol] * (1 + move)).quantize(inc, rounding=ROUND_HALF_EVEN)
            self._prices[symbol] = max(price, inc)

    # --------------------------------------------------------------- matching

    def _work(self, placed: PaperOrder, ts: datetime) -> None:
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

    def _fill(self, placed: PaperOrder, qty: Decimal, price: Decimal, ts: datetime) -> None:
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
        if _in_usdc(symbol):
            self._positions[USDC] = self.usdc - (sign * notional + fee)
        else:
            self._cash -= sign * notional + fee
        if placed.filled >= request.qty:
            placed.parts.clear()
            placed.status = OrderStatus.FILLED
        else:
            placed.status = OrderStatus.PARTIALLY_FILLED

    def _nav(self) -> Decimal:
        value = sum((q * self._prices[s] for s, q in self._positions.items()
                     if s in self._prices), ZERO)
        return self._cash + value
