"""In-memory reconciliation tables (the SQL ones: ``adapters/db/repositories/reconcile.py``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes.memory_repos_base import MemRepo
from tests.fakes.memory_store import Transaction
from vanta.application.ports.reconciliation import (
    NOT_MANAGER_SOURCES,
    PositionReportRecord,
    ReconcileRunRecord,
)
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.domain.money import ZERO
from vanta.domain.reconciliation_book import BOOK_STATES

_BOOK_STATES = frozenset(s.value for s in BOOK_STATES)


def _table(name: str) -> type[MemRepo]:
    return type(f"_Mem_{name}", (MemRepo,), {"table": name})


_THRESHOLDS, _REPORTS, _RUNS, _MOS, _FOS, _VAULTS = (
    _table(n) for n in ("reconcile_thresholds", "position_reports", "reconcile_runs",
                        "manager_orders", "follower_orders", "vaults"))


class MemReconcile:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self._thresholds = _THRESHOLDS(tx)
        self._reports = _REPORTS(tx)
        self._runs = _RUNS(tx)
        self._mos = _MOS(tx)
        self._fos = _FOS(tx)
        self._vaults = _VAULTS(tx)

    async def thresholds(self, tenant_id: str, vault_id: str) -> dict[str, int]:
        return {r["follower_id"]: int(r["threshold_bps"]) for r in self._thresholds._select(
            lambda r: r["tenant_id"] == tenant_id and r["vault_id"] == vault_id)}

    async def set_threshold(self, *, tenant_id: str, vault_id: str, follower_id: str,
                            threshold_bps: int | None, now: datetime) -> None:
        def key(r: Mapping[str, Any]) -> bool:
            return r["vault_id"] == vault_id and r["follower_id"] == follower_id \
                and r["tenant_id"] == tenant_id
        if threshold_bps is None:
            await self.tx.delete("reconcile_thresholds", key)
            return
        if not await self.tx.update("reconcile_thresholds", key,
                                    {"threshold_bps": threshold_bps, "updated_at": now}):
            await self._thresholds._add({"vault_id": vault_id, "follower_id": follower_id,
                                         "tenant_id": tenant_id,
                                         "threshold_bps": threshold_bps, "updated_at": now})

    async def add_position_report(self, row: Mapping[str, Any]) -> None:
        await self._reports._add(row)

    async def latest_reports(self, follower_ids: builtins.list[str]
                             ) -> dict[str, PositionReportRecord]:
        ids = set(follower_ids)
        out: dict[str, PositionReportRecord] = {}
        for r in self._reports._select(lambda r: r["follower_id"] in ids,
                                       order=lambda r: (r["as_of"], r["id"])):
            out[r["follower_id"]] = PositionReportRecord.from_row(r)
        return out

    async def vault_symbols(self, vault_id: str
                            ) -> dict[str, tuple[Decimal, str, Decimal | None]]:
        out: dict[str, tuple[Decimal, str, Decimal | None]] = {}
        for r in self._mos._select(lambda r: r["vault_id"] == vault_id
                                   and r["source"] not in NOT_MANAGER_SOURCES,
                                   order=lambda r: (r["created_at"], r["mo_id"])):
            qty, _, px = out.get(r["symbol"], (ZERO, r["venue"], None))
            qty += r["qty"] if r["side"] == "buy" else -r["qty"]
            out[r["symbol"]] = (qty, r["venue"], r["ref_price"] or px)
        return out

    async def open_book(self, vault_id: str) -> builtins.list[ChildOrderRecord]:
        return [ChildOrderRecord.from_row(r) for r in self._fos._select(
            lambda r: r["vault_id"] == vault_id and r["state"] in _BOOK_STATES,
            order=lambda r: (r["created_at"], r["fo_id"]), leave_out=("audit",))]

    async def all_vaults(self) -> builtins.list[tuple[str, str]]:
        return sorted((r["tenant_id"], r["vault_id"]) for r in self._vaults._select())

    async def add_run(self, row: Mapping[str, Any]) -> None:
        await self._runs._add(row)

    async def get_run(self, tenant_id: str, run_id: str) -> ReconcileRunRecord | None:
        r = self._runs._first(lambda r: r["run_id"] == run_id and r["tenant_id"] == tenant_id)
        return ReconcileRunRecord.from_row(r) if r is not None else None
