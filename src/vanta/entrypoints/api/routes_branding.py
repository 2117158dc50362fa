"""The tenant's brand (shown on its white-label pages): read by any role of the tenant,
replaced by an owner (``users:manage``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from vanta.application.branding import branding_doc, branding_of, set_branding
from vanta.application.principal import Principal
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.branding import BrandingIn

router = APIRouter()


@router.get("/v1/tenants/me/branding", tags=["tenancy"])
async def get_branding(container: ContainerDep,
                       p: Annotated[Principal, Depends(require("vault:read"))]
                       ) -> dict[str, Any]:
    async with container.uow(readonly=True) as uow:
        return branding_doc(await branding_of(uow, p.tenant_id))


@router.put("/v1/tenants/me/branding", tags=["tenancy"], openapi_extra=openapi_body(BrandingIn))
async def put_branding(container: ContainerDep,
                       p: Annotated[Principal, Depends(require("users:manage"))],
                       req: Annotated[BrandingIn, body(BrandingIn)]) -> dict[str, Any]:
    return branding_doc(await set_branding(container.uow(), tenant_id=p.tenant_id,
                                           raw=req.to_raw(), actor=p.subject))
