"""In-memory manager orders, child orders and fills (the SQL ones:
``adapters/db/repositories/orders.py``)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes.memory_repos_base import MemRepo, nulls_first
from tests.fakes.memory_store import Row, after, utc
from tests.fakes.memory_store import after as keyset_after
from vanta.application.ports.delivery import ChildMove
from vanta.application.ports.reconciliation import NOT_MANAGER_SOURCES
from vanta.application.ports.records_orders import (
    ChildOrderRecord,
    FillRecord,
    ManagerOrderRecord,
)
from vanta.domain.money import ZERO
from vanta.domain.orders import POSITION_STATES, ChildOrder


def _signed(r: Row) -> Decimal:
    q: Decimal = r["qty"]
    return q if r["side"] == "buy" else -q


def _page(r: Row, *, id_col: str, since: datetime | None,
          after_key: tuple[datetime, str] | None, vault_ids: frozenset[str] | None) -> bool:
    if vault_ids is not None and r["vault_id"] not in vault_ids:
        return False
    if since is not None and not r["created_at"] > utc(since):
        return False
    return after_key is None or after(after_key[0], after_key[1], r["created_at"], r[id_col])


class MemManagerOrders(MemRepo):
    table = "manager_orders"

    async def add(self, row: Mapping[str, Any]) -> None:
        await self._add(row)

    async def get(self, tenant_id: str, mo_id: str) -> ManagerOrderRecord | None:
        r = self._first(lambda r: r["mo_id"] == mo_id and r["tenant_id"] == tenant_id)
        return ManagerOrderRecord.from_row(r) if r is not None else None

    async def get_unscoped(self, mo_id: str) -> ManagerOrderRecord | None:
        r = self._first(lambda r: r["mo_id"] == mo_id)
        return ManagerOrderRecord.from_row(r) if r is not None else None

    async def get_many_unscoped(self, mo_ids: Iterable[str]) -> dict[str, ManagerOrderRecord]:
        rows = self._by_key("mo_id", mo_ids, leave_out=("snapshot",))
        return {k: ManagerOrderRecord.from_row(r) for k, r in rows.items()}

    async def list(self, tenant_id: str, since: datetime | None, limit: int,
                   vault_id: str | None = None,
                   after: tuple[datetime, str] | None = None,
                   vault_ids: Iterable[str] | None = None, with_snapshot: bool = True
                   ) -> builtins.list[ManagerOrderRecord]:
        among = frozenset(vault_ids) if vault_ids is not None else None
        return [ManagerOrderRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id
            and (vault_id is None or r["vault_id"] == vault_id)
            and _page(r, id_col="mo_id", since=since, after_key=after, vault_ids=among),
            order=lambda r: (r["created_at"], r["mo_id"]), limit=limit,
            leave_out=() if with_snapshot else ("snapshot",))]

    async def net_position(self, vault_id: str, symbol: str) -> Decimal:
        total = ZERO
        for r in self._select(lambda r: r["vault_id"] == vault_id and r["symbol"] == symbol
                              and r["source"] not in NOT_MANAGER_SOURCES):
            total += _signed(r)
        return total

    async def holdings(self, vault_id: str) -> dict[str, tuple[Decimal, str, Decimal | None]]:
        out: dict[str, tuple[Decimal, str, Decimal | None]] = {}
        for r in self._select(lambda r: r["vault_id"] == vault_id
                              and r["source"] not in NOT_MANAGER_SOURCES,
                              order=lambda r: r["created_at"]):
            qty, _, px = out.get(r["symbol"], (ZERO, r["venue"], None))
            out[r["symbol"]] = (qty + _signed(r), r["venue"], r["ref_price"] or px)
        return {k: v for k, v in out.items() if v[0] > 0}

    async def reopen(self, mo_id: str) -> None:
        await self.tx.update(self.table, lambda r: r["mo_id"] == mo_id
                             and r["state"] == "completed", {"state": "expanded"})

    async def set_state(self, mo_id: str, state: str) -> None:
        await self.tx.update(self.table, lambda r: r["mo_id"] == mo_id, {"state": state})


class MemChildOrders(MemRepo):
    table = "follower_orders"

    async def add_many(self, children: Sequence[ChildOrder], *, tenant_id: str, vault_id: str,
                       now: datetime) -> None:
        await self.tx.insert(self.table, [
            {"fo_id": c.fo_id, "mo_id": c.mo_id, "follower_id": c.follower_id,
             "tenant_id": tenant_id, "vault_id": vault_id, "symbol": c.symbol,
             "venue": c.venue, "side": c.side.value, "qty": c.qty,
             "cap_applied": c.cap_applied, "state": c.state.value,
             "skip_reason": c.skip_reason, "dispatch_attempts": 0, "last_error": None,
             "audit": {"sizing": c.sizing}, "created_at": now, "updated_at": now}
            for c in children], self.conflict)

    async def positions(self, follower_ids: Iterable[str],
                        symbols: Iterable[str]) -> dict[tuple[str, str], Decimal]:
        ids, syms = set(follower_ids), set(symbols)
        counted = {s.value for s in POSITION_STATES}
        out: dict[tuple[str, str], Decimal] = {}
        for r in self._select(lambda r: r["follower_id"] in ids and r["symbol"] in syms
                              and r["state"] in counted):
            key = (r["follower_id"], r["symbol"])
            out[key] = out.get(key, ZERO) + _signed(r)
        return out

    async def get(self, tenant_id: str, fo_id: str) -> ChildOrderRecord | None:
        r = self._first(lambda r: r["fo_id"] == fo_id and r["tenant_id"] == tenant_id)
        return ChildOrderRecord.from_row(r) if r is not None else None

    async def get_unscoped(self, fo_id: str) -> ChildOrderRecord | None:
        r = self._first(lambda r: r["fo_id"] == fo_id)
        return ChildOrderRecord.from_row(r) if r is not None else None

    async def list(self, tenant_id: str, *, follower_id: str | None, mo_id: str | None,
                   since: datetime | None, limit: int,
                   after: tuple[datetime, str] | None = None,
                   vault_ids: Iterable[str] | None = None
                   ) -> builtins.list[ChildOrderRecord]:
        among = frozenset(vault_ids) if vault_ids is not None else None
        return [ChildOrderRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id
            and (follower_id is None or r["follower_id"] == follower_id)
            and (mo_id is None or r["mo_id"] == mo_id)
            and _page(r, id_col="fo_id", since=since, after_key=after, vault_ids=among),
            order=lambda r: (r["created_at"], r["fo_id"]), limit=limit)]

    async def update(self, fo_id: str, *, expect_state: str, **values: Any) -> bool:
        moved = await self.tx.update(self.table, lambda r: r["fo_id"] == fo_id
                                     and r["state"] == expect_state, values)
        return len(moved) == 1

    async def get_many_unscoped(self, fo_ids: Iterable[str]) -> dict[str, ChildOrderRecord]:
        rows = self._by_key("fo_id", fo_ids, leave_out=("audit",))
        return {k: ChildOrderRecord.from_row(r) for k, r in rows.items()}

    async def update_many(self, fo_ids: Sequence[str], *, expect_state: str,
                          count_attempt: bool = False, **values: Any) -> dict[str, int]:
        if not fo_ids:
            return {}
        ids = set(fo_ids)

        def new(r: Row) -> Mapping[str, Any]:
            if count_attempt:
                return {**values, "dispatch_attempts": r["dispatch_attempts"] + 1}
            return values

        moved = await self.tx.update(self.table, lambda r: r["fo_id"] in ids
                                     and r["state"] == expect_state, new)
        return {r["fo_id"]: int(r["dispatch_attempts"]) for r in moved}

    async def move_many(self, moves: Sequence[ChildMove], *, expect_state: str,
                        updated_at: datetime) -> set[str]:
        moved: set[str] = set()
        for m in moves:
            values: dict[str, Any] = {"state": m.state, "last_error": m.last_error,
                                      "updated_at": updated_at}
            if m.broker_order_ref is not None:
                values["broker_order_ref"] = m.broker_order_ref
            if m.dead_lettered_at is not None:
                values["dead_lettered_at"] = m.dead_lettered_at
            if await self.update(m.fo_id, expect_state=expect_state, **values):
                moved.add(m.fo_id)
        return moved

    async def with_open_children(self, mo_ids: Iterable[str],
                                 open_states: Iterable[str]) -> set[str]:
        ids, states = set(mo_ids), set(open_states)
        return {r["mo_id"] for r in self.tx.scan(
            self.table, lambda r: r["mo_id"] in ids and r["state"] in states)}

    async def state_counts(self, tenant_id: str, mo_id: str,
                           follower_id: str | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.tx.scan(self.table, lambda r: r["tenant_id"] == tenant_id
                              and r["mo_id"] == mo_id
                              and (follower_id is None or r["follower_id"] == follower_id)):
            out[r["state"]] = out.get(r["state"], 0) + 1
        return out

    async def dead_letters(self, tenant_id: str, *, since: datetime | None, limit: int,
                           vault_ids: Iterable[str] | None = None,
                           follower_id: str | None = None,
                           after: tuple[datetime, str] | None = None
                           ) -> builtins.list[ChildOrderRecord]:
        among = frozenset(vault_ids) if vault_ids is not None else None
        start = utc(since) if since is not None else None
        return [ChildOrderRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id and r["state"] == "dlq"
            and (among is None or r["vault_id"] in among)
            and (follower_id is None or r["follower_id"] == follower_id)
            and (start is None or (r["dead_lettered_at"] is not None
                                   and r["dead_lettered_at"] >= start))
            # SQL's comparison with NULL is never true: an undated row is never "after"
            and (after is None or (r["dead_lettered_at"] is not None and keyset_after(
                after[0], after[1], r["dead_lettered_at"], r["fo_id"]))),
            order=lambda r: (nulls_first(r["dead_lettered_at"]), r["fo_id"]), limit=limit)]

    async def awaiting_fills(self, limit: int) -> builtins.list[ChildOrderRecord]:
        return [ChildOrderRecord.from_row(r) for r in self._select(
            lambda r: r["state"] == "ack" and r["broker_order_ref"] is not None,
            order=lambda r: r["updated_at"], limit=limit)]


class MemFills(MemRepo):
    table = "fills"

    async def add_if_new(self, row: Mapping[str, Any]) -> bool:
        if self.tx.get(self.table, row["trade_id"]) is not None:
            return False
        await self._add(row)
        return True

    async def for_child(self, fo_id: str) -> builtins.list[FillRecord]:
        return [FillRecord.from_row(r)
                for r in self._select(lambda r: r["fo_id"] == fo_id, order=lambda r: r["ts"])]

    async def for_children(self, fo_ids: Sequence[str]
                           ) -> dict[str, builtins.list[FillRecord]]:
        wanted = set(fo_ids)
        out: dict[str, builtins.list[FillRecord]] = {}
        for r in self._select(lambda r: r["fo_id"] in wanted,
                              order=lambda r: (r["fo_id"], r["ts"], r["trade_id"])):
            out.setdefault(r["fo_id"], []).append(FillRecord.from_row(r))
        return out
