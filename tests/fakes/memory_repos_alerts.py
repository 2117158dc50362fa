"""In-memory alert channels and alert queue (the SQL one: ``adapters/db/repositories/alerts``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tests.fakes.memory_repos_base import MemRepo
from tests.fakes.memory_store import utc
from vanta.application.ports.alerts import AlertChannelRecord, AlertRecord


class MemAlertChannels(MemRepo):
    table = "alert_channels"


class MemAlerts(MemRepo):
    table = "alerts"

    def __init__(self, tx: Any) -> None:
        super().__init__(tx)
        self._channels = MemAlertChannels(tx)

    async def add_channel(self, row: Mapping[str, Any]) -> None:
        await self._channels._add(row)

    async def channels(self, tenant_id: str) -> builtins.list[AlertChannelRecord]:
        return [AlertChannelRecord.from_row(r) for r in self._channels._select(
            lambda r: r["tenant_id"] == tenant_id,
            order=lambda r: (r["created_at"], r["channel_id"]))]

    async def get_channel(self, tenant_id: str, channel_id: str) -> AlertChannelRecord | None:
        r = self._channels._first(lambda r: r["tenant_id"] == tenant_id
                                  and r["channel_id"] == channel_id)
        return AlertChannelRecord.from_row(r) if r is not None else None

    async def delete_channel(self, tenant_id: str, channel_id: str) -> bool:
        return await self.tx.delete("alert_channels", lambda r: r["tenant_id"] == tenant_id
                                    and r["channel_id"] == channel_id) > 0

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.tx.insert(self.table, rows, self.conflict)

    async def due(self, now: datetime, limit: int) -> builtins.list[AlertRecord]:
        now = utc(now)

        def is_due(r: Mapping[str, Any]) -> bool:
            if r["state"] == "pending":
                return r["next_at"] is None or r["next_at"] <= now
            return r["state"] == "sending" and r["next_at"] is not None and r["next_at"] <= now
        return [AlertRecord.from_row(r) for r in self._select(
            is_due, order=lambda r: (r["created_at"], r["alert_id"]), limit=limit)]

    async def update(self, alert_id: str, *, expect_state: str, **values: Any) -> bool:
        moved = await self.tx.update(self.table, lambda r: r["alert_id"] == alert_id
                                     and r["state"] == expect_state, values)
        return len(moved) == 1

    async def sent_since(self, tenant_id: str,
                         since: datetime) -> builtins.list[tuple[str, str, datetime]]:
        since = utc(since)
        rows = self._select(lambda r: r["tenant_id"] == tenant_id and r["state"] == "sent"
                            and r["sent_at"] is not None and r["sent_at"] > since,
                            order=lambda r: r["sent_at"])
        return [(r["kind"], r["subject"], r["sent_at"]) for r in rows]

    async def held_back(self, tenant_id: str, kind: str, before: datetime) -> int:
        before = utc(before)
        mine = self._select(lambda r: r["tenant_id"] == tenant_id and r["kind"] == kind)
        last = max((r["created_at"] for r in mine if r["state"] == "sent"), default=None)
        return sum(1 for r in mine if r["state"] == "suppressed" and r["created_at"] < before
                   and (last is None or r["created_at"] > last))
