"""The in-memory tenant branding repository (``ports.branding``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.fakes.memory_repos_base import MemRepo
from vanta.application.ports.branding import BrandingRecord


class MemBranding(MemRepo):
    table = "tenant_branding"

    async def get(self, tenant_id: str) -> BrandingRecord | None:
        r = self._first(lambda r: r["tenant_id"] == tenant_id)
        return BrandingRecord.from_row(r) if r is not None else None

    async def put(self, row: Mapping[str, Any]) -> None:
        await self.tx.delete(self.table, lambda r: r["tenant_id"] == row["tenant_id"])
        await self._add(row)
