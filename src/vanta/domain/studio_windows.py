"""How large a Replay Studio window each plan allows (Core has no Replay Studio)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vanta.domain.errors import NotEntitled

DEFAULT_LAST = 1_000  # a request naming no window replays the newest 1,000 orders
MAX_WINDOW_ORDERS = 100_000  # the most any plan allows


@dataclass(frozen=True, slots=True)
class StudioLimits:
    plan_id: str
    max_orders: int  # orders in one window
    max_days: int  # from .. to

    def _refuse(self, what: str) -> NotEntitled:
        # a plan refusal, like a vault or seat limit: 403, not a malformed request
        return NotEntitled(
            f"{what}; the {self.plan_id} plan allows windows of up to {self.max_orders} "
            f"orders and {self.max_days} days", code="window_exceeds_plan")

    def check_last(self, n: int) -> None:
        if n > self.max_orders:
            raise self._refuse(f"last {n} orders")

    def check_span(self, start: datetime, end: datetime | None, now: datetime) -> None:
        """An open end means now."""
        span = (end or now) - start
        if span > timedelta(days=self.max_days):
            raise self._refuse(f"a window of {span.days} days")

    def check_size(self, n: int) -> None:
        if n > self.max_orders:
            raise self._refuse(f"the window holds {n} orders")


PLAN_LIMITS = {
    "pro": StudioLimits("pro", max_orders=10_000, max_days=92),
    "institutional": StudioLimits("institutional", max_orders=100_000, max_days=731),
}


def limits_for(plan_id: str) -> StudioLimits:
    try:
        return PLAN_LIMITS[plan_id]
    except KeyError:
        raise NotEntitled(f"the {plan_id} plan does not include Replay Studio",
                          code="plan_lacks_feature") from None
