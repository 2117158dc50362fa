"""Where a tenant's brand is stored: one row per tenant, replaced whole on every change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from vanta.application.ports.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class BrandingRecord:
    tenant_id: str
    display_name: str
    accent_color: str
    logo_type: str | None
    logo_data: str | None  # base64 of the image bytes
    updated_at: datetime
    updated_by: str

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> BrandingRecord:
        return cls(r["tenant_id"], r["display_name"], r["accent_color"], r["logo_type"],
                   r["logo_data"], r["updated_at"], r["updated_by"])


class BrandingRepo(Protocol):
    async def get(self, tenant_id: str) -> BrandingRecord | None: ...

    async def put(self, row: Mapping[str, Any]) -> None:
        """Insert or replace the tenant's row."""
        ...


class BrandingUnitOfWork(UnitOfWork, Protocol):
    @property
    def branding(self) -> BrandingRepo: ...
