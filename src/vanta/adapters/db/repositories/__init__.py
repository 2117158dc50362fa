"""Repositories over one connection, one module per feature. Every read a tenant can reach
takes its tenant id. This package re-exports every repository, so imports keep one home."""

from vanta.adapters.db.repositories._base import OUTBOX_CHANNEL, Row, _Repo
from vanta.adapters.db.repositories.audit import AuditRepository
from vanta.adapters.db.repositories.catalog import (
    FollowerRepository,
    InstrumentRepository,
    NavRepository,
    OverlayRepository,
    VaultRepository,
)
from vanta.adapters.db.repositories.crossrail import (
    BufferRepository,
    LegRepository,
    VenueFeeRepository,
)
from vanta.adapters.db.repositories.delivery import AttemptRepository, OutboxRepository
from vanta.adapters.db.repositories.orders import (
    ChildOrderRepository,
    FillRepository,
    ManagerOrderRepository,
)
from vanta.adapters.db.repositories.tenancy import (
    InvitationRepository,
    SubscriptionRepository,
    TenantRepository,
    UserRepository,
)
from vanta.application.ports.delivery import OutboxLease

__all__ = [
    "OUTBOX_CHANNEL",
    "AttemptRepository",
    "AuditRepository",
    "BufferRepository",
    "ChildOrderRepository",
    "FillRepository",
    "FollowerRepository",
    "InstrumentRepository",
    "InvitationRepository",
    "LegRepository",
    "ManagerOrderRepository",
    "NavRepository",
    "OutboxLease",
    "OutboxRepository",
    "OverlayRepository",
    "Row",
    "SubscriptionRepository",
    "TenantRepository",
    "UserRepository",
    "VaultRepository",
    "VenueFeeRepository",
    "_Repo",
]
