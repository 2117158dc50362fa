"""Unit of work: one database transaction with the repositories bound to it (the SQL
implementation of :class:`vanta.application.ports.uow.UnitOfWork`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vanta.adapters.db.billing_repositories import (
    BillingSubscriptionRepository,
    FeeLedgerRepository,
    FlowRepository,
    InboxRepository,
)
from vanta.adapters.db.engine import (
    SYNC_OPTION,
    take_vaults_written,
    writer_lock,
    writer_turn,
)
from vanta.adapters.db.repositories import (
    AttemptRepository,
    AuditRepository,
    BufferRepository,
    ChildOrderRepository,
    FillRepository,
    FollowerRepository,
    InstrumentRepository,
    InvitationRepository,
    LegRepository,
    ManagerOrderRepository,
    NavRepository,
    OutboxRepository,
    OverlayRepository,
    SubscriptionRepository,
    TenantRepository,
    UserRepository,
    VaultRepository,
    VenueFeeRepository,
)
from vanta.adapters.db.repositories.alerts import AlertRepository
from vanta.adapters.db.repositories.branding import BrandingRepository
from vanta.adapters.db.repositories.reconcile import ReconcileRepository
from vanta.adapters.db.repositories.studio import StudioRepository
from vanta.application import vault_cache
from vanta.application.ports.clock import Clock, utcnow


class SqlUnitOfWork:
    """``async with uow:`` opens a transaction; leaving it without ``commit()`` rolls back."""

    def __init__(self, engine: AsyncEngine, clock: Clock = utcnow, *,
                 readonly: bool = False, durable: bool = True) -> None:
        """``durable=False`` (SQLite only): the commit does not wait for the disk (see
        ``engine.SYNC_OPTION``); the dispatcher's bookkeeping, never what an API answer
        acknowledges."""
        self._engine = engine
        self._readonly = readonly
        self._durable = durable
        self._clock = clock
        self._conn: AsyncConnection | None = None
        self._committed = False
        self._turn: asyncio.Lock | None = None  # SQLite: this writer's place in the queue

    async def __aenter__(self) -> SqlUnitOfWork:
        lock = None if self._readonly else writer_lock(self._engine)
        if lock is not None:  # before taking a pooled connection: waiters hold none
            await writer_turn(lock)
            self._turn = lock
        try:
            self._conn = await self._engine.connect()
            if self._readonly:
                await self._conn.execution_options(vanta_readonly=True)
            elif not self._durable:
                await self._conn.execution_options(**{SYNC_OPTION: False})
            await self._conn.begin()
        except BaseException:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            self._release_turn()
            raise
        take_vaults_written(self._conn)  # forget a flag left by an earlier rolled-back use
        self._committed = False
        c, clock = self._conn, self._clock
        self.tenants = TenantRepository(c)
        self.vaults = VaultRepository(c)
        self.followers = FollowerRepository(c)
        self.manager_orders = ManagerOrderRepository(c)
        self.child_orders = ChildOrderRepository(c)
        self.outbox = OutboxRepository(c)
        self.attempts = AttemptRepository(c)
        self.audit = AuditRepository(c, clock)
        self.overlays = OverlayRepository(c)
        self.navs = NavRepository(c)
        self.instruments = InstrumentRepository(c)
        self.fills = FillRepository(c)
        self.inbox = InboxRepository(c)
        self.flows = FlowRepository(c)
        self.fee_ledger = FeeLedgerRepository(c)
        self.billing_subscriptions = BillingSubscriptionRepository(c)
        self.subscriptions = SubscriptionRepository(c)
        self.users = UserRepository(c)
        self.invitations = InvitationRepository(c)
        self.studio = StudioRepository(c)
        self.branding = BrandingRepository(c)
        self.alerts = AlertRepository(c)
        self.reconciliations = ReconcileRepository(c)
        self.venue_fees = VenueFeeRepository(c)
        self.buffers = BufferRepository(c)
        self.legs = LegRepository(c)
        return self

    @property
    def conn(self) -> AsyncConnection | None:
        """The open transaction's connection (for repositories that live elsewhere)."""
        return self._conn

    async def commit(self) -> None:
        assert self._conn is not None
        await self._conn.commit()
        self._committed = True
        if take_vaults_written(self._conn):  # after the commit, so no reader caches old rows
            await vault_cache.cache().invalidate()

    async def rollback(self) -> None:
        assert self._conn is not None
        await self._conn.rollback()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if not self._committed:
                await self._conn.rollback()
        finally:
            try:
                await self._conn.close()
            finally:
                self._conn = None
                self._release_turn()

    def _release_turn(self) -> None:
        if self._turn is not None:
            self._turn.release()
            self._turn = None


UowFactory = Callable[[], SqlUnitOfWork]
