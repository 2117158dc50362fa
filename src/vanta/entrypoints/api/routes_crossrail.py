"""Routes of cross-rail execution: venue fee models, stablecoin buffers, route quotes and the
legs of a child order."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from vanta.application.crossrail import (
    buffer_json,
    effective_buffer,
    fee_models,
    put_fee_model,
    quote_route,
    set_buffer,
)
from vanta.application.principal import Principal
from vanta.domain.venues import known_venue
from vanta.entrypoints.api.access import (
    load_follower,
    require_vault,
    visible_children,
    visible_vaults,
)
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.crossrail import BufferIn, FeeModelIn, QuoteIn
from vanta.entrypoints.api.problems import ApiProblem

router = APIRouter()


@router.get("/v1/venues", tags=["venues"])
async def list_venues(container: ContainerDep,
                      p: Principal = Depends(require("vault:read"))) -> dict[str, Any]:
    async with container.uow(readonly=True) as uow:
        models = await fee_models(uow)
    return {"data": [models[v].to_json() for v in sorted(models)]}


@router.get("/v1/venues/{venue}", tags=["venues"])
async def get_venue(venue: str, container: ContainerDep,
                    p: Principal = Depends(require("vault:read"))) -> dict[str, Any]:
    name = known_venue(venue)
    async with container.uow(readonly=True) as uow:
        models = await fee_models(uow)
    return models[name].to_json()


@router.put("/v1/venues/{venue}", tags=["venues"], openapi_extra=openapi_body(FeeModelIn))
async def replace_venue_fees(venue: str, container: ContainerDep,
                             p: Annotated[Principal, Depends(require("platform:admin"))],
                             model: Annotated[FeeModelIn, body(FeeModelIn)]) -> dict[str, Any]:
    saved = await put_fee_model(container.uow(), venue=venue, raw=model.to_raw(),
                                actor=p.subject, tenant_id=p.tenant_id)
    return saved.to_json()


@router.get("/v1/vaults/{vault_id}/stablecoin-buffer", tags=["vaults"])
async def get_vault_buffer(vault_id: str, container: ContainerDep,
                           p: Principal = Depends(require("vault:read"))) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    async with container.uow(readonly=True) as uow:
        if await uow.vaults.get(p.tenant_id, vault_id) is None:
            raise ApiProblem(404, "vault_not_found", f"vault {vault_id} not found")
        amount = await uow.buffers.get(p.tenant_id, "vault", vault_id)
    return buffer_json("vault", vault_id, amount or 0, "vault" if amount is not None
                       else "none")


@router.put("/v1/vaults/{vault_id}/stablecoin-buffer", tags=["vaults"],
            openapi_extra=openapi_body(BufferIn))
async def put_vault_buffer(vault_id: str, container: ContainerDep,
                           p: Annotated[Principal, Depends(require("vault:manage"))],
                           new: Annotated[BufferIn, body(BufferIn)]) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    return await set_buffer(container.uow(), tenant_id=p.tenant_id, entity="vault",
                            entity_id=vault_id, raw=new.to_raw(), actor=p.subject)


@router.get("/v1/followers/{follower_id}/stablecoin-buffer", tags=["followers"])
async def get_follower_buffer(follower_id: str, container: ContainerDep,
                              p: Principal = Depends(require("vault:read"))) -> dict[str, Any]:
    follower = await load_follower(container, p, follower_id)
    async with container.uow(readonly=True) as uow:
        amount, source = await effective_buffer(uow, follower)
    return buffer_json("follower", follower_id, amount, source)


@router.put("/v1/followers/{follower_id}/stablecoin-buffer", tags=["followers"],
            openapi_extra=openapi_body(BufferIn))
async def put_follower_buffer(follower_id: str, container: ContainerDep,
                              p: Annotated[Principal, Depends(require("follower:manage"))],
                              new: Annotated[BufferIn, body(BufferIn)]) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    return await set_buffer(container.uow(), tenant_id=p.tenant_id, entity="follower",
                            entity_id=follower_id, raw=new.to_raw(), actor=p.subject)


@router.post("/v1/followers/{follower_id}/route-quote", tags=["followers"],
             openapi_extra=openapi_body(QuoteIn))
async def route_quote(follower_id: str, container: ContainerDep,
                      p: Annotated[Principal, Depends(require("vault:read"))],
                      quote: Annotated[QuoteIn, body(QuoteIn)]) -> dict[str, Any]:
    follower = await load_follower(container, p, follower_id)
    return await quote_route(container.uow(), tenant_id=p.tenant_id, follower=follower,
                             raw=quote.to_raw())


@router.get("/v1/follower-orders/{fo_id}/legs", tags=["orders"])
async def list_legs(fo_id: str, container: ContainerDep,
                    p: Principal = Depends(require("orders:read"))) -> dict[str, Any]:
    vaults = await visible_vaults(container, p)
    async with container.uow(readonly=True) as uow:
        child = await uow.child_orders.get(p.tenant_id, fo_id)
        if child is None or not visible_children(p, vaults, [child]):
            raise ApiProblem(404, "follower_order_not_found", f"order {fo_id} not found")
        rows = await uow.legs.for_child(fo_id)
    return {"data": [r.leg().to_json() for r in rows]}
