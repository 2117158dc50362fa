"""Ports of cross-rail execution: venue fee models, stablecoin buffers and child legs.

``CrossRailUnitOfWork`` is the slice of the unit of work these use cases need (both the SQL
unit of work and the in-memory fake provide it). Legs are read by child order id so that any
view of an order (its DAG, its replay) can list them next to its children.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from vanta.application.ports.legs import LegRecord, LegRepo, leg_row
from vanta.application.ports.uow import AuditRepo, FollowerRepo, VaultRepo
from vanta.domain.venues import VenueFees

__all__ = ["BufferRepo", "CrossRailUnitOfWork", "LegRecord", "LegRepo", "VenueFeeRecord",
           "VenueFeeRepo", "leg_row"]


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


class CrossRailUnitOfWork(Protocol):
    @property
    def venue_fees(self) -> VenueFeeRepo: ...

    @property
    def buffers(self) -> BufferRepo: ...

    @property
    def legs(self) -> LegRepo: ...

    @property
    def vaults(self) -> VaultRepo: ...

    @property
    def followers(self) -> FollowerRepo: ...

    @property
    def audit(self) -> AuditRepo: ...

    async def __aenter__(self) -> CrossRailUnitOfWork: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...

    async def commit(self) -> None: ...
