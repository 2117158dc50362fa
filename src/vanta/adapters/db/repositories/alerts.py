"""Operator alert channels and the alert queue (port: ``ports.alerts.AlertRepo``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update

from vanta.adapters.db.repositories._base import _Repo
from vanta.adapters.db.tables import alert_channels, alerts
from vanta.application.ports.alerts import AlertChannelRecord, AlertRecord


class AlertRepository(_Repo):
    async def add_channel(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(alert_channels).values(**row))

    async def channels(self, tenant_id: str) -> builtins.list[AlertChannelRecord]:
        rows = await self._all(select(alert_channels)
                               .where(alert_channels.c.tenant_id == tenant_id)
                               .order_by(alert_channels.c.created_at,
                                         alert_channels.c.channel_id))
        return [AlertChannelRecord.from_row(r) for r in rows]

    async def get_channel(self, tenant_id: str, channel_id: str) -> AlertChannelRecord | None:
        r = await self._one(select(alert_channels).where(
            alert_channels.c.tenant_id == tenant_id,
            alert_channels.c.channel_id == channel_id))
        return AlertChannelRecord.from_row(r) if r is not None else None

    async def delete_channel(self, tenant_id: str, channel_id: str) -> bool:
        res = await self.conn.execute(delete(alert_channels).where(
            alert_channels.c.tenant_id == tenant_id,
            alert_channels.c.channel_id == channel_id))
        return bool(res.rowcount)

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.conn.execute(insert(alerts), [dict(r) for r in rows])

    async def due(self, now: datetime, limit: int) -> builtins.list[AlertRecord]:
        c = alerts.c
        stmt = select(alerts).where(or_(
            and_(c.state == "pending", or_(c.next_at.is_(None), c.next_at <= now)),
            and_(c.state == "sending", c.next_at <= now),
        )).order_by(c.created_at, c.alert_id).limit(limit)
        return [AlertRecord.from_row(r) for r in await self._all(stmt)]

    async def update(self, alert_id: str, *, expect_state: str, **values: Any) -> bool:
        res = await self.conn.execute(update(alerts).where(
            alerts.c.alert_id == alert_id, alerts.c.state == expect_state).values(**values))
        return bool(res.rowcount == 1)

    async def sent_since(self, tenant_id: str,
                         since: datetime) -> builtins.list[tuple[str, str, datetime]]:
        c = alerts.c
        rows = await self._all(select(c.kind, c.subject, c.sent_at).where(
            c.tenant_id == tenant_id, c.state == "sent", c.sent_at > since)
            .order_by(c.sent_at))
        return [(r["kind"], r["subject"], r["sent_at"]) for r in rows]

    async def held_back(self, tenant_id: str, kind: str, before: datetime) -> int:
        c = alerts.c
        last_sent = select(func.max(c.created_at)).where(
            c.tenant_id == tenant_id, c.kind == kind, c.state == "sent").scalar_subquery()
        r = await self._one(select(func.count().label("n")).select_from(alerts).where(
            c.tenant_id == tenant_id, c.kind == kind, c.state == "suppressed",
            c.created_at < before, or_(last_sent.is_(None), c.created_at > last_sent)))
        return int(r["n"]) if r else 0
