"""Decimal quantities and prices, and the per-instrument rounding rules.

Floats never enter: every quantity is a ``Decimal`` and every rounding is a floor to the
instrument's lot step, so a follower never receives more than its share.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from vanta.domain.errors import ValidationFailed

ZERO = Decimal(0)

# Bounds on what an order may carry: wide enough for any real order, narrow enough that
# arithmetic stays exact within the default 28-digit Decimal context.
MAX_QTY = Decimal("1000000000")  # 1e9 units
MAX_PRICE = Decimal("100000000")  # 1e8 per unit
MAX_SCALE = Decimal("1000")
MAX_DECIMAL_PLACES = 12


def to_decimal(value: object, *, field: str, code: str = "invalid_number") -> Decimal:
    """Parse a user-supplied number exactly; floats go through their repr, bools are refused."""
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"{field} must be a number", code=code, field=field)
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int | float | str):
        try:
            d = Decimal(str(value).strip()) if not isinstance(value, int) else Decimal(value)
        except InvalidOperation:
            raise ValidationFailed(f"{field} must be a number", code=code, field=field) from None
    else:
        raise ValidationFailed(f"{field} must be a number", code=code, field=field)
    if not d.is_finite():
        raise ValidationFailed(f"{field} must be a finite number", code=code, field=field)
    return d


def exponent_places(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return -exp if isinstance(exp, int) and exp < 0 else 0


def floor_to_step(qty: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``qty`` (qty >= 0). Not normalized: callers
    normalize once at the end (this is the hot path of a large fan-out)."""
    if step <= 0:
        raise ValueError("lot step must be positive")
    if qty <= 0:
        return ZERO
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step


_ONE = Decimal(1)


def normalize(d: Decimal) -> Decimal:
    """Canonical form without exponent notation: 7 stays 7, 0.50 becomes 0.5, 1E+2 is 100."""
    if not d:
        return ZERO
    n = d.normalize()
    if n == n.to_integral_value():
        return n.quantize(_ONE)
    return n


@dataclass(frozen=True, slots=True)
class Instrument:
    """Trading rules of one symbol at one venue."""

    symbol: str
    venue: str
    lot_step: Decimal
    min_qty: Decimal
    min_notional: Decimal = ZERO
    # Finer step offered to accounts whose broker trades fractions (None: whole lots only).
    fractional_step: Decimal | None = None

    @property
    def whole_lots(self) -> bool:
        """Integral lot step: floored quantities are already in canonical form."""
        return self.lot_step == self.lot_step.to_integral_value()

    def step_for(self, fractional: bool) -> Decimal:
        if fractional and self.fractional_step is not None:
            return self.fractional_step
        return self.lot_step

    def floor(self, qty: Decimal, fractional: bool = False) -> Decimal:
        return floor_to_step(qty, self.step_for(fractional))

    def to_json(self) -> dict[str, str | None]:
        return {"symbol": self.symbol, "venue": self.venue, "lot_step": str(self.lot_step),
                "min_qty": str(self.min_qty), "min_notional": str(self.min_notional),
                "fractional_step": None if self.fractional_step is None
                else str(self.fractional_step)}

    @classmethod
    def from_json(cls, d: dict[str, str | None]) -> Instrument:
        fs = d.get("fractional_step")
        return cls(str(d["symbol"]), str(d["venue"]), Decimal(str(d["lot_step"])),
                   Decimal(str(d["min_qty"])), Decimal(str(d.get("min_notional") or "0")),
                   None if fs is None else Decimal(fs))


CRYPTO_VENUES = frozenset({"coinbase", "binance", "kraken", "crypto"})
DEFAULT_EQUITY_STEP = Decimal(1)
DEFAULT_CRYPTO_STEP = Decimal("0.00001")


DEFAULT_FRACTIONAL_SHARE_STEP = Decimal("0.0001")


def default_instrument(symbol: str, venue: str) -> Instrument:
    """Built-in rules: whole shares (0.0001 for fractional accounts) on equity venues,
    0.00001 units with a 1 USD minimum on crypto venues."""
    if venue.lower() in CRYPTO_VENUES:
        return Instrument(symbol, venue, DEFAULT_CRYPTO_STEP, DEFAULT_CRYPTO_STEP, Decimal(1))
    return Instrument(symbol, venue, DEFAULT_EQUITY_STEP, DEFAULT_EQUITY_STEP, ZERO,
                      DEFAULT_FRACTIONAL_SHARE_STEP)
