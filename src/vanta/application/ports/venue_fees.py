"""Fee models and stablecoin buffers as stored (kept apart from ``ports.crossrail`` so the
unit of work can name these repositories without an import cycle)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from vanta.domain.venues import VenueFees


@dataclass(frozen=True, slots=True)
class VenueFeeRecord:
    venue: str
    version: int
    model: Mapping[str, Any]  # VenueFees.to_json()
    updated_at: datetime
    updated_by: str

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> VenueFeeRecord:
        return cls(r["venue"], int(r["version"]), r["model"], r["updated_at"], r["updated_by"])

    def fees(self) -> VenueFees:
        return VenueFees.from_json({**self.model, "venue": self.venue, "version": self.version})


class VenueFeeRepo(Protocol):
    async def get(self, venue: str) -> VenueFeeRecord | None: ...

    async def list(self) -> builtins.list[VenueFeeRecord]: ...

    async def put(self, row: Mapping[str, Any], *, expect_version: int | None) -> bool:
        """Insert (``expect_version`` None) or replace the row stored at that version;
        False when another edit got there first."""
        ...


class BufferRepo(Protocol):
    async def get(self, tenant_id: str, entity: str, entity_id: str) -> Decimal | None: ...

    async def put(self, row: Mapping[str, Any]) -> None:
        """Upsert ``{tenant_id, entity, entity_id, amount, updated_at}``."""
        ...
