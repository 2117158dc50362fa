"""In-memory tenants, subscriptions, users, invitations, vaults, followers, instruments,
overlays and NAV observations (the SQL ones: ``adapters/db/repositories/{tenancy,catalog}``)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes.memory_repos_base import MemRepo
from tests.fakes.memory_store import Row, utc
from tests.fakes.memory_store import after as keyset_after
from vanta.application.ports.records_catalog import (
    FollowerRecord,
    InstrumentRecord,
    OverlayRecord,
    VaultRecord,
)
from vanta.application.ports.records_tenancy import (
    InvitationRecord,
    SubscriptionRecord,
    TenantRecord,
    UserRecord,
)


class MemTenants(MemRepo):
    table = "tenants"

    async def add(self, row: Mapping[str, Any]) -> None:
        await self._add(row)

    async def get(self, tenant_id: str) -> TenantRecord | None:
        r = self._first(lambda r: r["tenant_id"] == tenant_id)
        return TenantRecord.from_row(r) if r is not None else None


class MemSubscriptions(MemRepo):
    table = "subscriptions"

    async def current(self, tenant_id: str) -> SubscriptionRecord | None:
        r = self._first(lambda r: r["tenant_id"] == tenant_id,
                        order=lambda r: r["created_at"], desc=True)
        return SubscriptionRecord.from_row(r) if r is not None else None

    async def by_provider_ref(self, ref: str) -> SubscriptionRecord | None:
        r = self._first(lambda r: r["provider_ref"] == ref)
        return SubscriptionRecord.from_row(r) if r is not None else None

    async def replace(self, tenant_id: str, row: Mapping[str, Any]) -> None:
        await self.tx.delete(self.table, lambda r: r["tenant_id"] == tenant_id)
        await self._add(row)

    async def update(self, subscription_id: str, **values: Any) -> None:
        await self.tx.update(self.table, lambda r: r["subscription_id"] == subscription_id,
                             values)


class MemUsers(MemRepo):
    table = "users"

    async def add(self, row: Mapping[str, Any]) -> None:
        await self._add(row)

    async def count(self, tenant_id: str) -> int:
        return len(self._select(lambda r: r["tenant_id"] == tenant_id))

    async def list(self, tenant_id: str) -> builtins.list[UserRecord]:
        return [UserRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id,
            order=lambda r: (r["created_at"], r["user_id"]))]

    async def page(self, tenant_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[UserRecord]:
        return [UserRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id and (
                after is None or keyset_after(*after, r["created_at"], r["user_id"])),
            order=lambda r: (r["created_at"], r["user_id"]), limit=limit)]

    async def by_sub(self, oidc_sub: str) -> UserRecord | None:
        r = self._first(lambda r: r["oidc_sub"] == oidc_sub)
        return UserRecord.from_row(r) if r is not None else None


class MemInvitations(MemRepo):
    table = "invitations"

    async def add(self, row: Mapping[str, Any]) -> None:
        await self._add(row)

    async def pending(self, tenant_id: str, now: datetime) -> int:
        now = utc(now)
        return len(self._select(lambda r: r["tenant_id"] == tenant_id
                                and r["accepted_at"] is None and r["expires_at"] > now))

    async def by_token_hash(self, token_hash: str) -> InvitationRecord | None:
        r = self._first(lambda r: r["token_hash"] == token_hash)
        return InvitationRecord.from_row(r) if r is not None else None

    async def accept(self, invitation_id: str, user_id: str, now: datetime) -> None:
        await self.tx.update(self.table, lambda r: r["invitation_id"] == invitation_id,
                             {"accepted_at": now, "user_id": user_id})

    async def list(self, tenant_id: str) -> builtins.list[InvitationRecord]:
        return [InvitationRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id, order=lambda r: r["created_at"])]


class MemVaults(MemRepo):
    table = "vaults"

    async def add(self, row: Mapping[str, Any]) -> None:
        await self._add(row)

    async def get(self, tenant_id: str, vault_id: str) -> VaultRecord | None:
        r = self._first(lambda r: r["vault_id"] == vault_id and r["tenant_id"] == tenant_id)
        return VaultRecord.from_row(r) if r is not None else None

    async def get_for_update(self, tenant_id: str, vault_id: str) -> VaultRecord | None:
        # SQL locks the row; here the lock is the writer slot, which SQLite takes at begin.
        await self.tx.writable(self.table)
        return await self.get(tenant_id, vault_id)

    async def list(self, tenant_id: str) -> builtins.list[VaultRecord]:
        return [VaultRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id,
            order=lambda r: (r["created_at"], r["vault_id"]))]

    async def page(self, tenant_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[VaultRecord]:
        return [VaultRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id and (
                after is None or keyset_after(*after, r["created_at"], r["vault_id"])),
            order=lambda r: (r["created_at"], r["vault_id"]), limit=limit)]

    async def page_all(self, after: tuple[datetime, str] | None,
                       limit: int) -> builtins.list[VaultRecord]:
        return [VaultRecord.from_row(r) for r in self._select(
            lambda r: after is None or keyset_after(*after, r["created_at"], r["vault_id"]),
            order=lambda r: (r["created_at"], r["vault_id"]), limit=limit)]

    async def set_maintenance(self, tenant_id: str, vault_id: str, enabled: bool) -> None:
        await self.tx.update(self.table, lambda r: r["vault_id"] == vault_id
                             and r["tenant_id"] == tenant_id, {"maintenance": enabled})

    async def update(self, tenant_id: str, vault_id: str, **values: Any) -> None:
        await self.tx.update(self.table, lambda r: r["vault_id"] == vault_id
                             and r["tenant_id"] == tenant_id, dict(values))

    async def under_maintenance(self, vault_ids: Iterable[str]) -> set[str]:
        ids = set(vault_ids)
        return {r["vault_id"] for r in self._select(
            lambda r: r["vault_id"] in ids and r["maintenance"] is True)}


class MemFollowers(MemRepo):
    table = "followers"

    async def add(self, row: Mapping[str, Any]) -> None:
        await self._add(row)

    def _record(self, where: Callable[[Row], bool]) -> FollowerRecord | None:
        r = self._first(where)
        return FollowerRecord.from_row(r) if r is not None else None

    async def get(self, tenant_id: str, follower_id: str) -> FollowerRecord | None:
        return self._record(lambda r: r["follower_id"] == follower_id
                            and r["tenant_id"] == tenant_id)

    async def get_unscoped(self, follower_id: str) -> FollowerRecord | None:
        return self._record(lambda r: r["follower_id"] == follower_id)

    async def get_many_unscoped(self,
                                follower_ids: Iterable[str]) -> dict[str, FollowerRecord]:
        return {k: FollowerRecord.from_row(r)
                for k, r in self._by_key("follower_id", follower_ids).items()}

    async def list_for_vault(self, tenant_id: str,
                             vault_id: str) -> builtins.list[FollowerRecord]:
        return [FollowerRecord.from_row(r) for r in self._select(
            lambda r: r["vault_id"] == vault_id and r["tenant_id"] == tenant_id,
            order=lambda r: r["follower_id"])]

    async def page_for_vault(self, tenant_id: str, vault_id: str, after: str | None,
                             limit: int) -> builtins.list[FollowerRecord]:
        return [FollowerRecord.from_row(r) for r in self._select(
            lambda r: r["vault_id"] == vault_id and r["tenant_id"] == tenant_id
            and (after is None or r["follower_id"] > after),
            order=lambda r: r["follower_id"], limit=limit)]

    async def update(self, tenant_id: str, follower_id: str, **values: Any) -> None:
        await self.tx.update(self.table, lambda r: r["follower_id"] == follower_id
                             and r["tenant_id"] == tenant_id, values)


class MemInstruments(MemRepo):
    table = "instruments"

    async def get(self, symbol: str, venue: str) -> InstrumentRecord | None:
        r = self._first(lambda r: r["symbol"] == symbol and r["venue"] == venue)
        return InstrumentRecord.from_row(r) if r is not None else None

    async def upsert(self, row: Mapping[str, Any]) -> None:
        moved = await self.tx.update(self.table, lambda r: r["symbol"] == row["symbol"]
                                     and r["venue"] == row["venue"], row)
        if not moved:
            await self._add(row)

    async def list(self) -> builtins.list[InstrumentRecord]:
        return [InstrumentRecord.from_row(r)
                for r in self._select(order=lambda r: (r["venue"], r["symbol"]))]

    async def page(self, after: tuple[str, str] | None,
                   limit: int) -> builtins.list[InstrumentRecord]:
        return [InstrumentRecord.from_row(r) for r in self._select(
            lambda r: after is None or (r["venue"], r["symbol"]) > tuple(after),
            order=lambda r: (r["venue"], r["symbol"]), limit=limit)]


class MemOverlays(MemRepo):
    table = "vault_overlays"

    async def add(self, row: Mapping[str, Any]) -> None:
        await self._add(row)

    async def active(self, vault_id: str, at: datetime) -> builtins.list[OverlayRecord]:
        at = utc(at)
        return [OverlayRecord.from_row(r) for r in self._select(
            lambda r: r["vault_id"] == vault_id and r["state"] == "active"
            and r["applied_at"] <= at and r["expires_at"] > at,
            order=lambda r: r["overlay_id"])]

    async def list(self, tenant_id: str, vault_id: str) -> builtins.list[OverlayRecord]:
        return [OverlayRecord.from_row(r) for r in self._select(
            lambda r: r["vault_id"] == vault_id and r["tenant_id"] == tenant_id,
            order=lambda r: (r["applied_at"], r["overlay_id"]))]

    async def page(self, tenant_id: str, vault_id: str,
                   after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[OverlayRecord]:
        return [OverlayRecord.from_row(r) for r in self._select(
            lambda r: r["vault_id"] == vault_id and r["tenant_id"] == tenant_id and (
                after is None or keyset_after(*after, r["applied_at"], r["overlay_id"])),
            order=lambda r: (r["applied_at"], r["overlay_id"]), limit=limit)]

    async def due_for_revert(self, now: datetime,
                             limit: int = 100) -> builtins.list[OverlayRecord]:
        now = utc(now)
        return [OverlayRecord.from_row(r) for r in self._select(
            lambda r: r["state"] == "active" and r["expires_at"] <= now,
            order=lambda r: r["expires_at"], limit=limit)]

    async def mark_reverted(self, overlay_id: str, now: datetime) -> bool:
        moved = await self.tx.update(self.table, lambda r: r["overlay_id"] == overlay_id
                                     and r["state"] == "active",
                                     {"state": "reverted", "reverted_at": now})
        return len(moved) == 1


class MemNavs(MemRepo):
    table = "nav_observations"

    async def add(self, row: Mapping[str, Any]) -> None:
        await self._add(row)

    async def history(self, entity: str, entity_ids: Sequence[str],
                      asof: datetime) -> dict[str, builtins.list[tuple[datetime, Decimal]]]:
        ids, asof = set(entity_ids), utc(asof)
        out: dict[str, builtins.list[tuple[datetime, Decimal]]] = {}
        for r in self._select(lambda r: r["entity"] == entity and r["entity_id"] in ids
                              and r["as_of"] <= asof, order=lambda r: (r["as_of"], r["id"])):
            out.setdefault(r["entity_id"], []).append((r["as_of"], r["nav"]))
        return out
