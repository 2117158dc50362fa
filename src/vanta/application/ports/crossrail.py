"""Ports of cross-rail execution: venue fee models, stablecoin buffers and child legs.

``CrossRailUnitOfWork`` is the slice of the unit of work these use cases need (both the SQL
unit of work and the in-memory fake provide it). Legs are read by child order id so that any
view of an order (its DAG, its replay) can list them next to its children.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from vanta.application.ports.legs import LegRecord, LegRepo, leg_row
from vanta.application.ports.uow import AuditRepo, FollowerRepo, VaultRepo
from vanta.application.ports.venue_fees import BufferRepo, VenueFeeRecord, VenueFeeRepo

__all__ = ["BufferRepo", "CrossRailUnitOfWork", "LegRecord", "LegRepo", "VenueFeeRecord",
           "VenueFeeRepo", "leg_row"]


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
