"""In-memory billing repositories: the provider-event inbox, follower cash flows, the fee
ledger and the subscription look-ups billing needs (the SQL ones:
``adapters/db/billing_repositories.py``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes.memory_repos_base import MemRepo
from tests.fakes.memory_store import Row, utc
from vanta.application.ports.billing import BillingConflict
from vanta.application.ports.records_billing import FeePeriodRecord, FlowRecord, InboxRecord


class MemInbox(MemRepo):
    table = "billing_inbox"

    async def add_if_new(self, row: Mapping[str, Any]) -> bool:
        if self.tx.get(self.table, row["inbox_id"]) is not None:
            return False
        await self._add(row)
        return True

    async def get(self, inbox_id: str) -> InboxRecord | None:
        r = self._first(lambda r: r["inbox_id"] == inbox_id)
        return InboxRecord.from_row(r) if r is not None else None

    async def mark(self, inbox_id: str, *, outcome: str, processed_at: datetime,
                   tenant_id: str | None = None) -> None:
        await self.tx.update(self.table, lambda r: r["inbox_id"] == inbox_id,
                             {"outcome": outcome[:64], "processed_at": processed_at,
                              "tenant_id": tenant_id})

    async def page(self, tenant_id: str, *, limit: int,
                   before: tuple[datetime, str] | None = None) -> builtins.list[InboxRecord]:
        return [InboxRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id
            and (before is None or (utc(r["received_at"]), r["inbox_id"]) < before),
            order=lambda r: (utc(r["received_at"]), r["inbox_id"]), desc=True, limit=limit)]

    async def list(self, provider: str | None = None) -> builtins.list[InboxRecord]:
        return [InboxRecord.from_row(r) for r in self._select(
            lambda r: provider is None or r["provider"] == provider,
            order=lambda r: (r["received_at"], r["inbox_id"]))]


class MemFlows(MemRepo):
    table = "follower_flows"

    async def add(self, row: Mapping[str, Any]) -> int:
        return int((await self._add(row))["id"])

    async def list(self, tenant_id: str, follower_id: str, *, after: datetime | None = None,
                   until: datetime | None = None) -> builtins.list[FlowRecord]:
        lo = utc(after) if after is not None else None
        hi = utc(until) if until is not None else None
        return [FlowRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id and r["follower_id"] == follower_id
            and (lo is None or r["at"] > lo) and (hi is None or r["at"] <= hi),
            order=lambda r: (r["at"], r["id"]))]


class MemFeeLedger(MemRepo):
    table = "fee_ledger"
    conflict = BillingConflict

    async def add(self, row: Mapping[str, Any]) -> int:
        return int((await self._add(row))["id"])

    def _of(self, tenant_id: str, follower_id: str) -> Any:
        return lambda r: r["tenant_id"] == tenant_id and r["follower_id"] == follower_id

    async def get(self, tenant_id: str, follower_id: str, label: str
                  ) -> FeePeriodRecord | None:
        mine = self._of(tenant_id, follower_id)
        return _period(self._first(lambda r: mine(r) and r["period_label"] == label))

    async def last(self, tenant_id: str, follower_id: str) -> FeePeriodRecord | None:
        return _period(self._first(self._of(tenant_id, follower_id),
                                   order=lambda r: (r["period_end"], r["id"]), desc=True))

    async def list(self, tenant_id: str, follower_id: str) -> builtins.list[FeePeriodRecord]:
        return [FeePeriodRecord.from_row(r) for r in self._select(
            self._of(tenant_id, follower_id), order=lambda r: (r["period_end"], r["id"]))]

    async def by_invoice_ref(self, tenant_id: str, invoice_ref: str
                             ) -> FeePeriodRecord | None:
        return _period(self._first(lambda r: r["tenant_id"] == tenant_id
                                   and r["invoice_ref"] == invoice_ref))

    async def invoiced(self, tenant_id: str) -> builtins.list[FeePeriodRecord]:
        return [FeePeriodRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id and r["invoice_ref"] is not None,
            order=lambda r: r["id"])]

    async def set_invoice(self, row_id: int, *, provider: str, invoice_ref: str) -> bool:
        moved = await self.tx.update(self.table, lambda r: r["id"] == row_id
                                     and r["invoice_ref"] is None,
                                     {"invoice_provider": provider, "invoice_ref": invoice_ref})
        return len(moved) == 1

    async def set_refunded(self, row_id: int, refunded: Decimal) -> None:
        await self.tx.update(self.table, lambda r: r["id"] == row_id, {"refunded": refunded})


def _period(r: Row | None) -> FeePeriodRecord | None:
    return FeePeriodRecord.from_row(r) if r is not None else None


class MemBillingSubscriptions(MemRepo):
    """The ``*_for_update`` reads take the writer slot, as the row lock (PostgreSQL) or the
    immediate transaction (SQLite) serializes them there."""

    table = "subscriptions"

    async def _locked(self) -> None:
        await self.tx.writable(self.table)

    async def by_provider_ref_for_update(self, ref: str) -> Row | None:
        await self._locked()
        return self._first(lambda r: r["provider_ref"] == ref)

    async def current_for_update(self, tenant_id: str) -> Row | None:
        await self._locked()
        return self._first(lambda r: r["tenant_id"] == tenant_id,
                           order=lambda r: r["created_at"], desc=True)

    async def by_customer_ref(self, customer_ref: str) -> Row | None:
        await self._locked()
        return self._first(lambda r: r["customer_ref"] == customer_ref,
                           order=lambda r: r["created_at"], desc=True)

    async def btcpay_due(self, now: datetime, statuses: tuple[str, ...]) -> builtins.list[Row]:
        await self._locked()
        now = utc(now)
        return self._select(lambda r: r["provider"] == "btcpay" and r["status"] in statuses
                            and r["renewal_at"] is not None and r["renewal_at"] <= now,
                            order=lambda r: r["renewal_at"])

    async def past_due_since_before(self, provider: str, cutoff: datetime
                                    ) -> builtins.list[Row]:
        await self._locked()
        cutoff = utc(cutoff)
        return self._select(lambda r: r["provider"] == provider and r["status"] == "past_due"
                            and r["past_due_since"] is not None
                            and r["past_due_since"] <= cutoff,
                            order=lambda r: r["subscription_id"])
