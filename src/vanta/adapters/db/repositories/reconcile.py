"""Reconciliation's tables (thresholds, position reports, runs) and its two order reads."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, update

from vanta.adapters.db.repositories._base import _Repo
from vanta.adapters.db.tables import (
    follower_orders,
    manager_orders,
    position_reports,
    reconcile_runs,
    reconcile_thresholds,
    vaults,
)
from vanta.application.ports.reconciliation import (
    NOT_MANAGER_SOURCES,
    PositionReportRecord,
    ReconcileRunRecord,
)
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.domain.money import ZERO
from vanta.domain.reconciliation_book import BOOK_STATES

_BOOK_STATES = sorted(s.value for s in BOOK_STATES)


class ReconcileRepository(_Repo):
    async def thresholds(self, tenant_id: str, vault_id: str) -> dict[str, int]:
        t = reconcile_thresholds
        rows = await self._all(select(t.c.follower_id, t.c.threshold_bps).where(
            t.c.tenant_id == tenant_id, t.c.vault_id == vault_id))
        return {r["follower_id"]: int(r["threshold_bps"]) for r in rows}

    async def set_threshold(self, *, tenant_id: str, vault_id: str, follower_id: str,
                            threshold_bps: int | None, now: datetime) -> None:
        t = reconcile_thresholds
        key = (t.c.vault_id == vault_id, t.c.follower_id == follower_id,
               t.c.tenant_id == tenant_id)
        if threshold_bps is None:
            await self.conn.execute(delete(t).where(*key))
            return
        done = await self.conn.execute(update(t).where(*key).values(
            threshold_bps=threshold_bps, updated_at=now))
        if not done.rowcount:
            await self.conn.execute(insert(t).values(
                vault_id=vault_id, follower_id=follower_id, tenant_id=tenant_id,
                threshold_bps=threshold_bps, updated_at=now))

    async def add_position_report(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(position_reports).values(**row))

    async def latest_reports(self, follower_ids: builtins.list[str]
                             ) -> dict[str, PositionReportRecord]:
        out: dict[str, PositionReportRecord] = {}
        for i in range(0, len(follower_ids), 500):
            rows = await self._all(select(position_reports).where(
                position_reports.c.follower_id.in_(follower_ids[i:i + 500]))
                .order_by(position_reports.c.as_of, position_reports.c.id))
            for r in rows:  # ascending: the last one seen is the newest
                out[r["follower_id"]] = PositionReportRecord.from_row(r)
        return out

    async def vault_symbols(self, vault_id: str
                            ) -> dict[str, tuple[Decimal, str, Decimal | None]]:
        m = manager_orders
        rows = await self._all(select(m.c.symbol, m.c.venue, m.c.side, m.c.qty, m.c.ref_price)
                               .where(m.c.vault_id == vault_id,
                                      m.c.source.not_in(NOT_MANAGER_SOURCES))
                               .order_by(m.c.created_at, m.c.mo_id))
        out: dict[str, tuple[Decimal, str, Decimal | None]] = {}
        for r in rows:
            qty, _, px = out.get(r["symbol"], (ZERO, r["venue"], None))
            qty += r["qty"] if r["side"] == "buy" else -r["qty"]
            out[r["symbol"]] = (qty, r["venue"], r["ref_price"] or px)
        return out

    async def open_book(self, vault_id: str) -> builtins.list[ChildOrderRecord]:
        cols = [c for c in follower_orders.c if c.name != "audit"]
        rows = await self._all(select(*cols).where(
            follower_orders.c.vault_id == vault_id,
            follower_orders.c.state.in_(_BOOK_STATES))
            .order_by(follower_orders.c.created_at, follower_orders.c.fo_id))
        return [ChildOrderRecord.from_row(r) for r in rows]

    async def all_vaults(self) -> builtins.list[tuple[str, str]]:
        rows = await self._all(select(vaults.c.tenant_id, vaults.c.vault_id)
                               .order_by(vaults.c.tenant_id, vaults.c.vault_id))
        return [(r["tenant_id"], r["vault_id"]) for r in rows]

    async def add_run(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(reconcile_runs).values(**row))

    async def get_run(self, tenant_id: str, run_id: str) -> ReconcileRunRecord | None:
        r = await self._one(select(reconcile_runs).where(
            reconcile_runs.c.run_id == run_id, reconcile_runs.c.tenant_id == tenant_id))
        return ReconcileRunRecord.from_row(r) if r is not None else None
