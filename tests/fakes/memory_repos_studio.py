"""In-memory Replay Studio reads and runs (the SQL ones: ``adapters/db/repositories/studio.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from tests.fakes.memory_repos_base import MemRepo
from tests.fakes.memory_schema import SCHEMA
from tests.fakes.memory_store import Row, load_row, utc
from vanta.application.ports.studio import OrderKey, RecordedOrderRow, StudioRunRecord
from vanta.domain.studio import ActualChild

_KEYS = ("price", "manager_nav", "manager_position", "overlay", "sizing_version",
         "instrument")


def _key(r: Row) -> OrderKey:
    return (utc(r["created_at"]), r["mo_id"])


class MemStudio(MemRepo):
    table = "manager_orders"

    def _vault(self, tenant_id: str, vault_id: str) -> list[Row]:
        return self._select(lambda r: r["tenant_id"] == tenant_id and r["vault_id"] == vault_id
                            and r["source"] != "sync", order=_key)

    async def window(self, tenant_id: str, vault_id: str, start: datetime | None,
                     end: datetime | None) -> tuple[int, OrderKey | None, OrderKey | None]:
        rows = [r for r in self._vault(tenant_id, vault_id)
                if (start is None or utc(r["created_at"]) >= utc(start))
                and (end is None or utc(r["created_at"]) <= utc(end))]
        if not rows:
            return 0, None, None
        return len(rows), _key(rows[0]), _key(rows[-1])

    async def last_orders(self, tenant_id: str, vault_id: str, n: int
                          ) -> tuple[int, OrderKey | None, OrderKey | None]:
        rows = self._vault(tenant_id, vault_id)[-n:]
        if not rows:
            return 0, None, None
        return len(rows), _key(rows[0]), _key(rows[-1])

    async def orders(self, tenant_id: str, vault_id: str, first: OrderKey, last: OrderKey,
                     chunk: int) -> AsyncIterator[Sequence[RecordedOrderRow]]:
        rows = [r for r in self._vault(tenant_id, vault_id)
                if (utc(first[0]), first[1]) <= _key(r) <= (utc(last[0]), last[1])]
        for i in range(0, len(rows), chunk):
            yield [_recorded(r) for r in rows[i:i + chunk]]

    async def children(self, tenant_id: str, follower_id: str,
                       mo_ids: Sequence[str]) -> dict[str, ActualChild]:
        wanted = set(mo_ids)
        rows = list(self.tx.scan("follower_orders", lambda r: r["tenant_id"] == tenant_id
                                 and r["follower_id"] == follower_id and r["mo_id"] in wanted))
        return {r["mo_id"]: ActualChild(
            qty=r["qty"], state=r["state"], skip_reason=r["skip_reason"], symbol=r["symbol"],
            cap_applied=bool(r["cap_applied"]), filled_qty=r["filled_qty"],
            avg_fill_price=r["avg_fill_price"]) for r in rows}

    async def add_run(self, row: Mapping[str, Any]) -> None:
        await self.tx.insert("studio_runs", [row], self.conflict)

    async def get_run(self, tenant_id: str, run_id: str) -> StudioRunRecord | None:
        rows = [r for r in self.tx.scan("studio_runs", lambda r: r["run_id"] == run_id
                                        and r["tenant_id"] == tenant_id)]
        if not rows:
            return None
        r = load_row(SCHEMA["studio_runs"], rows[0])
        r["created_at"] = utc(r["created_at"])
        return StudioRunRecord(**r)


def _recorded(r: Row) -> RecordedOrderRow:
    snap = r["snapshot"] or {}
    return RecordedOrderRow(
        mo_id=r["mo_id"], created_at=utc(r["created_at"]), vault_id=r["vault_id"],
        client_order_id=r["client_order_id"], symbol=r["symbol"], venue=r["venue"],
        side=r["side"], qty=r["qty"], tif=r["tif"], ref_price=r["ref_price"],
        closes_position=bool(r["closes_position"]),
        snapshot={k: snap[k] for k in _KEYS if snap.get(k) is not None})
