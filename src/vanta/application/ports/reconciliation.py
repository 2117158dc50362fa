"""What reconciliation stores and reads beyond the core unit of work: drift thresholds,
webhook followers' position reports, runs, and the two order-book reads it needs.

Implemented by ``vanta.adapters.db.reconcile_repository`` and the fake in ``tests/fakes``;
``tests/contract/test_uow_contract_reconcile.py`` runs one set of cases against both.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, Self

from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.application.ports.uow import UnitOfWork

# Manager-order sources that are not the manager's own trading: a follower's sync on
# follow, and fix-ups. Neither moves the manager's position.
NOT_MANAGER_SOURCES = ("sync", "reconcile")


@dataclass(frozen=True, slots=True)
class PositionReportRecord:
    follower_id: str
    tenant_id: str
    positions: Mapping[str, str]  # symbol -> signed quantity, as text
    as_of: datetime
    received_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(r["follower_id"], r["tenant_id"], r["positions"], r["as_of"],
                   r["received_at"])


@dataclass(frozen=True, slots=True)
class ReconcileRunRecord:
    run_id: str
    tenant_id: str
    vault_id: str
    dry_run: bool
    actor: str
    created_at: datetime
    report: Mapping[str, Any]

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(r["run_id"], r["tenant_id"], r["vault_id"], bool(r["dry_run"]), r["actor"],
                   r["created_at"], r["report"])


class ReconcileRepo(Protocol):
    async def thresholds(self, tenant_id: str, vault_id: str) -> dict[str, int]:
        """follower id -> threshold in bps; the key ``""`` is the vault's own."""
        ...

    async def set_threshold(self, *, tenant_id: str, vault_id: str, follower_id: str,
                            threshold_bps: int | None, now: datetime) -> None:
        """``follower_id`` ``""`` sets the vault's; ``None`` removes an override."""
        ...

    async def add_position_report(self, row: Mapping[str, Any]) -> None: ...

    async def latest_reports(self, follower_ids: builtins.list[str]
                             ) -> dict[str, PositionReportRecord]:
        """The newest report (by ``as_of``) of each follower that has one."""
        ...

    async def vault_symbols(self, vault_id: str
                            ) -> dict[str, tuple[Decimal, str, Decimal | None]]:
        """Every symbol the manager has traded: symbol -> (net qty, venue, last ref price),
        closed positions included (net 0); syncs and fix-ups left out."""
        ...

    async def open_book(self, vault_id: str) -> builtins.list[ChildOrderRecord]:
        """The vault's children that are in flight, acknowledged, confirmed or shadow
        (``reconciliation_book.BOOK_STATES``), without the sizing record."""
        ...

    async def all_vaults(self) -> builtins.list[tuple[str, str]]:
        """(tenant id, vault id) of every vault, for the scheduled worker."""
        ...

    async def add_run(self, row: Mapping[str, Any]) -> None: ...

    async def get_run(self, tenant_id: str, run_id: str) -> ReconcileRunRecord | None: ...


class ReconcileMetrics(Protocol):
    def record_reconcile(self, vault_id: str, max_drift_bps: float, fixups: int,
                         blocked: int) -> None:
        """One run: the largest drift seen (bps of NAV), fix-ups ordered, fix-ups blocked."""
        ...


class NoReconcileMetrics:
    def record_reconcile(self, vault_id: str, max_drift_bps: float, fixups: int,
                         blocked: int) -> None:
        pass


class ReconcileUnitOfWork(UnitOfWork, Protocol):
    @property
    def reconciliations(self) -> ReconcileRepo: ...


ReconcileUowFactory = Callable[[], ReconcileUnitOfWork]
