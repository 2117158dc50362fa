"""Replay Studio's reads and stored runs (SQLAlchemy Core: rows, never ORM objects).

Orders are read by keyset over (created_at, mo_id), one chunk per query, and only the parts
of each stored snapshot a simulation reads are selected: the snapshot also holds every
follower's settings, positions and NAVs, which can be large and are not needed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select

from vanta.adapters.db.repositories._base import _Repo
from vanta.adapters.db.tables import follower_orders, manager_orders, studio_runs
from vanta.application.ports.studio import OrderKey, RecordedOrderRow, StudioRunRecord
from vanta.domain.studio import ActualChild

# The snapshot keys a simulation reads (mirroring.Snapshot's vault-wide part + instrument).
SNAPSHOT_KEYS = ("price", "manager_nav", "manager_position", "overlay", "sizing_version",
                 "instrument")
_MO = manager_orders.c
_COLS = (_MO.mo_id, _MO.created_at, _MO.vault_id, _MO.client_order_id, _MO.symbol, _MO.venue,
         _MO.side, _MO.qty, _MO.tif, _MO.ref_price, _MO.closes_position)


def _key(row: Mapping[str, Any] | None) -> OrderKey | None:
    return None if row is None else (row["created_at"], row["mo_id"])


class StudioRepository(_Repo):
    def _scope(self, tenant_id: str, vault_id: str) -> Any:
        return and_(_MO.tenant_id == tenant_id, _MO.vault_id == vault_id, _MO.source != "sync")

    async def _edge(self, where: Any, newest: bool) -> OrderKey | None:
        order = (_MO.created_at.desc(), _MO.mo_id.desc()) if newest else \
            (_MO.created_at, _MO.mo_id)
        return _key(await self._one(select(_MO.created_at, _MO.mo_id).where(where)
                                    .order_by(*order).limit(1)))

    async def window(self, tenant_id: str, vault_id: str, start: datetime | None,
                     end: datetime | None) -> tuple[int, OrderKey | None, OrderKey | None]:
        where = self._scope(tenant_id, vault_id)
        if start is not None:
            where = and_(where, _MO.created_at >= start)
        if end is not None:
            where = and_(where, _MO.created_at <= end)
        n = (await self.conn.execute(select(func.count()).where(where))).scalar_one()
        if not n:
            return 0, None, None
        return int(n), await self._edge(where, False), await self._edge(where, True)

    async def last_orders(self, tenant_id: str, vault_id: str, n: int
                          ) -> tuple[int, OrderKey | None, OrderKey | None]:
        where = self._scope(tenant_id, vault_id)
        last = await self._edge(where, True)
        if last is None:
            return 0, None, None
        newest = select(_MO.created_at, _MO.mo_id).where(where) \
            .order_by(_MO.created_at.desc(), _MO.mo_id.desc()).limit(n).subquery()
        size = (await self.conn.execute(select(func.count()).select_from(newest))).scalar_one()
        first = _key(await self._one(select(newest.c.created_at, newest.c.mo_id)
                                     .order_by(newest.c.created_at, newest.c.mo_id).limit(1)))
        return int(size), first, last

    async def orders(self, tenant_id: str, vault_id: str, first: OrderKey, last: OrderKey,
                     chunk: int) -> AsyncIterator[Sequence[RecordedOrderRow]]:
        snap = [_MO.snapshot[k].label(f"snap_{k}") for k in SNAPSHOT_KEYS]
        base = select(*_COLS, *snap).where(
            self._scope(tenant_id, vault_id),
            or_(_MO.created_at < last[0], and_(_MO.created_at == last[0], _MO.mo_id <= last[1])),
        ).order_by(_MO.created_at, _MO.mo_id).limit(chunk)
        where = or_(_MO.created_at > first[0],
                    and_(_MO.created_at == first[0], _MO.mo_id >= first[1]))
        while True:
            rows = await self._all(base.where(where))
            if not rows:
                return
            yield [_recorded(r) for r in rows]
            if len(rows) < chunk:
                return
            ts, mo = rows[-1]["created_at"], rows[-1]["mo_id"]
            where = or_(_MO.created_at > ts, and_(_MO.created_at == ts, _MO.mo_id > mo))

    async def children(self, tenant_id: str, follower_id: str,
                       mo_ids: Sequence[str]) -> dict[str, ActualChild]:
        if not mo_ids:
            return {}
        fo = follower_orders.c
        rows = await self._all(select(
            fo.mo_id, fo.qty, fo.state, fo.skip_reason, fo.symbol, fo.cap_applied,
            fo.filled_qty, fo.avg_fill_price).where(
            fo.tenant_id == tenant_id, fo.follower_id == follower_id,
            self._among(fo.mo_id, mo_ids)))
        return {r["mo_id"]: ActualChild(
            qty=r["qty"], state=r["state"], skip_reason=r["skip_reason"], symbol=r["symbol"],
            cap_applied=bool(r["cap_applied"]), filled_qty=r["filled_qty"],
            avg_fill_price=r["avg_fill_price"]) for r in rows}

    async def add_run(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(studio_runs).values(**row))

    async def get_run(self, tenant_id: str, run_id: str) -> StudioRunRecord | None:
        r = await self._one(select(studio_runs).where(studio_runs.c.run_id == run_id,
                                                      studio_runs.c.tenant_id == tenant_id))
        return None if r is None else StudioRunRecord(**r)


def _recorded(r: Mapping[str, Any]) -> RecordedOrderRow:
    snapshot = {k: r[f"snap_{k}"] for k in SNAPSHOT_KEYS if r[f"snap_{k}"] is not None}
    return RecordedOrderRow(
        mo_id=r["mo_id"], created_at=r["created_at"], vault_id=r["vault_id"],
        client_order_id=r["client_order_id"], symbol=r["symbol"], venue=r["venue"],
        side=r["side"], qty=r["qty"], tif=r["tif"], ref_price=r["ref_price"],
        closes_position=bool(r["closes_position"]), snapshot=snapshot)
