"""NAV history folded into the state the risk guards read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from decimal import Decimal

from vanta.domain.errors import ValidationFailed
from vanta.domain.money import exponent_places, normalize, to_decimal
from vanta.domain.sizing import NavState


def nav_state(history: Sequence[tuple[datetime, Decimal]], asof: datetime) -> NavState | None:
    """``history`` oldest first. Peak is the highest NAV seen up to ``asof``; the day's start
    is the last NAV before midnight UTC of ``asof``'s day, else the day's first NAV."""
    seen = [(ts, nav) for ts, nav in history if ts <= asof]
    if not seen:
        return None
    midnight = datetime.combine(asof.date(), time(0), tzinfo=asof.tzinfo)
    before = [nav for ts, nav in seen if ts < midnight]
    day_start = before[-1] if before else seen[0][1]
    return NavState(nav=seen[-1][1], peak=max(nav for _, nav in seen), day_start=day_start)


def parse_nav(value: object) -> Decimal:
    nav = to_decimal(value, field="nav", code="invalid_nav")
    if nav < 0 or nav > Decimal("1e13") or exponent_places(nav) > 8:
        raise ValidationFailed("nav must be >= 0, <= 1e13, with at most 8 decimal places",
                               code="invalid_nav", field="nav")
    return normalize(nav)
