"""Operator alerts: the tenant's channels and the queue of alerts (stored with the unit of work,
so an alert is raised in the same transaction as the change it reports). Email channels go
out by the one mail port (:class:`~vanta.application.ports.mailer.Mailer`); webhook channels
by the follower webhooks' own sender, signed and SSRF-vetted alike."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["AlertChannelRecord", "AlertRecord", "AlertRepo"]


@dataclass(frozen=True, slots=True)
class AlertChannelRecord:
    channel_id: str
    tenant_id: str
    kind: str  # "webhook" | "email"
    target: str  # the operator's URL, or an email address
    secret_ref: str | None  # webhook signing key, in the secret store
    kinds: list[str] | None  # alert kinds it receives; None: every kind
    created_at: datetime
    created_by: str

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> AlertChannelRecord:
        return cls(r["channel_id"], r["tenant_id"], r["kind"], r["target"], r["secret_ref"],
                   r["kinds"], r["created_at"], r["created_by"])

    def wants(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


@dataclass(frozen=True, slots=True)
class AlertRecord:
    alert_id: str
    tenant_id: str
    kind: str
    subject: str
    detail: dict[str, Any]
    state: str  # pending | sending | sent | suppressed | failed
    created_at: datetime
    attempts: int
    next_at: datetime | None  # pending: not before; sending: the claim lapses then
    sent_at: datetime | None
    outcome: dict[str, Any] | None  # channel id -> "ok" or the last error; or why held back

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> AlertRecord:
        return cls(r["alert_id"], r["tenant_id"], r["kind"], r["subject"], r["detail"],
                   r["state"], r["created_at"], r["attempts"], r["next_at"], r["sent_at"],
                   r["outcome"])


class AlertRepo(Protocol):
    async def add_channel(self, row: Mapping[str, Any]) -> None: ...

    async def channels(self, tenant_id: str) -> builtins.list[AlertChannelRecord]:
        """Oldest first."""
        ...

    async def get_channel(self, tenant_id: str, channel_id: str) -> AlertChannelRecord | None:
        ...

    async def delete_channel(self, tenant_id: str, channel_id: str) -> bool: ...

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue alerts (state ``pending``) in one statement."""
        ...

    async def due(self, now: datetime, limit: int) -> builtins.list[AlertRecord]:
        """Pending alerts whose ``next_at`` passed (or is unset), and claims that lapsed
        (``sending`` past ``next_at``), oldest first."""
        ...

    async def update(self, alert_id: str, *, expect_state: str, **values: Any) -> bool:
        """Compare-and-set on state: two workers never both claim one alert."""
        ...

    async def sent_since(self, tenant_id: str,
                         since: datetime) -> builtins.list[tuple[str, str, datetime]]:
        """(kind, subject, sent_at) of the tenant's alerts sent after ``since``."""
        ...

    async def held_back(self, tenant_id: str, kind: str, before: datetime) -> int:
        """How many of the tenant's alerts of ``kind`` raised before ``before`` were
        suppressed since the last one of that kind that was sent was raised (alerts are
        handled in the order they were raised, so: the ones the next sent alert stands for)."""
        ...

