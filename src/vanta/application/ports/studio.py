"""What Replay Studio reads and writes: a vault's recorded manager orders, streamed in
chunks; a real follower's recorded children; stored runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self

from vanta.application.ports.billing import AuditLog
from vanta.application.ports.records_catalog import FollowerRecord, VaultRecord
from vanta.domain.studio import ActualChild

OrderKey = tuple[datetime, str]  # (created_at, mo_id): the recorded order of manager orders


@dataclass(frozen=True, slots=True)
class RecordedOrderRow:
    """A manager order's columns as stored; ``snapshot`` is its stored sizing snapshot."""

    mo_id: str
    created_at: datetime
    vault_id: str
    client_order_id: str
    symbol: str
    venue: str
    side: str
    qty: Decimal
    tif: str
    ref_price: Decimal | None
    closes_position: bool
    snapshot: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StudioRunRecord:
    run_id: str
    tenant_id: str
    vault_id: str
    follower_id: str | None  # the real follower compared, if any
    actor: str
    created_at: datetime
    request: Mapping[str, Any]
    engine_version: str
    output_sha256: str
    output: str  # the sealed answer's canonical JSON


class StudioRecords(Protocol):
    """Reads skip ``sync`` orders: they were made for one follower, not by the manager."""

    async def window(self, tenant_id: str, vault_id: str, start: datetime | None,
                     end: datetime | None) -> tuple[int, OrderKey | None, OrderKey | None]:
        """How many orders ``start <= created_at <= end`` holds, its first and last key."""
        ...

    async def last_orders(self, tenant_id: str, vault_id: str, n: int
                          ) -> tuple[int, OrderKey | None, OrderKey | None]:
        """The window of the newest ``n`` orders: its size, first and last key."""
        ...

    def orders(self, tenant_id: str, vault_id: str, first: OrderKey, last: OrderKey,
               chunk: int) -> AsyncIterator[Sequence[RecordedOrderRow]]:
        """Orders from ``first`` to ``last`` (both included) in recorded order, ``chunk``
        at a time: one chunk in memory, never the window."""
        ...

    async def children(self, tenant_id: str, follower_id: str,
                       mo_ids: Sequence[str]) -> dict[str, ActualChild]:
        """The follower's recorded child of each of ``mo_ids`` that has one."""
        ...

    async def add_run(self, row: Mapping[str, Any]) -> None: ...

    async def get_run(self, tenant_id: str, run_id: str) -> StudioRunRecord | None: ...


class Vaults(Protocol):
    async def get(self, tenant_id: str, vault_id: str) -> VaultRecord | None: ...


class Followers(Protocol):
    async def get(self, tenant_id: str, follower_id: str) -> FollowerRecord | None: ...


class StudioUnitOfWork(Protocol):
    """The slice of the unit of work Replay Studio uses."""

    @property
    def studio(self) -> StudioRecords: ...

    @property
    def vaults(self) -> Vaults: ...

    @property
    def followers(self) -> Followers: ...

    @property
    def audit(self) -> AuditLog: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...
