"""Decimal quantities and prices, and the per-instrument rounding rules.

Floats never enter: every quantity is a ``Decimal`` and every rounding is a floor to the
instrument's lot step, so a follower never receives more than its share.

Sizing is exact: a ratio is kept as a numerator and a denominator (products computed in
``EXACT``, which cannot round), and the only rounding is the final floor to the lot step,
``floor_ratio``. Dividing first would round at 28 digits, and 1,000 / 3,000 × 30 would come
out as 9.999…, one lot short after the floor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from vanta.domain.errors import ValidationFailed

ZERO = Decimal(0)
_ONE = Decimal(1)

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


# Unbounded precision: a product or difference of finite Decimals is computed exactly, and an
# integer quotient (divide_int) is exact by definition. Inexact is trapped so that a rounding
# could never pass silently. Never call ``EXACT.divide`` (1/3 would need unbounded memory).
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN,
                traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])


# ``a × b`` and ``a − b`` without rounding (bound methods: no extra call on the hot path).
exact_mul: Callable[[Decimal, Decimal], Decimal] = EXACT.multiply
exact_sub: Callable[[Decimal, Decimal], Decimal] = EXACT.subtract
_divide_int = EXACT.divide_int


def floor_ratio(num: Decimal, den: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``num / den`` (den > 0), computed exactly: the
    one rounding of a sizing. Zero when ``num <= 0``. Not normalized (see ``normalize``)."""
    if step <= 0:
        raise ValueError("lot step must be positive")
    if den <= 0:
        raise ValueError("denominator must be positive")
    if num <= 0:
        return ZERO
    # num, den and step are positive, so divide_int's truncation is the floor.
    return exact_mul(_divide_int(num, exact_mul(den, step)), step)


def floor_to_step(qty: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``qty`` (qty >= 0), exactly. Not normalized:
    callers normalize once at the end (this is the hot path of a large fan-out)."""
    return floor_ratio(qty, _ONE, step)


def ratio_str(num: Decimal, den: Decimal) -> str:
    """``num / den`` for a sizing trace: the decimal when it terminates within 28 digits,
    otherwise ``"num/den"``, so the trace never shows a rounded value as if it were exact."""
    if den == 1:
        return str(num)
    q = num / den
    if exact_mul(q, den) == num:
        return str(q)
    return f"{num}/{den}"


def normalize(d: Decimal) -> Decimal:
    """Canonical form without exponent notation: 7 stays 7, 0.50 becomes 0.5, 1E+2 is 100.
    Never rounds (the default context would round beyond 28 digits)."""
    if not d:
        return ZERO
    n = d.normalize(EXACT)
    if n == n.to_integral_value():
        return n.quantize(_ONE, context=EXACT)
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
