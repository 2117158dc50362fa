"""The tenant's brand (one row per tenant)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select

from vanta.adapters.db.repositories._base import _Repo
from vanta.adapters.db.tables import tenant_branding
from vanta.application.ports.branding import BrandingRecord


class BrandingRepository(_Repo):
    async def get(self, tenant_id: str) -> BrandingRecord | None:
        r = await self._one(select(tenant_branding).where(
            tenant_branding.c.tenant_id == tenant_id))
        return BrandingRecord.from_row(r) if r is not None else None

    async def put(self, row: Mapping[str, Any]) -> None:
        # delete then insert in the caller's transaction: the same statements on both
        # databases, and a PUT replaces the whole brand anyway
        await self.conn.execute(delete(tenant_branding).where(
            tenant_branding.c.tenant_id == row["tenant_id"]))
        await self.conn.execute(insert(tenant_branding).values(**row))
