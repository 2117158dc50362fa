"""Manager orders, child (follower) orders and their fills."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String, case, func, insert, select, type_coerce, update

from vanta.adapters.db.repositories._base import _after, _Repo
from vanta.adapters.db.tables import fills, follower_orders, manager_orders
from vanta.application.ports.delivery import ChildMove
from vanta.application.ports.reconciliation import NOT_MANAGER_SOURCES
from vanta.application.ports.records_orders import (
    ChildOrderRecord,
    FillRecord,
    ManagerOrderRecord,
)
from vanta.domain.money import ZERO, normalize
from vanta.domain.orders import POSITION_STATES, ChildOrder


def net_quantity(postgres: bool, table: Any) -> Any:
    """Buys minus sells of ``table``'s rows, exactly: NUMERIC arithmetic on PostgreSQL; on
    SQLite, where quantities are text, the ``vanta_net_qty`` aggregate the driver registers
    (``sqlite_driver.NetQuantity``)."""
    c = table.c
    if postgres:
        qty = type_coerce(c.qty, Numeric())  # the column is NUMERIC there: plain arithmetic
        return func.sum(case((c.side == "buy", qty), else_=-qty), type_=Numeric())
    return func.vanta_net_qty(c.side, c.qty, type_=String())


class ManagerOrderRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(manager_orders).values(**row))

    async def get(self, tenant_id: str, mo_id: str) -> ManagerOrderRecord | None:
        r = await self._one(select(manager_orders).where(
            manager_orders.c.mo_id == mo_id, manager_orders.c.tenant_id == tenant_id))
        return ManagerOrderRecord.from_row(r) if r is not None else None

    async def get_unscoped(self, mo_id: str) -> ManagerOrderRecord | None:
        r = await self._one(select(manager_orders).where(manager_orders.c.mo_id == mo_id))
        return ManagerOrderRecord.from_row(r) if r is not None else None

    async def get_many_unscoped(self, mo_ids: Iterable[str]) -> dict[str, ManagerOrderRecord]:
        """Without the expansion snapshot (every follower's inputs: large, not needed to
        deliver)."""
        rows = await self._by_key(manager_orders.c.mo_id, mo_ids, leave_out=("snapshot",))
        return {k: ManagerOrderRecord.from_row(r) for k, r in rows.items()}

    async def list(self, tenant_id: str, since: datetime | None, limit: int,
                   vault_id: str | None = None,
                   after: tuple[datetime, str] | None = None,
                   vault_ids: Iterable[str] | None = None, with_snapshot: bool = True
                   ) -> builtins.list[ManagerOrderRecord]:
        # the snapshot holds every follower's inputs: large, and lists seldom need it
        cols = [c for c in manager_orders.c if with_snapshot or c.name != "snapshot"]
        stmt = select(*cols).where(manager_orders.c.tenant_id == tenant_id)
        if vault_ids is not None:
            stmt = stmt.where(manager_orders.c.vault_id.in_(list(vault_ids)))
        if since is not None:
            stmt = stmt.where(manager_orders.c.created_at > since)
        if after is not None:
            stmt = stmt.where(_after(manager_orders.c.created_at, manager_orders.c.mo_id, after))
        if vault_id is not None:
            stmt = stmt.where(manager_orders.c.vault_id == vault_id)
        rows = await self._all(stmt.order_by(manager_orders.c.created_at, manager_orders.c.mo_id)
                               .limit(limit))
        return [ManagerOrderRecord.from_row(r) for r in rows]

    async def net_position(self, vault_id: str, symbol: str) -> Decimal:
        """The manager's own position in a symbol: its orders, not follower syncs."""
        total = (await self.conn.execute(select(net_quantity(self._postgres, manager_orders)).where(
            manager_orders.c.vault_id == vault_id, manager_orders.c.symbol == symbol,
            manager_orders.c.source.not_in(NOT_MANAGER_SOURCES)))).scalar()
        return ZERO if total is None else normalize(Decimal(str(total)))

    async def holdings(self, vault_id: str) -> dict[str, tuple[Decimal, str, Decimal | None]]:
        """symbol -> (net qty, venue, last ref price) of the manager's open positions."""
        rows = await self._all(select(manager_orders).where(
            manager_orders.c.vault_id == vault_id,
            manager_orders.c.source.not_in(NOT_MANAGER_SOURCES))
            .order_by(manager_orders.c.created_at))
        out: dict[str, tuple[Decimal, str, Decimal | None]] = {}
        for r in rows:
            qty, _, px = out.get(r["symbol"], (ZERO, r["venue"], None))
            qty += r["qty"] if r["side"] == "buy" else -r["qty"]
            out[r["symbol"]] = (qty, r["venue"], r["ref_price"] or px)
        return {k: v for k, v in out.items() if v[0] > 0}

    async def reopen(self, mo_id: str) -> None:
        """A redelivered child makes a completed order open again."""
        await self.conn.execute(update(manager_orders).where(
            manager_orders.c.mo_id == mo_id, manager_orders.c.state == "completed")
            .values(state="expanded"))

    async def set_state(self, mo_id: str, state: str) -> None:
        await self.conn.execute(update(manager_orders).where(manager_orders.c.mo_id == mo_id)
                                .values(state=state))


class ChildOrderRepository(_Repo):
    async def add_many(self, children: Sequence[ChildOrder], *, tenant_id: str, vault_id: str,
                       now: datetime) -> None:
        if not children:
            return
        await self._insert_many(follower_orders, [
            {
                "fo_id": c.fo_id, "mo_id": c.mo_id, "follower_id": c.follower_id,
                "tenant_id": tenant_id, "vault_id": vault_id, "symbol": c.symbol,
                "venue": c.venue, "side": c.side.value, "qty": c.qty,
                "cap_applied": c.cap_applied, "state": c.state.value,
                "skip_reason": c.skip_reason, "dispatch_attempts": 0, "last_error": None,
                "audit": {"sizing": c.sizing}, "created_at": now, "updated_at": now,
            }
            for c in children
        ])

    async def positions(self, follower_ids: Iterable[str],
                        symbols: Iterable[str]) -> dict[tuple[str, str], Decimal]:
        """Net quantity per (follower, symbol) from child orders that still count
        (see POSITION_STATES), summed exactly by the database (``net_quantity``): one row
        per pair comes back, not one per child ever sized (which grew with the vault's
        history and made every order of a busy vault slower than the one before)."""
        ids, syms = list(follower_ids), list(symbols)
        if not ids or not syms:
            return {}
        out: dict[tuple[str, str], Decimal] = {}
        fo = follower_orders.c
        for i in range(0, len(ids), 500):  # bounded IN lists
            rows = (await self.conn.execute(
                select(fo.follower_id, fo.symbol, net_quantity(self._postgres, follower_orders))
                .where(fo.follower_id.in_(ids[i:i + 500]), fo.symbol.in_(syms),
                       fo.state.in_([s.value for s in POSITION_STATES]))
                .group_by(fo.follower_id, fo.symbol))).all()
            for fid, symbol, net in rows:
                out[(fid, symbol)] = normalize(Decimal(str(net)))
        return out

    async def get(self, tenant_id: str, fo_id: str) -> ChildOrderRecord | None:
        r = await self._one(select(follower_orders).where(
            follower_orders.c.fo_id == fo_id, follower_orders.c.tenant_id == tenant_id))
        return ChildOrderRecord.from_row(r) if r is not None else None

    async def get_unscoped(self, fo_id: str) -> ChildOrderRecord | None:
        r = await self._one(select(follower_orders).where(follower_orders.c.fo_id == fo_id))
        return ChildOrderRecord.from_row(r) if r is not None else None

    async def list(self, tenant_id: str, *, follower_id: str | None, mo_id: str | None,
                   since: datetime | None, limit: int,
                   after: tuple[datetime, str] | None = None,
                   vault_ids: Iterable[str] | None = None
                   ) -> builtins.list[ChildOrderRecord]:
        stmt = select(follower_orders).where(follower_orders.c.tenant_id == tenant_id)
        if vault_ids is not None:
            stmt = stmt.where(follower_orders.c.vault_id.in_(list(vault_ids)))
        if after is not None:
            stmt = stmt.where(_after(follower_orders.c.created_at, follower_orders.c.fo_id,
                                     after))
        if follower_id is not None:
            stmt = stmt.where(follower_orders.c.follower_id == follower_id)
        if mo_id is not None:
            stmt = stmt.where(follower_orders.c.mo_id == mo_id)
        if since is not None:
            stmt = stmt.where(follower_orders.c.created_at > since)
        rows = await self._all(stmt.order_by(follower_orders.c.created_at,
                                             follower_orders.c.fo_id).limit(limit))
        return [ChildOrderRecord.from_row(r) for r in rows]

    async def update(self, fo_id: str, *, expect_state: str, **values: Any) -> bool:
        """Compare-and-set on state, so two workers can never both move one child."""
        res = await self.conn.execute(update(follower_orders).where(
            follower_orders.c.fo_id == fo_id, follower_orders.c.state == expect_state)
            .values(**values))
        return res.rowcount == 1

    async def get_many_unscoped(self, fo_ids: Iterable[str]) -> dict[str, ChildOrderRecord]:
        """For delivery: without the sizing record (``audit``), which delivery never reads."""
        rows = await self._by_key(follower_orders.c.fo_id, fo_ids, leave_out=("audit",))
        return {k: ChildOrderRecord.from_row(r) for k, r in rows.items()}

    async def update_many(self, fo_ids: Sequence[str], *, expect_state: str,
                          count_attempt: bool = False, **values: Any) -> dict[str, int]:
        """Compare-and-set for many children in one statement: the ones that moved, each
        with its ``dispatch_attempts`` after the update (``count_attempt`` adds one)."""
        if not fo_ids:
            return {}
        if count_attempt:
            values["dispatch_attempts"] = follower_orders.c.dispatch_attempts + 1
        res = await self.conn.execute(update(follower_orders).where(
            self._among(follower_orders.c.fo_id, fo_ids),
            follower_orders.c.state == expect_state)
            .values(**values)
            .returning(follower_orders.c.fo_id, follower_orders.c.dispatch_attempts))
        return {r.fo_id: int(r.dispatch_attempts) for r in res.all()}

    async def move_many(self, moves: Sequence[ChildMove], *, expect_state: str,
                        updated_at: datetime) -> set[str]:
        """Compare-and-set a batch of children to their own values. PostgreSQL: one
        ``UPDATE ... FROM unnest(...)``; elsewhere one statement per group of children that
        share every new value (a batch of acks is one group)."""
        if not moves:
            return set()
        f = follower_orders
        if self._postgres:
            v = self._unnest("v", f, [m._asdict() for m in moves], ChildMove._fields)
            res = await self.conn.execute(update(f).where(
                f.c.fo_id == v.c.fo_id, f.c.state == expect_state).values(
                state=v.c.state, last_error=v.c.last_error, updated_at=updated_at,
                broker_order_ref=func.coalesce(v.c.broker_order_ref, f.c.broker_order_ref),
                dead_lettered_at=func.coalesce(v.c.dead_lettered_at, f.c.dead_lettered_at))
                .returning(f.c.fo_id))
            return {r.fo_id for r in res.all()}
        groups: dict[tuple[Any, ...], list[str]] = {}
        for m in moves:
            groups.setdefault(m[1:], []).append(m.fo_id)
        moved: set[str] = set()
        for (state, error, ref, dlq_at), ids in groups.items():
            extra = {k: x for k, x in (("broker_order_ref", ref), ("dead_lettered_at", dlq_at))
                     if x is not None}
            moved.update(await self.update_many(ids, expect_state=expect_state, state=state,
                                                last_error=error, updated_at=updated_at,
                                                **extra))
        return moved

    async def with_open_children(self, mo_ids: Iterable[str],
                                 open_states: Iterable[str]) -> set[str]:
        """One probe of ``ix_follower_orders_mo_state`` per order (a batch names one or a
        few): the first open child answers, none is counted."""
        states = list(open_states)
        out: set[str] = set()
        for mo_id in sorted(set(mo_ids)):
            if await self._one(select(follower_orders.c.fo_id).where(
                    follower_orders.c.mo_id == mo_id,
                    follower_orders.c.state.in_(states)).limit(1)) is not None:
                out.add(mo_id)
        return out

    async def state_counts(self, tenant_id: str, mo_id: str,
                           follower_id: str | None = None) -> dict[str, int]:
        """Children of one manager order per state (``follower_id``: only that one's)."""
        stmt = (select(follower_orders.c.state, func.count().label("n"))
                .where(follower_orders.c.tenant_id == tenant_id,
                       follower_orders.c.mo_id == mo_id))
        if follower_id is not None:
            stmt = stmt.where(follower_orders.c.follower_id == follower_id)
        rows = await self._all(stmt.group_by(follower_orders.c.state))
        return {str(r["state"]): int(r["n"]) for r in rows}

    async def dead_letters(self, tenant_id: str, *, since: datetime | None, limit: int,
                           vault_ids: Iterable[str] | None = None,
                           follower_id: str | None = None,
                           after: tuple[datetime, str] | None = None
                           ) -> builtins.list[ChildOrderRecord]:
        """``vault_ids`` / ``follower_id``: the caller's narrowing, applied in the query so a
        narrowed caller's page is full and nothing outside it is ever read."""
        stmt = select(follower_orders).where(follower_orders.c.tenant_id == tenant_id,
                                             follower_orders.c.state == "dlq")
        if vault_ids is not None:
            stmt = stmt.where(follower_orders.c.vault_id.in_(list(vault_ids)))
        if follower_id is not None:
            stmt = stmt.where(follower_orders.c.follower_id == follower_id)
        if since is not None:
            stmt = stmt.where(follower_orders.c.dead_lettered_at >= since)
        if after is not None:
            stmt = stmt.where(_after(follower_orders.c.dead_lettered_at,
                                     follower_orders.c.fo_id, after))
        rows = await self._all(stmt.order_by(follower_orders.c.dead_lettered_at,
                                             follower_orders.c.fo_id).limit(limit))
        return [ChildOrderRecord.from_row(r) for r in rows]

    async def awaiting_fills(self, limit: int) -> builtins.list[ChildOrderRecord]:
        """Bridged children the broker accepted and has not finished filling."""
        rows = await self._all(select(follower_orders).where(
            follower_orders.c.state == "ack", follower_orders.c.broker_order_ref.is_not(None))
            .order_by(follower_orders.c.updated_at).limit(limit))
        return [ChildOrderRecord.from_row(r) for r in rows]


class FillRepository(_Repo):
    async def add_if_new(self, row: Mapping[str, Any]) -> bool:
        """Insert a fill unless its trade id is known: a report seen twice counts once."""
        if await self._one(select(fills.c.trade_id).where(fills.c.trade_id == row["trade_id"])):
            return False
        await self.conn.execute(insert(fills).values(**row))
        return True

    async def for_child(self, fo_id: str) -> builtins.list[FillRecord]:
        rows = await self._all(select(fills).where(fills.c.fo_id == fo_id).order_by(fills.c.ts))
        return [FillRecord.from_row(r) for r in rows]

    async def for_children(self, fo_ids: Sequence[str]
                           ) -> dict[str, builtins.list[FillRecord]]:
        ids = sorted(set(fo_ids))
        out: dict[str, builtins.list[FillRecord]] = {}
        for i in range(0, len(ids), 500):  # bounded IN lists (SQLite's variable limit)
            rows = await self._all(select(fills).where(fills.c.fo_id.in_(ids[i:i + 500]))
                                   .order_by(fills.c.fo_id, fills.c.ts, fills.c.trade_id))
            for r in rows:
                out.setdefault(r["fo_id"], []).append(FillRecord.from_row(r))
        return out
