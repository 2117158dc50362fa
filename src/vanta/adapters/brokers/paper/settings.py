"""What shapes a paper simulation: :class:`PaperSettings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

ZERO = Decimal(0)


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
