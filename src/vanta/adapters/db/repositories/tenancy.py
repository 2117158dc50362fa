"""Tenants, their plan subscriptions, users and invitations."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from vanta.adapters.db.repositories._base import _after, _Repo
from vanta.adapters.db.tables import invitations, subscriptions, tenants, users
from vanta.application.ports.records_tenancy import (
    InvitationRecord,
    SubscriptionRecord,
    TenantRecord,
    UserRecord,
)


class TenantRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(tenants).values(**row))

    async def get(self, tenant_id: str) -> TenantRecord | None:
        r = await self._one(select(tenants).where(tenants.c.tenant_id == tenant_id))
        return TenantRecord.from_row(r) if r is not None else None


class SubscriptionRepository(_Repo):
    async def current(self, tenant_id: str) -> SubscriptionRecord | None:
        r = await self._one(select(subscriptions).where(
            subscriptions.c.tenant_id == tenant_id)
            .order_by(subscriptions.c.created_at.desc()).limit(1))
        return SubscriptionRecord.from_row(r) if r is not None else None

    async def by_provider_ref(self, ref: str) -> SubscriptionRecord | None:
        r = await self._one(select(subscriptions).where(subscriptions.c.provider_ref == ref))
        return SubscriptionRecord.from_row(r) if r is not None else None

    async def replace(self, tenant_id: str, row: Mapping[str, Any]) -> None:
        """One subscription row per tenant: the newest decision wins."""
        await self.conn.execute(delete(subscriptions).where(
            subscriptions.c.tenant_id == tenant_id))
        await self.conn.execute(insert(subscriptions).values(**row))

    async def update(self, subscription_id: str, **values: Any) -> None:
        await self.conn.execute(update(subscriptions).where(
            subscriptions.c.subscription_id == subscription_id).values(**values))


class UserRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(users).values(**row))

    async def count(self, tenant_id: str) -> int:
        r = await self._one(select(func.count().label("n")).select_from(users)
                            .where(users.c.tenant_id == tenant_id))
        return int(r["n"]) if r else 0

    async def list(self, tenant_id: str) -> builtins.list[UserRecord]:
        rows = await self._all(select(users).where(users.c.tenant_id == tenant_id)
                               .order_by(users.c.created_at, users.c.user_id))
        return [UserRecord.from_row(r) for r in rows]

    async def page(self, tenant_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[UserRecord]:
        stmt = select(users).where(users.c.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(_after(users.c.created_at, users.c.user_id, after))
        rows = await self._all(stmt.order_by(users.c.created_at, users.c.user_id).limit(limit))
        return [UserRecord.from_row(r) for r in rows]

    async def by_sub(self, oidc_sub: str) -> UserRecord | None:
        r = await self._one(select(users).where(users.c.oidc_sub == oidc_sub))
        return UserRecord.from_row(r) if r is not None else None


class InvitationRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(invitations).values(**row))

    async def pending(self, tenant_id: str, now: datetime) -> int:
        r = await self._one(select(func.count().label("n")).select_from(invitations).where(
            invitations.c.tenant_id == tenant_id, invitations.c.accepted_at.is_(None),
            invitations.c.expires_at > now))
        return int(r["n"]) if r else 0

    async def by_token_hash(self, token_hash: str) -> InvitationRecord | None:
        r = await self._one(select(invitations).where(invitations.c.token_hash == token_hash))
        return InvitationRecord.from_row(r) if r is not None else None

    async def accept(self, invitation_id: str, user_id: str, now: datetime) -> None:
        await self.conn.execute(update(invitations).where(
            invitations.c.invitation_id == invitation_id).values(accepted_at=now,
                                                                  user_id=user_id))

    async def list(self, tenant_id: str) -> builtins.list[InvitationRecord]:
        rows = await self._all(select(invitations).where(invitations.c.tenant_id == tenant_id)
                               .order_by(invitations.c.created_at))
        return [InvitationRecord.from_row(r) for r in rows]
