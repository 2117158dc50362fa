"""Operations dashboard (owner and ops): dispatch latency P50/P95, error rate, retries and
dead letters over the last hours, as server-side SVG charts."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from vanta.application.clock import utcnow
from vanta.application.ops_series import dispatch_series
from vanta.entrypoints.web.charts import line_chart
from vanta.entrypoints.web.pages import (
    container_of,
    has_role,
    page_router,
    render,
    require_page_principal,
)

router = page_router()
WINDOWS = {"1": timedelta(hours=1), "6": timedelta(hours=6), "24": timedelta(hours=24)}


@router.get("/operations")
async def operations(request: Request, hours: str = "6") -> Response:
    p = require_page_principal(request, "orders:read", allow=has_role("owner", "ops"))
    c = container_of(request)
    window = WINDOWS.get(hours, WINDOWS["6"])
    series = await dispatch_series(c.uow(readonly=True, lag_ok=True), tenant_id=p.tenant_id,
                                   now=utcnow(), window=window)
    total = sum(b.attempts for b in series)
    charts = []
    span = (series[0].start, series[-1].start)
    if total or any(b.dead_letters for b in series):
        def pts(attr: str, scale: float = 1) -> list[tuple]:  # type: ignore[type-arg]
            return [(b.start, getattr(b, attr) * scale) for b in series
                    if getattr(b, attr) is not None]
        charts = [
            line_chart([("P50", pts("p50_ms")), ("P95", pts("p95_ms"))],
                       title="Dispatch latency (ms)", unit="ms", x_range=span),
            line_chart([("errors", pts("error_rate", 100))], title="Error rate (%)",
                       unit="%", x_range=span),
            line_chart([("retries", pts("retries"))], title="Retries per interval", x_range=span),
            line_chart([("dead letters", pts("dead_letters"))],
                       title="Dead letters per interval", x_range=span),
        ]
    return render(request, "operations.html", title="Operations", charts=charts,
                  series=series, total=total, hours=hours if hours in WINDOWS else "6",
                  windows=list(WINDOWS))
