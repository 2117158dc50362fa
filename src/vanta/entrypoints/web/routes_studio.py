"""Replay Studio page (Pro and up; vault:read or audit:read on the vault): a vault, a window,
a starting NAV and up to 8 configurations, one per line as ``vanta studio --compare`` takes
them (a scale, key=value pairs or JSON). The run is the API's (``run_studio``: stored and
audited, the user as actor); the page shows the equity curves as one chart, the summaries
side by side and the first orders of the per-order table."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from vanta.application.principal import Principal
from vanta.application.studio import (
    Window,
    config_from_text,
    parse_request,
    run_studio,
    studio_limits,
)
from vanta.domain.errors import DomainError, NotFound, ValidationFailed
from vanta.domain.studio_windows import DEFAULT_LAST
from vanta.entrypoints.api.access import require_vault, visible_vaults
from vanta.entrypoints.web.charts import line_chart
from vanta.entrypoints.web.pages import (
    NAV,
    NavItem,
    container_of,
    form_of,
    page_router,
    plain_words,
    render,
    require_page_principal,
)

router = page_router()
NAV.append(NavItem("Studio", "/app/studio",
                   lambda p: p.has_scope("vault:read") or p.has_scope("audit:read")))
ROWS_SHOWN = 300  # the page lists the first orders; the whole run is in the API's answer


def _reader(p: Principal) -> bool:
    return p.has_scope("vault:read") or p.has_scope("audit:read")


async def _vaults(request: Request, p: Principal) -> list[str]:
    c = container_of(request)
    seen = await visible_vaults(c, p)
    async with c.uow(readonly=True) as uow:
        rows = await uow.vaults.list(p.tenant_id)
    return [r.vault_id for r in rows if seen is None or r.vault_id in seen]


@router.get("/studio")
async def studio_form(request: Request) -> Response:
    p = require_page_principal(request, allow=_reader)
    await studio_limits(container_of(request).uow(readonly=True), p.tenant_id)
    form = {"configs": "0.25\n0.5", "starting_nav": "100000", "last": str(DEFAULT_LAST)}
    return render(request, "studio.html", title="Replay Studio",
                  vaults=await _vaults(request, p), form=form, result=None, error=None)


def _window(form: dict[str, str]) -> Window:
    def ts(key: str) -> datetime | None:
        v = form.get(key, "").strip()
        return datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None
    try:
        last = form.get("last", "").strip()
        return Window(ts("from"), ts("to"), int(last) if last else None)
    except ValueError:
        raise ValidationFailed("the window's dates or order count cannot be read",
                               code="invalid_window", field="window") from None


def _chart(doc: dict[str, Any]) -> Any:
    curve = doc["equity_curve"]
    points = curve["points"][1:]
    series = [(name, [(datetime.fromisoformat(pt[0]), Decimal(pt[i + 1])) for pt in points])
              for i, name in enumerate(curve["series"])]
    return line_chart(series, title="Equity after each order", unit="USD")


@router.post("/studio")
async def studio_run(request: Request) -> Response:
    p = require_page_principal(request, allow=_reader)
    c = container_of(request)
    form = await form_of(request)
    limits = await studio_limits(c.uow(readonly=True), p.tenant_id)
    vault_id = form.get("vault_id", "")
    await require_vault(c, p, vault_id)
    try:
        try:
            nav = Decimal(form.get("starting_nav", ""))
        except InvalidOperation:
            raise ValidationFailed("the starting NAV must be a number", code="invalid_nav",
                                   field="starting_nav") from None
        lines = [x for x in form.get("configs", "").splitlines() if x.strip()]
        follower = form.get("follower_id", "").strip() or None
        req = parse_request(vault_id=vault_id, window=_window(form), starting_nav=nav,
                            configs=[config_from_text(x) for x in lines], follower_id=follower)
        result = await run_studio(c.uow(), tenant_id=p.tenant_id, req=req, limits=limits,
                                  actor=p.subject, may_see_follower=p.may_see_follower)
    except NotFound:
        raise  # the vault or follower is unknown or hidden: the page answers 404, as the API
    except DomainError as e:
        return render(request, "studio.html", 422, title="Replay Studio",
                      vaults=await _vaults(request, p), form=form, result=None,
                      error=plain_words(e))
    doc = result.document
    return render(request, "studio.html", title="Replay Studio",
                  vaults=await _vaults(request, p), form=form, result=doc,
                  chart=_chart(doc), rows=doc["rows"][:ROWS_SHOWN], error=None)
