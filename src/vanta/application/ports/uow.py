"""The unit of work and the repositories the application reads and writes through.

One transaction (``async with uow:``; leaving without ``commit()`` rolls back), implemented by
``vanta.adapters.db.uow`` and the fake in ``tests/fakes``. Reads return typed records, writes
take mappings; a tenant-reachable read takes the tenant id.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from vanta.application.ports.alerts import AlertRepo
from vanta.application.ports.audit import AuditRepo
from vanta.application.ports.delivery import AttemptWindow, ChildMoves, OutboxLease
from vanta.application.ports.legs import LegRepo
from vanta.application.ports.pages import InstrumentPages, OverlayPages, UserPages, VaultPages
from vanta.application.ports.records_catalog import (
    FollowerRecord,
    InstrumentRecord,
    OverlayRecord,
    VaultRecord,
)
from vanta.application.ports.records_orders import (
    AttemptRecord,
    ChildOrderRecord,
    FillRecord,
    ManagerOrderRecord,
    OutboxRecord,
)
from vanta.application.ports.records_tenancy import (
    InvitationRecord,
    SubscriptionRecord,
    TenantRecord,
    UserRecord,
)
from vanta.application.ports.venue_fees import BufferRepo, VenueFeeRepo
from vanta.domain.orders import ChildOrder

Row = dict[str, Any]
"""One stored row, column name to value (timestamps aware, decimals exact)."""


class Conflict(Exception):
    """A write collided with a unique key (another writer got there first). The storage
    adapter raises it (or a subclass, e.g. ``ports.billing.BillingConflict``) in place of its
    driver's integrity error, so the application can react (e.g. read the winner's row)
    without knowing the database. Not an API error by itself (``domain.errors.Conflict`` is)."""


class Busy(Exception):
    """The store took no write in time: nothing written, try again (API: 503, Retry-After)."""


class TenantRepo(Protocol):
    async def add(self, row: Mapping[str, Any]) -> None: ...

    async def get(self, tenant_id: str) -> TenantRecord | None: ...


class VaultRepo(VaultPages, Protocol):
    async def add(self, row: Mapping[str, Any]) -> None: ...

    async def get(self, tenant_id: str, vault_id: str) -> VaultRecord | None: ...

    async def get_for_update(self, tenant_id: str, vault_id: str) -> VaultRecord | None:
        """Locks the vault row on PostgreSQL so expansions of one vault run one at a time."""

    async def list(self, tenant_id: str) -> builtins.list[VaultRecord]: ...

    async def set_maintenance(self, tenant_id: str, vault_id: str, enabled: bool) -> None: ...

    async def update(self, tenant_id: str, vault_id: str, **values: Any) -> None: ...

    async def under_maintenance(self, vault_ids: Iterable[str]) -> set[str]:
        """Which of ``vault_ids`` are in maintenance (one query for a dispatch batch)."""


class FollowerRepo(Protocol):
    async def add(self, row: Mapping[str, Any]) -> None: ...

    async def get(self, tenant_id: str, follower_id: str) -> FollowerRecord | None: ...

    async def get_unscoped(self, follower_id: str) -> FollowerRecord | None:
        """For workers acting on a stored child order, which already carries its tenant."""

    async def get_many_unscoped(self,
                                follower_ids: Iterable[str]) -> dict[str, FollowerRecord]: ...

    async def list_for_vault(self, tenant_id: str,
                             vault_id: str) -> builtins.list[FollowerRecord]: ...

    async def page_for_vault(self, tenant_id: str, vault_id: str, after: str | None,
                             limit: int) -> builtins.list[FollowerRecord]: ...

    async def update(self, tenant_id: str, follower_id: str, **values: Any) -> None: ...


class ManagerOrderRepo(Protocol):
    async def add(self, row: Mapping[str, Any]) -> None: ...

    async def get(self, tenant_id: str, mo_id: str) -> ManagerOrderRecord | None: ...

    async def get_unscoped(self, mo_id: str) -> ManagerOrderRecord | None: ...

    async def get_many_unscoped(self, mo_ids: Iterable[str]) -> dict[str, ManagerOrderRecord]:
        """Without the expansion snapshot (every follower's inputs: large, not needed)."""

    async def list(self, tenant_id: str, since: datetime | None, limit: int,
                   vault_id: str | None = None,
                   after: tuple[datetime, str] | None = None,
                   vault_ids: Iterable[str] | None = None, with_snapshot: bool = True
                   ) -> builtins.list[ManagerOrderRecord]: ...

    async def net_position(self, vault_id: str, symbol: str) -> Decimal:
        """The manager's own position in a symbol: its orders, not follower syncs."""

    async def holdings(self, vault_id: str) -> dict[str, tuple[Decimal, str, Decimal | None]]:
        """symbol -> (net qty, venue, last ref price) of the manager's open positions."""

    async def reopen(self, mo_id: str) -> None:
        """A redelivered child makes a completed order open again."""

    async def set_state(self, mo_id: str, state: str) -> None: ...


class ChildOrderRepo(ChildMoves, Protocol):
    async def add_many(self, children: Sequence[ChildOrder], *, tenant_id: str, vault_id: str,
                       now: datetime) -> None: ...

    async def positions(self, follower_ids: Iterable[str],
                        symbols: Iterable[str]) -> dict[tuple[str, str], Decimal]:
        """Net quantity per (follower, symbol) of children that count (POSITION_STATES)."""

    async def get(self, tenant_id: str, fo_id: str) -> ChildOrderRecord | None: ...

    async def get_unscoped(self, fo_id: str) -> ChildOrderRecord | None: ...

    async def list(self, tenant_id: str, *, follower_id: str | None, mo_id: str | None,
                   since: datetime | None, limit: int,
                   after: tuple[datetime, str] | None = None,
                   vault_ids: Iterable[str] | None = None
                   ) -> builtins.list[ChildOrderRecord]: ...

    async def update(self, fo_id: str, *, expect_state: str, **values: Any) -> bool:
        """Compare-and-set on state, so two workers can never both move one child."""

    async def get_many_unscoped(self, fo_ids: Iterable[str]) -> dict[str, ChildOrderRecord]:
        """For delivery: without the sizing record (``audit``), which delivery never reads."""

    async def update_many(self, fo_ids: Sequence[str], *, expect_state: str,
                          count_attempt: bool = False, **values: Any) -> dict[str, int]:
        """Compare-and-set for many children in one statement: the ones that moved, each
        with its ``dispatch_attempts`` after the update (``count_attempt`` adds one)."""
        ...

    async def with_open_children(self, mo_ids: Iterable[str],
                                 open_states: Iterable[str]) -> set[str]:
        """The orders among ``mo_ids`` with a child in ``open_states`` (cheap at any size)."""
        ...

    async def dead_letters(self, tenant_id: str, *, since: datetime | None, limit: int,
                           vault_ids: Iterable[str] | None = None,
                           follower_id: str | None = None, after: tuple[datetime, str] | None = None
                           ) -> builtins.list[ChildOrderRecord]:
        """``vault_ids`` / ``follower_id``: the caller's narrowing, applied in the query."""
        ...

    async def state_counts(self, tenant_id: str, mo_id: str,
                           follower_id: str | None = None) -> dict[str, int]: ...

    async def awaiting_fills(self, limit: int) -> builtins.list[ChildOrderRecord]:
        """Bridged children the broker accepted and has not finished filling."""
        ...


class OutboxRepo(Protocol):
    async def add_many(self, topic: str, items: Sequence[tuple[str, Mapping[str, Any]]],
                       now: datetime) -> None: ...

    async def claim_due(self, topic: str, now: datetime, limit: int,
                        lease: timedelta) -> builtins.list[OutboxRecord]:
        """Lease up to ``limit`` due rows, rescheduled ones (retries) first, then the oldest;
        a worker that dies lets its lease lapse."""
        ...

    async def take_many(self, leases: Sequence[OutboxLease], now: datetime,
                        lease: timedelta) -> builtins.list[OutboxRecord]:
        """Renew each row still open and on the lease its message names (number, and the
        expiry when named: renewing moves it, so of two copies of one message only the first
        takes the row; no number: any live lease); the rows renewed."""
        ...

    async def renew_many(self, leases: Sequence[tuple[int, int]], now: datetime,
                         lease: timedelta) -> builtins.list[int]:
        """Heartbeat: renew each open (row id, lease number) still leased; the ids renewed."""
        ...

    async def hand_over(self, leases: Sequence[OutboxLease], until: datetime) -> int:
        """Move each open lease still exactly as named to expire at ``until`` (the relay's
        claim becomes the bus wait; one a consumer took is kept). The number moved."""
        ...

    async def requeue(self, key: str, now: datetime) -> None:
        """Make the (single) outbox row of ``key`` due again, creating it if it is gone."""
        ...

    async def complete(self, row_id: int, now: datetime) -> None: ...

    async def complete_many(self, row_ids: Sequence[int], now: datetime) -> None: ...

    async def release_many(self, row_ids: Sequence[int]) -> None:
        """Hand leases back unused: the rows are due again at once."""

    async def release_unclaimed(self, leases: Sequence[OutboxLease]) -> int:
        """Hand back each lease still exactly as leased (number and expiry, row open): due
        again at once; one a consumer renewed meanwhile is kept. The number handed back."""
        ...

    async def reschedule_many(self, due: Sequence[tuple[int, datetime]]) -> None: ...

    async def pending_count(self, topic: str) -> int: ...


class AttemptRepo(AttemptWindow, Protocol):
    async def mark_lost(self, fo_id: str) -> None:
        """Attempts whose worker died before recording an answer."""
        ...

    async def mark_lost_many(self, fo_ids: Sequence[str]) -> None: ...

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    async def settle_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record answers: each row carries ``fo_id``, ``attempt_no``, ``started_at`` and the
        outcome columns; the attempt's row is updated, or added if it is missing."""
        ...

    async def list(self, fo_id: str) -> builtins.list[AttemptRecord]: ...

    async def list_many(self, fo_ids: Sequence[str]
                        ) -> dict[str, builtins.list[AttemptRecord]]:
        """Attempts per child (in attempt order); children without any are absent."""
        ...


class OverlayRepo(OverlayPages, Protocol):
    async def add(self, row: Mapping[str, Any]) -> None: ...

    async def active(self, vault_id: str, at: datetime) -> builtins.list[OverlayRecord]: ...

    async def list(self, tenant_id: str, vault_id: str) -> builtins.list[OverlayRecord]: ...

    async def due_for_revert(self, now: datetime,
                             limit: int = 100) -> builtins.list[OverlayRecord]: ...

    async def mark_reverted(self, overlay_id: str, now: datetime) -> bool: ...


class NavRepo(Protocol):
    async def add(self, row: Mapping[str, Any]) -> None: ...

    async def history(self, entity: str, entity_ids: Sequence[str],
                      asof: datetime) -> dict[str, builtins.list[tuple[datetime, Decimal]]]:
        """Observations up to ``asof`` per entity, oldest first."""
        ...


class InstrumentRepo(InstrumentPages, Protocol):
    async def get(self, symbol: str, venue: str) -> InstrumentRecord | None: ...

    async def upsert(self, row: Mapping[str, Any]) -> None: ...

    async def list(self) -> builtins.list[InstrumentRecord]: ...


class FillRepo(Protocol):
    async def add_if_new(self, row: Mapping[str, Any]) -> bool:
        """Insert a fill unless its trade id is known: a report seen twice counts once."""
        ...

    async def for_child(self, fo_id: str) -> builtins.list[FillRecord]: ...

    async def for_children(self, fo_ids: Sequence[str]
                           ) -> dict[str, builtins.list[FillRecord]]:
        """Fills per child, by time then trade id; children without any are absent."""
        ...


class SubscriptionRepo(Protocol):
    async def current(self, tenant_id: str) -> SubscriptionRecord | None: ...

    async def by_provider_ref(self, ref: str) -> SubscriptionRecord | None: ...

    async def replace(self, tenant_id: str, row: Mapping[str, Any]) -> None:
        """One subscription row per tenant: the newest decision wins."""
        ...

    async def update(self, subscription_id: str, **values: Any) -> None: ...


class UserRepo(UserPages, Protocol):
    async def add(self, row: Mapping[str, Any]) -> None: ...

    async def count(self, tenant_id: str) -> int: ...

    async def list(self, tenant_id: str) -> builtins.list[UserRecord]: ...

    async def by_sub(self, oidc_sub: str) -> UserRecord | None: ...


class InvitationRepo(Protocol):
    async def add(self, row: Mapping[str, Any]) -> None: ...

    async def pending(self, tenant_id: str, now: datetime) -> int: ...

    async def by_token_hash(self, token_hash: str) -> InvitationRecord | None: ...

    async def accept(self, invitation_id: str, user_id: str, now: datetime) -> None: ...

    async def list(self, tenant_id: str) -> builtins.list[InvitationRecord]: ...


class UnitOfWork(Protocol):
    """One transaction with the repositories bound to it."""

    @property
    def tenants(self) -> TenantRepo: ...

    @property
    def vaults(self) -> VaultRepo: ...

    @property
    def followers(self) -> FollowerRepo: ...

    @property
    def manager_orders(self) -> ManagerOrderRepo: ...

    @property
    def child_orders(self) -> ChildOrderRepo: ...

    @property
    def outbox(self) -> OutboxRepo: ...

    @property
    def attempts(self) -> AttemptRepo: ...

    @property
    def audit(self) -> AuditRepo: ...

    @property
    def overlays(self) -> OverlayRepo: ...

    @property
    def navs(self) -> NavRepo: ...

    @property
    def instruments(self) -> InstrumentRepo: ...

    @property
    def fills(self) -> FillRepo: ...

    @property
    def legs(self) -> LegRepo: ...

    @property
    def venue_fees(self) -> VenueFeeRepo: ...

    @property
    def buffers(self) -> BufferRepo: ...

    @property
    def subscriptions(self) -> SubscriptionRepo: ...

    @property
    def users(self) -> UserRepo: ...

    @property
    def invitations(self) -> InvitationRepo: ...

    @property
    def alerts(self) -> AlertRepo: ...
    # Billing repositories (inbox, flows, fee_ledger, ...): ports in ports.billing.

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


UowFactory = Callable[[], UnitOfWork]
"""Opens a fresh unit of work."""
