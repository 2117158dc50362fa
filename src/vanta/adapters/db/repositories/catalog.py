"""Vaults, followers, instruments, overlays and NAV observations."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from vanta.adapters.db.repositories._base import _after, _Repo
from vanta.adapters.db.tables import (
    followers,
    instruments,
    nav_observations,
    vault_overlays,
    vaults,
)
from vanta.application.ports.records_catalog import (
    FollowerRecord,
    InstrumentRecord,
    OverlayRecord,
    VaultRecord,
)


class VaultRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(vaults).values(**row))

    async def get(self, tenant_id: str, vault_id: str) -> VaultRecord | None:
        r = await self._one(select(vaults).where(
            vaults.c.vault_id == vault_id, vaults.c.tenant_id == tenant_id))
        return VaultRecord.from_row(r) if r is not None else None

    async def get_for_update(self, tenant_id: str, vault_id: str) -> VaultRecord | None:
        """Locks the vault row on PostgreSQL so expansions of one vault run one at a time."""
        r = await self._one(select(vaults).where(
            vaults.c.vault_id == vault_id, vaults.c.tenant_id == tenant_id).with_for_update())
        return VaultRecord.from_row(r) if r is not None else None

    async def list(self, tenant_id: str) -> builtins.list[VaultRecord]:
        rows = await self._all(select(vaults).where(vaults.c.tenant_id == tenant_id)
                               .order_by(vaults.c.created_at, vaults.c.vault_id))
        return [VaultRecord.from_row(r) for r in rows]

    async def page(self, tenant_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[VaultRecord]:
        stmt = select(vaults).where(vaults.c.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(_after(vaults.c.created_at, vaults.c.vault_id, after))
        rows = await self._all(stmt.order_by(vaults.c.created_at, vaults.c.vault_id)
                               .limit(limit))
        return [VaultRecord.from_row(r) for r in rows]

    async def page_all(self, after: tuple[datetime, str] | None,
                       limit: int) -> builtins.list[VaultRecord]:
        stmt = select(vaults)
        if after is not None:
            stmt = stmt.where(_after(vaults.c.created_at, vaults.c.vault_id, after))
        rows = await self._all(stmt.order_by(vaults.c.created_at, vaults.c.vault_id)
                               .limit(limit))
        return [VaultRecord.from_row(r) for r in rows]

    async def set_maintenance(self, tenant_id: str, vault_id: str, enabled: bool) -> None:
        await self.conn.execute(update(vaults).where(
            vaults.c.vault_id == vault_id, vaults.c.tenant_id == tenant_id)
            .values(maintenance=enabled))

    async def update(self, tenant_id: str, vault_id: str, **values: Any) -> None:
        await self.conn.execute(update(vaults).where(
            vaults.c.vault_id == vault_id, vaults.c.tenant_id == tenant_id).values(**values))

    async def under_maintenance(self, vault_ids: Iterable[str]) -> set[str]:
        """Which of ``vault_ids`` are in maintenance (one query for a dispatch batch)."""
        ids = list(set(vault_ids))
        if not ids:
            return set()
        rows = await self._all(select(vaults.c.vault_id).where(
            self._among(vaults.c.vault_id, ids), vaults.c.maintenance.is_(True)))
        return {r["vault_id"] for r in rows}


class FollowerRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(followers).values(**row))

    async def _first(self, stmt: Any) -> FollowerRecord | None:
        r = await self._one(stmt)
        return FollowerRecord.from_row(r) if r is not None else None

    async def _list(self, stmt: Any) -> builtins.list[FollowerRecord]:
        return [FollowerRecord.from_row(r) for r in await self._all(stmt)]

    async def get(self, tenant_id: str, follower_id: str) -> FollowerRecord | None:
        return await self._first(select(followers).where(
            followers.c.follower_id == follower_id, followers.c.tenant_id == tenant_id))

    async def get_unscoped(self, follower_id: str) -> FollowerRecord | None:
        """For workers acting on a stored child order, which already carries its tenant."""
        return await self._first(select(followers).where(
            followers.c.follower_id == follower_id))

    async def get_many_unscoped(self,
                                follower_ids: Iterable[str]) -> dict[str, FollowerRecord]:
        rows = await self._by_key(followers.c.follower_id, follower_ids)
        return {k: FollowerRecord.from_row(r) for k, r in rows.items()}

    async def list_for_vault(self, tenant_id: str,
                             vault_id: str) -> builtins.list[FollowerRecord]:
        return await self._list(select(followers).where(
            followers.c.vault_id == vault_id, followers.c.tenant_id == tenant_id)
            .order_by(followers.c.follower_id))

    async def page_for_vault(self, tenant_id: str, vault_id: str, after: str | None,
                             limit: int) -> builtins.list[FollowerRecord]:
        stmt = select(followers).where(followers.c.vault_id == vault_id,
                                       followers.c.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(followers.c.follower_id > after)
        return await self._list(stmt.order_by(followers.c.follower_id).limit(limit))

    async def update(self, tenant_id: str, follower_id: str, **values: Any) -> None:
        await self.conn.execute(update(followers).where(
            followers.c.follower_id == follower_id, followers.c.tenant_id == tenant_id)
            .values(**values))


class InstrumentRepository(_Repo):
    async def get(self, symbol: str, venue: str) -> InstrumentRecord | None:
        r = await self._one(select(instruments).where(instruments.c.symbol == symbol,
                                                      instruments.c.venue == venue))
        return InstrumentRecord.from_row(r) if r is not None else None

    async def upsert(self, row: Mapping[str, Any]) -> None:
        res = await self.conn.execute(update(instruments).where(
            instruments.c.symbol == row["symbol"], instruments.c.venue == row["venue"])
            .values(**row))
        if res.rowcount == 0:
            await self.conn.execute(insert(instruments).values(**row))

    async def list(self) -> builtins.list[InstrumentRecord]:
        rows = await self._all(select(instruments).order_by(instruments.c.venue,
                                                            instruments.c.symbol))
        return [InstrumentRecord.from_row(r) for r in rows]

    async def page(self, after: tuple[str, str] | None,
                   limit: int) -> builtins.list[InstrumentRecord]:
        stmt = select(instruments)
        if after is not None:
            venue, symbol = after
            stmt = stmt.where(or_(instruments.c.venue > venue, and_(
                instruments.c.venue == venue, instruments.c.symbol > symbol)))
        rows = await self._all(stmt.order_by(instruments.c.venue, instruments.c.symbol)
                               .limit(limit))
        return [InstrumentRecord.from_row(r) for r in rows]


class OverlayRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(vault_overlays).values(**row))

    async def _overlays(self, stmt: Any) -> builtins.list[OverlayRecord]:
        return [OverlayRecord.from_row(r) for r in await self._all(stmt)]

    async def active(self, vault_id: str, at: datetime) -> builtins.list[OverlayRecord]:
        return await self._overlays(select(vault_overlays).where(
            vault_overlays.c.vault_id == vault_id, vault_overlays.c.state == "active",
            vault_overlays.c.applied_at <= at, vault_overlays.c.expires_at > at)
            .order_by(vault_overlays.c.overlay_id))

    async def list(self, tenant_id: str, vault_id: str) -> builtins.list[OverlayRecord]:
        return await self._overlays(select(vault_overlays).where(
            vault_overlays.c.vault_id == vault_id, vault_overlays.c.tenant_id == tenant_id)
            .order_by(vault_overlays.c.applied_at, vault_overlays.c.overlay_id))

    async def page(self, tenant_id: str, vault_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[OverlayRecord]:
        stmt = select(vault_overlays).where(vault_overlays.c.vault_id == vault_id,
                                            vault_overlays.c.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(_after(vault_overlays.c.applied_at,
                                     vault_overlays.c.overlay_id, after))
        return await self._overlays(stmt.order_by(vault_overlays.c.applied_at,
                                                  vault_overlays.c.overlay_id).limit(limit))

    async def due_for_revert(self, now: datetime,
                             limit: int = 100) -> builtins.list[OverlayRecord]:
        return await self._overlays(select(vault_overlays).where(
            vault_overlays.c.state == "active", vault_overlays.c.expires_at <= now)
            .order_by(vault_overlays.c.expires_at).limit(limit))

    async def mark_reverted(self, overlay_id: str, now: datetime) -> bool:
        res = await self.conn.execute(update(vault_overlays).where(
            vault_overlays.c.overlay_id == overlay_id, vault_overlays.c.state == "active")
            .values(state="reverted", reverted_at=now))
        return res.rowcount == 1


class NavRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(nav_observations).values(**row))

    async def history(self, entity: str, entity_ids: Sequence[str],
                      asof: datetime) -> dict[str, builtins.list[tuple[datetime, Decimal]]]:
        """Observations up to ``asof`` per entity, oldest first."""
        out: dict[str, builtins.list[tuple[datetime, Decimal]]] = {}
        ids = list(entity_ids)
        for i in range(0, len(ids), 500):
            rows = await self._all(select(nav_observations.c.entity_id, nav_observations.c.as_of,
                                          nav_observations.c.nav).where(
                nav_observations.c.entity == entity,
                nav_observations.c.entity_id.in_(ids[i:i + 500]),
                nav_observations.c.as_of <= asof)
                .order_by(nav_observations.c.as_of, nav_observations.c.id))
            for r in rows:
                out.setdefault(r["entity_id"], []).append((r["as_of"], r["nav"]))
        return out
