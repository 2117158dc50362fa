"""Routes for follower settings, previews, NAVs, overlays, instruments and replay."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from vanta.application.clock import utcnow
from vanta.application.followers import patch_follower
from vanta.application.manager_orders import replay_expansion
from vanta.application.navs import parse_as_of, record_nav
from vanta.application.overlays import apply_overlay, overlay_json
from vanta.application.ports.records_catalog import InstrumentRecord
from vanta.application.preview import preview_follower
from vanta.application.principal import Principal
from vanta.application.tenancy import require_feature
from vanta.domain.entitlements import Feature
from vanta.domain.errors import ValidationFailed
from vanta.domain.money import MAX_DECIMAL_PLACES, normalize
from vanta.entrypoints.api.access import (
    load_follower,
    order_not_found,
    require_vault,
    visible_order,
    visible_vaults,
)
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep, Cursor, Limit
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.base import RFC3339, positive_pattern
from vanta.entrypoints.api.models.followers import FollowerPatch, NavIn
from vanta.entrypoints.api.models.orders import SYMBOL, VENUE, Side
from vanta.entrypoints.api.models.responses import FollowerOut, InstrumentOut, NavOut, answer
from vanta.entrypoints.api.models.vaults import InstrumentIn, OverlayIn
from vanta.entrypoints.api.pagination import cursor_pair, decode, encode_pair, keyset_page
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.api.render import follower_json

router = APIRouter()
QtyParam = Annotated[str | None, Query(pattern=positive_pattern(9, MAX_DECIMAL_PLACES),
                                       description="a quantity in plain decimal notation")]
PriceParam = Annotated[str | None, Query(pattern=positive_pattern(8, MAX_DECIMAL_PLACES),
                                         description="a price in plain decimal notation")]


@router.get("/v1/followers/{follower_id}", tags=["followers"], response_model=None,
            responses=answer(FollowerOut))
async def get_follower(follower_id: str, container: ContainerDep,
                       p: Principal = Depends(require("vault:read"))) -> dict[str, Any]:
    return follower_json(await load_follower(container, p, follower_id))


@router.patch("/v1/followers/{follower_id}", tags=["followers"],
              openapi_extra=openapi_body(FollowerPatch), response_model=None,
              responses=answer(FollowerOut))
async def update_follower(follower_id: str, container: ContainerDep,
                          p: Annotated[Principal, Depends(require("follower:manage"))],
                          change: Annotated[FollowerPatch, body(FollowerPatch)]
                          ) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    row = await patch_follower(container.uow(), tenant_id=p.tenant_id,
                               follower_id=follower_id, raw=change.to_raw(), actor=p.subject,
                               vetter=container.vetter)
    return follower_json(row)


@router.get("/v1/followers/{follower_id}/preview", tags=["followers"])
async def preview(
    follower_id: str, container: ContainerDep, p: Principal = Depends(require("vault:read")),
    asof: Annotated[str | None, Query(min_length=1, pattern=RFC3339,
                                      json_schema_extra={"format": "date-time"},
                                      description="not in the future; default now")] = None,
    symbol: Annotated[str | None, Query(pattern=SYMBOL)] = None,
    side: Annotated[Side | None, Query()] = None, qty: QtyParam = None,
    ref_price: PriceParam = None, venue: Annotated[str | None, Query(pattern=VENUE)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    try:
        at = parse_as_of(asof, utcnow())
    except ValidationFailed as e:
        raise ApiProblem(422, "invalid_asof", e.message, field="asof") from None
    hypothetical = None
    if symbol is not None or side is not None or qty is not None:
        hypothetical = {k: v for k, v in {"symbol": symbol, "side": side, "qty": qty,
                                          "ref_price": ref_price, "venue": venue}.items()
                        if v is not None}
    return await preview_follower(container.uow(), tenant_id=p.tenant_id,
                                  follower_id=follower_id, asof=at,
                                  hypothetical=hypothetical, limit=limit)


@router.post("/v1/followers/{follower_id}/nav", status_code=201, tags=["followers"],
             openapi_extra=openapi_body(NavIn), response_model=None,
             responses=answer(NavOut, 201, "recorded"))
async def follower_nav(follower_id: str, container: ContainerDep,
                       p: Annotated[Principal, Depends(require("follower:manage"))],
                       nav: Annotated[NavIn, body(NavIn)]) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    return await record_nav(container.uow(), tenant_id=p.tenant_id, entity="follower",
                            entity_id=follower_id, raw=nav.to_raw(), actor=p.subject)


@router.post("/v1/vaults/{vault_id}/nav", status_code=201, tags=["vaults"],
             openapi_extra=openapi_body(NavIn), response_model=None,
             responses=answer(NavOut, 201, "recorded"))
async def vault_nav(vault_id: str, container: ContainerDep,
                    p: Annotated[Principal, Depends(require("mirror:manage"))],
                    nav: Annotated[NavIn, body(NavIn)]) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    return await record_nav(container.uow(), tenant_id=p.tenant_id, entity="vault",
                            entity_id=vault_id, raw=nav.to_raw(), actor=p.subject)


@router.post("/v1/vaults/{vault_id}/overlay", status_code=201, tags=["vaults"],
             openapi_extra=openapi_body(OverlayIn))
async def overlay(vault_id: str, container: ContainerDep,
                  p: Annotated[Principal, Depends(require("mirror:manage"))],
                  req: Annotated[OverlayIn, body(OverlayIn)]) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    result = await apply_overlay(container.uow(), tenant_id=p.tenant_id, vault_id=vault_id,
                                 raw=req.to_raw(), actor=p.subject)
    if result.get("maintenance") == {"enabled": False}:
        container.outbox_written.set()  # held deliveries may go now
    return result


@router.get("/v1/vaults/{vault_id}/overlays", tags=["vaults"])
async def overlays(vault_id: str, container: ContainerDep,
                   p: Principal = Depends(require("vault:read")),
                   limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    after = decode(cursor)
    async with container.uow(readonly=True) as uow:
        if await uow.vaults.get(p.tenant_id, vault_id) is None:
            raise ApiProblem(404, "vault_not_found", f"vault {vault_id} not found")
        rows = await uow.overlays.page(p.tenant_id, vault_id, after, limit + 1)
    return keyset_page(rows, limit, [overlay_json(x) for x in rows[:limit]],
                       lambda x: (x.applied_at, x.overlay_id))


@router.put("/v1/instruments/{venue}/{symbol}", tags=["instruments"],
            openapi_extra=openapi_body(InstrumentIn), response_model=None,
            responses=answer(InstrumentOut))
async def put_instrument(venue: str, symbol: str, container: ContainerDep,
                         p: Annotated[Principal, Depends(require("platform:admin"))],
                         rules: Annotated[InstrumentIn, body(InstrumentIn)]) -> dict[str, Any]:
    row = _instrument_row(venue.lower(), symbol.upper(), rules)
    async with container.uow() as uow:
        await uow.instruments.upsert(row)
        await uow.audit.append(entity="instrument", entity_id=f"{row['venue']}:"
                               f"{row['symbol']}", action="upserted", actor=p.subject,
                               tenant_id=p.tenant_id,
                               payload={k: str(v) for k, v in row.items()
                                        if k != "updated_at"})
        await uow.commit()
    return _instrument_json(InstrumentRecord.from_row(row))


@router.get("/v1/instruments", tags=["instruments"])
async def list_instruments(container: ContainerDep,
                           p: Principal = Depends(require("vault:read")),
                           limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    after = cursor_pair(cursor)
    async with container.uow(readonly=True) as uow:
        rows = await uow.instruments.page(after, limit + 1)
    more = len(rows) > limit
    return {"data": [_instrument_json(x) for x in rows[:limit]],
            "next_cursor": encode_pair(rows[limit - 1].venue, rows[limit - 1].symbol)
            if more else None}


@router.get("/v1/manager-orders/{mo_id}/replay", tags=["audit"])
async def replay(mo_id: str, container: ContainerDep,
                 p: Principal = Depends(require("audit:read"))) -> dict[str, Any]:
    async with container.uow(readonly=True) as uow:
        await require_feature(uow, p.tenant_id, Feature.REPLAY_DASHBOARDS)
        mo = await uow.manager_orders.get(p.tenant_id, mo_id)
    # hidden answers exactly like unknown: never name the order's vault
    if not visible_order(p, await visible_vaults(container, p), mo):
        raise order_not_found(mo_id)
    expansion = await replay_expansion(container.uow(), tenant_id=p.tenant_id,
                                       mo_id=mo_id)
    async with container.uow(readonly=True) as uow:
        stored = await uow.child_orders.list(p.tenant_id, follower_id=None, mo_id=mo_id,
                                             since=None, limit=1_000_000)
    # a follower-scoped token compares its own child only (the count is the book's size)
    by_id = {c.fo_id: c for c in stored if p.may_see_follower(c.follower_id)}
    replayed = [c for c in expansion.children if p.may_see_follower(c.follower_id)]
    diffs = []
    for c in replayed:
        s = by_id.pop(c.fo_id, None)
        if s is None or s.qty != c.qty or s.symbol != c.symbol or \
                s.cap_applied != c.cap_applied or s.skip_reason != c.skip_reason:
            diffs.append({"fo_id": c.fo_id, "replayed_qty": str(c.qty),
                          "stored_qty": None if s is None else str(s.qty)})
    diffs.extend({"fo_id": k, "replayed_qty": None, "stored_qty": str(v.qty)}
                 for k, v in by_id.items())
    return {"mo_id": mo_id, "matches": not diffs, "children": len(replayed),
            "differences": diffs}


def _instrument_row(venue: str, symbol: str, rules: InstrumentIn) -> dict[str, Any]:
    lot = normalize(rules.lot_step)
    frac = None if rules.fractional_step is None else normalize(rules.fractional_step)
    if frac is not None and frac > lot:
        raise ValidationFailed("fractional_step must not exceed lot_step",
                               code="invalid_instrument", field="fractional_step")
    return {"symbol": symbol, "venue": venue, "lot_step": lot,
            "min_qty": normalize(rules.min_qty) if rules.min_qty else lot,
            "min_notional": normalize(rules.min_notional) if rules.min_notional
            else Decimal(0),
            "fractional_step": frac, "updated_at": datetime.now().astimezone()}


def _instrument_json(rec: InstrumentRecord) -> dict[str, Any]:
    return {"symbol": rec.symbol, "venue": rec.venue, "lot_step": str(rec.lot_step),
            "min_qty": str(rec.min_qty), "min_notional": str(rec.min_notional),
            "fractional_step": None if rec.fractional_step is None
            else str(rec.fractional_step)}
