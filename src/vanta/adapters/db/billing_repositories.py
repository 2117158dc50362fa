"""Repositories for billing: the provider-event inbox, follower cash flows, the fee ledger,
and the subscription look-ups billing needs beyond ``SubscriptionRepository``.

Each takes the unit of work's ``AsyncConnection`` (``InboxRepository(conn)``), so it joins the
caller's transaction; ``SqlUnitOfWork`` binds them as ``inbox``, ``flows``, ``fee_ledger`` and
``billing_subscriptions``. They implement the Protocols in
``vanta.application.ports.billing``. Every read a tenant can reach takes its tenant id.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from vanta.adapters.db.repositories import Row, _Repo
from vanta.adapters.db.tables import billing_inbox, fee_ledger, follower_flows, subscriptions
from vanta.application.ports.billing import BillingConflict
from vanta.application.ports.records_billing import FeePeriodRecord, FlowRecord, InboxRecord
from vanta.application.ports.uow import Conflict

__all__ = [
    "BillingSubscriptionRepository",
    "FeeLedgerRepository",
    "FlowRepository",
    "InboxRepository",
]


class InboxRepository(_Repo):
    """``billing_inbox``: one row per provider event (``provider:event id``), written in the
    same transaction that applies the event, so an event is applied at most once."""

    async def add_if_new(self, row: Mapping[str, Any]) -> bool:
        """Insert ``row`` unless its ``inbox_id`` is already there; True when inserted.

        ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, so two concurrent
        deliveries of one event cannot both insert (the loser sees rowcount 0)."""
        values = dict(row)
        dialect = self.conn.dialect.name
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(billing_inbox).values(**values) \
                .on_conflict_do_nothing(index_elements=["inbox_id"])
        elif dialect == "sqlite":
            stmt = sqlite.insert(billing_inbox).values(**values) \
                .on_conflict_do_nothing(index_elements=["inbox_id"])
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            if await self.get(values["inbox_id"]) is not None:
                return False
            stmt = insert(billing_inbox).values(**values)
        res = await self.conn.execute(stmt)
        return bool(res.rowcount == 1)

    async def get(self, inbox_id: str) -> InboxRecord | None:
        r = await self._one(select(billing_inbox).where(billing_inbox.c.inbox_id == inbox_id))
        return InboxRecord.from_row(r) if r is not None else None

    async def mark(self, inbox_id: str, *, outcome: str, processed_at: datetime,
                   tenant_id: str | None = None) -> None:
        await self.conn.execute(update(billing_inbox).where(
            billing_inbox.c.inbox_id == inbox_id).values(outcome=outcome[:64],
                                                         processed_at=processed_at,
                                                         tenant_id=tenant_id))

    async def page(self, tenant_id: str, *, limit: int,
                   before: tuple[datetime, str] | None = None) -> list[InboxRecord]:
        c = billing_inbox.c
        stmt = select(billing_inbox).where(c.tenant_id == tenant_id)
        if before is not None:
            ts, key = before  # spelled out: row values bind without the column types
            stmt = stmt.where(or_(c.received_at < ts,
                                  and_(c.received_at == ts, c.inbox_id < key)))
        rows = await self._all(stmt.order_by(c.received_at.desc(), c.inbox_id.desc())
                               .limit(limit))
        return [InboxRecord.from_row(r) for r in rows]

    async def list(self, provider: str | None = None) -> list[InboxRecord]:
        stmt = select(billing_inbox)
        if provider is not None:
            stmt = stmt.where(billing_inbox.c.provider == provider)
        rows = await self._all(stmt.order_by(billing_inbox.c.received_at,
                                             billing_inbox.c.inbox_id))
        return [InboxRecord.from_row(r) for r in rows]


class FlowRepository(_Repo):
    """``follower_flows``: deposits and withdrawals that move a follower's fee mark."""

    async def add(self, row: Mapping[str, Any]) -> int:
        res = await self.conn.execute(insert(follower_flows).values(**row))
        pk = res.inserted_primary_key
        return int(pk[0]) if pk else 0

    async def list(self, tenant_id: str, follower_id: str, *, after: datetime | None = None,
                   until: datetime | None = None) -> list[FlowRecord]:
        """Flows with ``after < at <= until``, oldest first (ties in insertion order)."""
        stmt = select(follower_flows).where(follower_flows.c.tenant_id == tenant_id,
                                            follower_flows.c.follower_id == follower_id)
        if after is not None:
            stmt = stmt.where(follower_flows.c.at > after)
        if until is not None:
            stmt = stmt.where(follower_flows.c.at <= until)
        rows = await self._all(stmt.order_by(follower_flows.c.at, follower_flows.c.id))
        return [FlowRecord.from_row(r) for r in rows]


class FeeLedgerRepository(_Repo):
    """``fee_ledger``: one row per follower and closed period (unique on the label)."""

    async def add(self, row: Mapping[str, Any]) -> int:
        """Raises ``BillingConflict`` if the period label is taken (the transaction is then
        unusable on PostgreSQL: the caller leaves it and re-reads in a new one)."""
        try:
            res = await self.conn.execute(insert(fee_ledger).values(**row))
        except Conflict as e:  # the engine's translation of the unique-key violation
            raise BillingConflict(f"fee period {row.get('period_label')!r} exists") from e
        pk = res.inserted_primary_key
        return int(pk[0]) if pk else 0

    async def get(self, tenant_id: str, follower_id: str, label: str
                  ) -> FeePeriodRecord | None:
        return self._record(await self._one(select(fee_ledger).where(
            fee_ledger.c.tenant_id == tenant_id, fee_ledger.c.follower_id == follower_id,
            fee_ledger.c.period_label == label)))

    async def last(self, tenant_id: str, follower_id: str) -> FeePeriodRecord | None:
        """The most recent closed period (by its end), carrying the mark forward."""
        return self._record(await self._one(select(fee_ledger).where(
            fee_ledger.c.tenant_id == tenant_id, fee_ledger.c.follower_id == follower_id)
            .order_by(fee_ledger.c.period_end.desc(), fee_ledger.c.id.desc()).limit(1)))

    async def list(self, tenant_id: str, follower_id: str) -> list[FeePeriodRecord]:
        rows = await self._all(select(fee_ledger).where(
            fee_ledger.c.tenant_id == tenant_id, fee_ledger.c.follower_id == follower_id)
            .order_by(fee_ledger.c.period_end, fee_ledger.c.id))
        return [FeePeriodRecord.from_row(r) for r in rows]

    async def by_invoice_ref(self, tenant_id: str, invoice_ref: str
                             ) -> FeePeriodRecord | None:
        return self._record(await self._one(select(fee_ledger).where(
            fee_ledger.c.tenant_id == tenant_id, fee_ledger.c.invoice_ref == invoice_ref)))

    async def invoiced(self, tenant_id: str) -> builtins.list[FeePeriodRecord]:
        rows = await self._all(select(fee_ledger).where(
            fee_ledger.c.tenant_id == tenant_id, fee_ledger.c.invoice_ref.is_not(None)))
        return [FeePeriodRecord.from_row(r) for r in rows]

    @staticmethod
    def _record(r: Row | None) -> FeePeriodRecord | None:
        return FeePeriodRecord.from_row(r) if r is not None else None

    async def set_invoice(self, row_id: int, *, provider: str, invoice_ref: str) -> bool:
        """Store the invoice once: a row that already has one keeps it."""
        res = await self.conn.execute(update(fee_ledger).where(
            fee_ledger.c.id == row_id, fee_ledger.c.invoice_ref.is_(None))
            .values(invoice_provider=provider, invoice_ref=invoice_ref))
        return bool(res.rowcount == 1)

    async def set_refunded(self, row_id: int, refunded: Decimal) -> None:
        await self.conn.execute(update(fee_ledger).where(fee_ledger.c.id == row_id)
                                .values(refunded=refunded))


class BillingSubscriptionRepository(_Repo):
    """Subscription look-ups by provider identifiers (webhooks name no tenant we trust).

    The ``*_for_update`` reads lock the row on PostgreSQL (``SELECT ... FOR UPDATE``), so two
    provider events for one subscription are applied one after the other and the
    ``last_event_at`` comparison sees the other's result. SQLite ignores the clause; its
    write transactions are serialized already (``BEGIN IMMEDIATE``)."""

    async def by_provider_ref_for_update(self, ref: str) -> Row | None:
        return await self._one(select(subscriptions).where(subscriptions.c.provider_ref == ref)
                               .with_for_update())

    async def current_for_update(self, tenant_id: str) -> Row | None:
        return await self._one(select(subscriptions).where(
            subscriptions.c.tenant_id == tenant_id)
            .order_by(subscriptions.c.created_at.desc()).limit(1).with_for_update())

    async def by_customer_ref(self, customer_ref: str) -> Row | None:
        return await self._one(select(subscriptions).where(
            subscriptions.c.customer_ref == customer_ref)
            .order_by(subscriptions.c.created_at.desc()).limit(1).with_for_update())

    async def btcpay_due(self, now: datetime, statuses: tuple[str, ...]) -> list[Row]:
        """BTCPay subscriptions in ``statuses`` whose paid period ended by ``now``."""
        return await self._all(select(subscriptions).where(
            subscriptions.c.provider == "btcpay", subscriptions.c.status.in_(statuses),
            subscriptions.c.renewal_at.is_not(None), subscriptions.c.renewal_at <= now)
            .order_by(subscriptions.c.renewal_at).with_for_update(skip_locked=True))

    async def past_due_since_before(self, provider: str, cutoff: datetime) -> list[Row]:
        return await self._all(select(subscriptions).where(
            subscriptions.c.provider == provider, subscriptions.c.status == "past_due",
            subscriptions.c.past_due_since.is_not(None),
            subscriptions.c.past_due_since <= cutoff).with_for_update(skip_locked=True))
