"""An in-memory unit of work: every repository of ``ports.uow`` and ``ports.billing`` over dict
tables, with the SQL adapter's transaction semantics (see ``memory_store``) and its results
(the same rows, orders, compare-and-set answers, leases and hash chain: the contract suite
``tests/contract/test_uow_contract*.py`` runs one set of cases against this and SQL).

Use::

    db = MemoryDatabase()
    async with db.uow() as uow: ...      # or pass db.uow as the UowFactory
"""

from __future__ import annotations

from types import TracebackType

from tests.fakes.memory_repos_alerts import MemAlerts
from tests.fakes.memory_repos_billing import (
    MemBillingSubscriptions,
    MemFeeLedger,
    MemFlows,
    MemInbox,
)
from tests.fakes.memory_repos_branding import MemBranding
from tests.fakes.memory_repos_catalog import (
    MemFollowers,
    MemInstruments,
    MemInvitations,
    MemNavs,
    MemOverlays,
    MemSubscriptions,
    MemTenants,
    MemUsers,
    MemVaults,
)
from tests.fakes.memory_repos_crossrail import MemBuffers, MemLegs, MemVenueFees
from tests.fakes.memory_repos_delivery import MemAttempts, MemAudit, MemOutbox
from tests.fakes.memory_repos_orders import MemChildOrders, MemFills, MemManagerOrders
from tests.fakes.memory_repos_reconcile import MemReconcile
from tests.fakes.memory_repos_studio import MemStudio
from tests.fakes.memory_store import IntegrityViolation, MemoryStore, Transaction
from vanta.application import vault_cache
from vanta.application.ports.clock import Clock, utcnow

__all__ = ["IntegrityViolation", "MemoryDatabase", "MemoryStore", "MemoryUnitOfWork"]


class MemoryUnitOfWork:
    """``async with uow:`` opens a transaction; leaving it without ``commit()`` rolls back."""

    def __init__(self, store: MemoryStore, clock: Clock = utcnow, *,
                 readonly: bool = False) -> None:
        self.store = store
        self.readonly = readonly  # as on SQLite, a hint: writes still work
        self._clock = clock
        self._tx: Transaction | None = None
        self._committed = False

    async def __aenter__(self) -> MemoryUnitOfWork:
        tx = self._tx = Transaction(self.store)
        self._committed = False
        self.tenants = MemTenants(tx)
        self.vaults = MemVaults(tx)
        self.followers = MemFollowers(tx)
        self.manager_orders = MemManagerOrders(tx)
        self.child_orders = MemChildOrders(tx)
        self.outbox = MemOutbox(tx)
        self.attempts = MemAttempts(tx)
        self.audit = MemAudit(tx, self._clock)
        self.overlays = MemOverlays(tx)
        self.navs = MemNavs(tx)
        self.instruments = MemInstruments(tx)
        self.fills = MemFills(tx)
        self.inbox = MemInbox(tx)
        self.flows = MemFlows(tx)
        self.fee_ledger = MemFeeLedger(tx)
        self.billing_subscriptions = MemBillingSubscriptions(tx)
        self.subscriptions = MemSubscriptions(tx)
        self.users = MemUsers(tx)
        self.invitations = MemInvitations(tx)
        self.studio = MemStudio(tx)
        self.branding = MemBranding(tx)
        self.alerts = MemAlerts(tx)
        self.reconciliations = MemReconcile(tx)
        self.venue_fees = MemVenueFees(tx)
        self.buffers = MemBuffers(tx)
        self.legs = MemLegs(tx)
        return self

    async def commit(self) -> None:
        assert self._tx is not None, "commit outside the unit of work's block"
        written = self._tx.commit()
        self._committed = True
        if "vaults" in written:  # as the SQL unit of work: after the commit
            await vault_cache.cache().invalidate()

    async def rollback(self) -> None:
        assert self._tx is not None
        self._tx.rollback()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._tx is not None
        # Writes after a commit start a new transaction that nobody commits (as SQL's
        # autobegin followed by close): they are dropped too.
        self._tx.rollback()
        self._tx = None


class MemoryDatabase:
    """One fake database: the store and a factory of units of work over it."""

    def __init__(self, clock: Clock = utcnow) -> None:
        self.store = MemoryStore()
        self.clock = clock

    def uow(self, readonly: bool = False) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.store, self.clock, readonly=readonly)
