"""The follower portal, white-label: a follower sees only their own account (their vault,
their orders with what the manager's intent carried, P&L against fees, protections and kill
switch) under the manager tenant's name, logo and accent colour.

The kill switch and protections are shown, not changed here: the follower role holds no
``follower:manage`` grant in the API either, so the manager changes them."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from vanta.application.fees_service import fee_ledger
from vanta.entrypoints.api.access import load_follower
from vanta.entrypoints.web.pages import (
    NAV,
    NavItem,
    container_of,
    page_router,
    render,
    require_page_principal,
)
from vanta.entrypoints.web.routes_billing import _fee_chart
from vanta.entrypoints.web.routes_branding import brand_of

router = page_router()
NAV.insert(0, NavItem("My account", "/app/portal", lambda p: p.follower_id is not None))
ORDERS_SHOWN = 50


def intent(meta: dict[str, Any] | None) -> dict[str, Any]:
    """What the manager's intent carried, as the portal shows it."""
    meta = meta or {}
    conviction = meta.get("conviction") if isinstance(meta.get("conviction"), dict) else {}
    reasons = meta.get("reason_vector")
    return {"reasons": [str(r) for r in reasons] if isinstance(reasons, list) else [],
            "score": conviction.get("score"), "band": conviction.get("band"),
            "persona": conviction.get("persona")}


@router.get("/portal")
async def portal(request: Request) -> Response:
    p = require_page_principal(request, "orders:read", allow=lambda q: q.follower_id is not None)
    assert p.follower_id is not None
    c = container_of(request)
    follower = await load_follower(c, p, p.follower_id)
    async with c.uow(readonly=True) as uow:
        vault = await uow.vaults.get(p.tenant_id, follower.vault_id)
        children = await uow.child_orders.list(p.tenant_id, follower_id=p.follower_id,
                                               mo_id=None, since=None, limit=ORDERS_SHOWN)
        orders = await uow.manager_orders.get_many_unscoped({ch.mo_id for ch in children})
    rows = [{"child": ch, **intent(dict(orders[ch.mo_id].meta) if ch.mo_id in orders
                                   else None)} for ch in children]
    rows.sort(key=lambda r: r["child"].created_at, reverse=True)
    # the follower's own statement: their P&L and the fees charged on it
    ledger = await fee_ledger(c.uow(readonly=True), tenant_id=p.tenant_id,
                              follower_id=p.follower_id)
    return render(request, "portal.html", title="My account",
                  brand=await brand_of(request, p.tenant_id), follower=follower,
                  vault=vault, rows=rows, ledger=ledger,
                  protections={k: v for k, v in (follower.protections or {}).items()
                               if v not in (None, [], {}, False)},
                  chart=_fee_chart(ledger["data"]) if ledger["data"] else None)
