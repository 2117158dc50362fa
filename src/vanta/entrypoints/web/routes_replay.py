"""Replay dashboard (Pro and up, scope audit:read): an order's replay check (the API's own
replay route, called with the user's grants), the audit chain's status, and a follower's
timeline of everything that happened to it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from vanta.application.clock import utcnow
from vanta.application.principal import Principal
from vanta.application.tenancy import require_feature
from vanta.domain.audit import verify_chain
from vanta.domain.audit_batch import batches_problems
from vanta.domain.entitlements import Feature
from vanta.entrypoints.api.access import load_follower, visible_vaults
from vanta.entrypoints.api.routes_mirroring import replay as api_replay
from vanta.entrypoints.web.pages import (
    container_of,
    page_router,
    render,
    require_page_principal,
)

router = page_router()
TIMELINE = 200


async def _chain_status(request: Request, p: Principal) -> dict[str, Any]:
    c = container_of(request)
    async with c.uow(readonly=True) as uow:
        events = await uow.audit.all()
        leaves = await uow.audit.all_leaves()
    # The chain spans every tenant: the page says whether it holds, and nothing about other
    # tenants' events (neither their number nor where a break is).
    intact = verify_chain(events) is None and not batches_problems(events, leaves)
    return {"intact": intact, "checked_at": utcnow()}


async def _timeline(request: Request, p: Principal, follower_id: str) -> list[dict[str, Any]]:
    c = container_of(request)
    await load_follower(c, p, follower_id)  # 404 for a follower the user may not see
    vaults = await visible_vaults(c, p)
    async with c.uow(readonly=True) as uow:
        events = await uow.audit.for_entity(p.tenant_id, follower_id)
        children = await uow.child_orders.list(p.tenant_id, follower_id=follower_id,
                                               mo_id=None, since=None, limit=TIMELINE,
                                               vault_ids=vaults)
    items = [{"ts": e.ts, "what": e.action.replace("_", " "), "who": e.actor,
              "detail": ", ".join(sorted((e.payload or {}).get("changed", []))),
              "link": None} for e in events]
    items += [{"ts": ch.created_at.isoformat(), "what": f"child order {ch.state.value}",
               "who": "dispatcher", "detail": f"{ch.side.value} {ch.qty} {ch.symbol}"
               + (f" ({ch.skip_reason})" if ch.skip_reason else ""),
               "link": f"/app/orders/{ch.mo_id}"} for ch in children]
    items.sort(key=lambda i: str(i["ts"]), reverse=True)
    return items[:TIMELINE]


@router.get("/replay")
async def replay(request: Request, mo_id: str = "", follower_id: str = "") -> Response:
    p = require_page_principal(request, "audit:read")
    c = container_of(request)
    async with c.uow(readonly=True) as uow:
        # the plan's refusal, with its reason, before anything is read (as the API does)
        await require_feature(uow, p.tenant_id, Feature.REPLAY_DASHBOARDS)
    check = await api_replay(mo_id, c, p) if mo_id else None
    timeline = await _timeline(request, p, follower_id) if follower_id else None
    return render(request, "replay.html", title="Replay", mo_id=mo_id,
                  follower_id=follower_id, check=check, timeline=timeline,
                  chain=await _chain_status(request, p))
