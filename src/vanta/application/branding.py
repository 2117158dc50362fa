"""A tenant's brand: read (every role of the tenant, the follower portal shows it) and
replaced by an owner, audited with what changed (the logo by size and digest, not bytes)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from vanta.application.clock import Clock, utcnow
from vanta.application.ports.branding import BrandingRecord, BrandingUnitOfWork
from vanta.domain.branding import DEFAULT_ACCENT, LOGO_TYPES, Branding, Logo, parse_branding
from vanta.domain.errors import NotFound


def _from_record(r: BrandingRecord) -> Branding:
    logo = None
    if r.logo_type in LOGO_TYPES and r.logo_data:
        try:
            logo = Logo(r.logo_type, base64.b64decode(r.logo_data, validate=True))
        except (binascii.Error, ValueError):
            logo = None  # a damaged stored logo is shown as none rather than failing the page
    return Branding(r.display_name, r.accent_color, logo)


async def branding_of(uow: BrandingUnitOfWork, tenant_id: str) -> Branding:
    """The stored brand, or the tenant's own name with the default colour and no logo.
    Call inside an open unit of work."""
    row = await uow.branding.get(tenant_id)
    if row is not None:
        return _from_record(row)
    tenant = await uow.tenants.get(tenant_id)
    if tenant is None:
        raise NotFound("tenant not found", code="tenant_not_found")
    return Branding(tenant.name, DEFAULT_ACCENT, None)


def branding_doc(b: Branding) -> dict[str, Any]:
    return {"display_name": b.display_name, "accent_color": b.accent_color,
            "logo": b.logo.data_url() if b.logo else None}


def _summary(b: Branding) -> dict[str, Any]:
    logo = None if b.logo is None else {
        "type": b.logo.media_type, "bytes": len(b.logo.data),
        "sha256": hashlib.sha256(b.logo.data).hexdigest()}
    return {"display_name": b.display_name, "accent_color": b.accent_color, "logo": logo}


async def set_branding(uow: BrandingUnitOfWork, *, tenant_id: str, raw: object, actor: str,
                       clock: Clock = utcnow) -> Branding:
    new = parse_branding(raw)  # refused before anything is opened
    async with uow:
        before = await branding_of(uow, tenant_id)
        await uow.branding.put({
            "tenant_id": tenant_id, "display_name": new.display_name,
            "accent_color": new.accent_color,
            "logo_type": new.logo.media_type if new.logo else None,
            "logo_data": base64.b64encode(new.logo.data).decode() if new.logo else None,
            "updated_at": clock(), "updated_by": actor})
        await uow.audit.append(entity="tenant", entity_id=tenant_id, action="branding_set",
                               actor=actor, tenant_id=tenant_id,
                               payload={"before": _summary(before), "after": _summary(new)})
        await uow.commit()
    return new
