"""High-water-mark fees of a Replay Studio run: the fee domain (``fees.close_period``) applied
at the end of each period of the window, on the simulated NAV at that moment.

A period is a UTC calendar month, ISO week or day (``FeeTerms.period``); the window's last
period is closed at its last order, so a run always shows the fee its window would have
produced. No flows happen inside a simulation, so each period's only event is the NAV it
ended at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache

from vanta.domain.errors import ValidationFailed
from vanta.domain.fees import (
    MARK_STEP,
    FeeState,
    NavObservation,
    PeriodResult,
    close_period,
    parse_fee_rate,
)
from vanta.domain.money import ZERO, normalize

PERIODS = ("month", "week", "day")


def fee_nav(nav: Decimal) -> Decimal:
    """The fee domain takes NAVs of at least 0 with at most 12 places: a simulated NAV below
    zero counts as 0 and extra places are cut down (a lower NAV never overcharges)."""
    if nav <= 0:
        return ZERO
    return normalize(nav.quantize(MARK_STEP, rounding=ROUND_FLOOR))


@dataclass(frozen=True, slots=True)
class FeeTerms:
    rate: Decimal = ZERO  # the performance fee rate, 0 to 1
    hwm: Decimal | None = None  # the mark to beat at the start; None: the starting NAV
    period: str = "month"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", parse_fee_rate(self.rate))
        if self.period not in PERIODS:
            raise ValidationFailed(f"period must be one of {', '.join(PERIODS)}",
                                   code="invalid_fee_period", field="fees.period")
        if self.hwm is not None and self.hwm < 0:
            raise ValidationFailed("the high-water mark must be at least 0",
                                   code="invalid_amount", field="fees.high_water_mark")

    def to_json(self) -> dict[str, str | None]:
        return {"rate": str(self.rate), "high_water_mark": None if self.hwm is None
                else str(self.hwm), "period": self.period}


def period_label(at: datetime, period: str) -> str:
    return _label(at.date(), period)


@lru_cache(maxsize=4096)  # one label per day and period kind, asked once per order and config
def _label(day: date, period: str) -> str:
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year:04d}-{day.month:02d}"


@dataclass
class FeeClock:
    """Closes fee periods as the simulation's clock passes their ends."""

    terms: FeeTerms
    state: FeeState
    periods: list[PeriodResult] = field(default_factory=list)
    label: str | None = None  # the open period
    last_at: datetime | None = None
    last_nav: Decimal = ZERO

    def reach(self, at: datetime, nav: Decimal) -> None:
        """Time moves to ``at``; ``nav`` is the NAV after the last order before it."""
        label = period_label(at, self.terms.period)
        if self.label is not None and label != self.label:
            self._close(nav)
        self.label = label
        self.last_nav = nav

    def _close(self, nav: Decimal) -> None:
        assert self.label is not None and self.last_at is not None
        result, self.state = close_period(
            self.state, [NavObservation(self.last_at, fee_nav(nav))], self.terms.rate,
            label=self.label)
        self.periods.append(result)

    def finish(self, nav: Decimal) -> None:
        """Close the open period at the window's last order."""
        if self.label is not None and self.last_at is not None:
            self._close(nav)
            self.label = None

    @property
    def total(self) -> Decimal:
        return sum((p.fee for p in self.periods), ZERO)
