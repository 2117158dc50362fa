"""Typed records of the tenancy repositories: tenants, users and invitations.

Each record is built from a stored row (column name to value, as both the SQL adapter and
the in-memory fake read it back: timestamps aware, decimals exact, JSON decoded) by its
``from_row``, the one constructor both use, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class TenantRecord:
    tenant_id: str
    name: str
    status: str
    created_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> TenantRecord:
        return cls(r["tenant_id"], r["name"], r["status"], r["created_at"])


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    tenant_id: str
    email: str
    role: str
    oidc_sub: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> UserRecord:
        return cls(r["user_id"], r["tenant_id"], r["email"], r["role"], r["oidc_sub"],
                   r["created_at"])



@dataclass(frozen=True, slots=True)
class InvitationRecord:
    invitation_id: str
    tenant_id: str
    email: str
    role: str
    token_hash: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    user_id: str | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> InvitationRecord:
        return cls(r["invitation_id"], r["tenant_id"], r["email"], r["role"],
                   r["token_hash"], r["created_by"], r["created_at"], r["expires_at"],
                   r["accepted_at"], r["user_id"])
