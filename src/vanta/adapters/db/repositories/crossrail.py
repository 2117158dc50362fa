"""Venue fee models, stablecoin buffers and child legs (ports in
``vanta.application.ports.crossrail``)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from vanta.adapters.db.repositories._base import _Repo
from vanta.adapters.db.tables import (
    child_legs,
    follower_orders,
    stablecoin_buffers,
    venue_fee_models,
)
from vanta.application.ports.crossrail import LegRecord, VenueFeeRecord
from vanta.application.ports.legs import counts_for_estimate


class VenueFeeRepository(_Repo):
    async def get(self, venue: str) -> VenueFeeRecord | None:
        r = await self._one(select(venue_fee_models).where(venue_fee_models.c.venue == venue))
        return VenueFeeRecord.from_row(r) if r is not None else None

    async def list(self) -> builtins.list[VenueFeeRecord]:
        rows = await self._all(select(venue_fee_models).order_by(venue_fee_models.c.venue))
        return [VenueFeeRecord.from_row(r) for r in rows]

    async def put(self, row: Mapping[str, Any], *, expect_version: int | None) -> bool:
        if expect_version is None:
            # the venue is the primary key: of two first edits racing, one inserts and the
            # other is told so (rowcount 0) instead of failing on the taken key
            dialect = self.conn.dialect.name
            if dialect == "postgresql":
                stmt: Any = postgresql.insert(venue_fee_models).values(**row) \
                    .on_conflict_do_nothing(index_elements=["venue"])
            elif dialect == "sqlite":
                stmt = sqlite.insert(venue_fee_models).values(**row) \
                    .on_conflict_do_nothing(index_elements=["venue"])
            else:  # pragma: no cover - only SQLite and PostgreSQL are supported
                stmt = insert(venue_fee_models).values(**row)
            res = await self.conn.execute(stmt)
            return bool(res.rowcount == 1)
        res = await self.conn.execute(update(venue_fee_models).where(
            venue_fee_models.c.venue == row["venue"],
            venue_fee_models.c.version == expect_version).values(**row))
        return bool(res.rowcount)


class BufferRepository(_Repo):
    async def get(self, tenant_id: str, entity: str, entity_id: str) -> Decimal | None:
        t = stablecoin_buffers
        r = await self._one(select(t.c.amount).where(
            t.c.tenant_id == tenant_id, t.c.entity == entity, t.c.entity_id == entity_id))
        return None if r is None else Decimal(r["amount"])

    async def put(self, row: Mapping[str, Any]) -> None:
        t = stablecoin_buffers
        res = await self.conn.execute(update(t).where(
            t.c.tenant_id == row["tenant_id"], t.c.entity == row["entity"],
            t.c.entity_id == row["entity_id"]).values(**row))
        if res.rowcount == 0:
            await self.conn.execute(insert(t).values(**row))


class LegRepository(_Repo):
    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.conn.execute(insert(child_legs), [dict(r) for r in rows])

    async def get(self, tenant_id: str, leg_id: str) -> LegRecord | None:
        r = await self._one(select(child_legs).where(child_legs.c.leg_id == leg_id,
                                                     child_legs.c.tenant_id == tenant_id))
        return LegRecord.from_row(r) if r is not None else None

    async def for_child(self, fo_id: str) -> builtins.list[LegRecord]:
        rows = await self._all(select(child_legs).where(child_legs.c.fo_id == fo_id)
                               .order_by(child_legs.c.idx))
        return [LegRecord.from_row(r) for r in rows]

    async def for_children(self, fo_ids: Iterable[str]
                           ) -> dict[str, builtins.list[LegRecord]]:
        wanted = list(set(fo_ids))
        out: dict[str, builtins.list[LegRecord]] = {}
        if not wanted:
            return out
        rows = await self._all(select(child_legs).where(self._among(child_legs.c.fo_id, wanted))
                               .order_by(child_legs.c.fo_id, child_legs.c.idx))
        for r in rows:
            out.setdefault(r["fo_id"], []).append(LegRecord.from_row(r))
        return out

    async def for_followers(self, tenant_id: str, follower_ids: Iterable[str]
                            ) -> dict[str, builtins.list[LegRecord]]:
        wanted = list(set(follower_ids))
        out: dict[str, builtins.list[LegRecord]] = {}
        if not wanted:
            return out
        fo = follower_orders
        rows = await self._all(
            select(child_legs, fo.c.follower_id.label("of_follower"),
                   fo.c.state.label("child_state"))
            .join(fo, fo.c.fo_id == child_legs.c.fo_id)
            .where(self._among(fo.c.follower_id, wanted), child_legs.c.tenant_id == tenant_id)
            .order_by(child_legs.c.fo_id, child_legs.c.idx))
        for r in rows:
            if counts_for_estimate(r["child_state"], r["filled"]):
                out.setdefault(r["of_follower"], []).append(LegRecord.from_row(r))
        return out

    async def update(self, leg_id: str, *, expect_state: str, **values: Any) -> bool:
        res = await self.conn.execute(update(child_legs).where(
            child_legs.c.leg_id == leg_id, child_legs.c.state == expect_state).values(**values))
        return bool(res.rowcount)
