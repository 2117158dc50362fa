"""In-memory venue fee models, stablecoin buffers and child legs (the SQL ones:
``adapters/db/repositories/crossrail``)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from tests.fakes.memory_repos_base import MemRepo
from vanta.application.ports.crossrail import LegRecord, VenueFeeRecord
from vanta.application.ports.legs import counts_for_estimate
from vanta.application.ports.uow import Conflict


class MemVenueFees(MemRepo):
    table = "venue_fee_models"

    async def get(self, venue: str) -> VenueFeeRecord | None:
        r = self._first(lambda r: r["venue"] == venue)
        return VenueFeeRecord.from_row(r) if r is not None else None

    async def list(self) -> builtins.list[VenueFeeRecord]:
        return [VenueFeeRecord.from_row(r) for r in self._select(order=lambda r: r["venue"])]

    async def put(self, row: Mapping[str, Any], *, expect_version: int | None) -> bool:
        if expect_version is None:
            try:
                await self._add(row)
            except Conflict:  # as the SQL adapter: the losing first edit is told so
                return False
            return True
        moved = await self.tx.update(self.table, lambda r: r["venue"] == row["venue"]
                                     and r["version"] == expect_version, row)
        return bool(moved)


class MemBuffers(MemRepo):
    table = "stablecoin_buffers"

    async def get(self, tenant_id: str, entity: str, entity_id: str) -> Decimal | None:
        r = self._first(lambda r: r["tenant_id"] == tenant_id and r["entity"] == entity
                        and r["entity_id"] == entity_id)
        return None if r is None else Decimal(r["amount"])

    async def put(self, row: Mapping[str, Any]) -> None:
        moved = await self.tx.update(self.table, lambda r: r["tenant_id"] == row["tenant_id"]
                                     and r["entity"] == row["entity"]
                                     and r["entity_id"] == row["entity_id"], row)
        if not moved:
            await self._add(row)


class MemLegs(MemRepo):
    table = "child_legs"

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.tx.insert(self.table, list(rows), self.conflict)

    async def get(self, tenant_id: str, leg_id: str) -> LegRecord | None:
        r = self._first(lambda r: r["leg_id"] == leg_id and r["tenant_id"] == tenant_id)
        return LegRecord.from_row(r) if r is not None else None

    async def for_child(self, fo_id: str) -> builtins.list[LegRecord]:
        return [LegRecord.from_row(r) for r in
                self._select(lambda r: r["fo_id"] == fo_id, order=lambda r: r["idx"])]

    async def for_children(self, fo_ids: Iterable[str]
                           ) -> dict[str, builtins.list[LegRecord]]:
        wanted = set(fo_ids)
        out: dict[str, builtins.list[LegRecord]] = {}
        for r in self._select(lambda r: r["fo_id"] in wanted,
                              order=lambda r: (r["fo_id"], r["idx"])):
            out.setdefault(r["fo_id"], []).append(LegRecord.from_row(r))
        return out

    async def for_followers(self, tenant_id: str, follower_ids: Iterable[str]
                            ) -> dict[str, builtins.list[LegRecord]]:
        wanted = set(follower_ids)
        owner = {r["fo_id"]: (r["follower_id"], r["state"]) for r in self.tx.scan(
            "follower_orders", lambda r: r["follower_id"] in wanted)}
        out: dict[str, builtins.list[LegRecord]] = {}
        for r in self._select(lambda r: r["fo_id"] in owner and r["tenant_id"] == tenant_id,
                              order=lambda r: (r["fo_id"], r["idx"])):
            follower_id, child_state = owner[r["fo_id"]]
            if counts_for_estimate(child_state, r["filled"]):
                out.setdefault(follower_id, []).append(LegRecord.from_row(r))
        return out

    async def update(self, leg_id: str, *, expect_state: str, **values: Any) -> bool:
        moved = await self.tx.update(self.table, lambda r: r["leg_id"] == leg_id
                                     and r["state"] == expect_state, values)
        return bool(moved)
