"""Tables added after the core schema: tenant branding, operator alerts, reconciliation and
Replay Studio runs.

They share :data:`vanta.adapters.db.tables.metadata`; ``tables`` re-exports them, so callers
import every table from one place.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from vanta.adapters.db.tables import ID, SEQ, TS, metadata
from vanta.adapters.db.types import JsonDoc

# A tenant's brand on its white-label pages; the logo's bytes are kept (base64), never a URL.
tenant_branding = Table(
    "tenant_branding", metadata,
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), primary_key=True),
    Column("display_name", String(80), nullable=False),
    Column("accent_color", String(7), nullable=False),  # "#rrggbb"
    Column("logo_type", String(32), nullable=True), Column("logo_data", Text, nullable=True),
    Column("updated_at", TS, nullable=False), Column("updated_by", String(255), nullable=False),
)

# Where a tenant's operators are told about dead letters, disabled endpoints and lost orders.
alert_channels = Table(
    "alert_channels", metadata,
    Column("channel_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # webhook | email
    Column("target", String(2048), nullable=False),  # URL or email address
    Column("secret_ref", String(255), nullable=True),  # webhook signing key (secret store)
    Column("kinds", JsonDoc, nullable=True),  # alert kinds it receives; NULL: all
    Column("created_at", TS, nullable=False),
    Column("created_by", String(255), nullable=False),
)

# The alert queue: raised in the transaction of the change it reports, sent by the scheduler.
alerts = Table(
    "alerts", metadata,
    Column("alert_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("detail", JsonDoc, nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("created_at", TS, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", TS, nullable=True),
    Column("sent_at", TS, nullable=True),
    Column("outcome", JsonDoc, nullable=True),
    Index("ix_alerts_state_created", "state", "created_at"),
    Index("ix_alerts_tenant_kind_sent", "tenant_id", "kind", "sent_at"),
)

# Reconciliation (migration 0011): drift thresholds, webhook followers' position reports, runs.
reconcile_thresholds = Table(
    "reconcile_thresholds", metadata,
    Column("vault_id", ID, ForeignKey("vaults.vault_id"), primary_key=True),
    Column("follower_id", ID, primary_key=True),  # "" = the vault's own threshold
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("threshold_bps", Integer, nullable=False),
    Column("updated_at", TS, nullable=False),
)

position_reports = Table(
    "position_reports", metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("follower_id", ID, ForeignKey("followers.follower_id"), nullable=False),
    Column("positions", JsonDoc, nullable=False),  # symbol -> quantity (string)
    Column("as_of", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Index("ix_position_reports_follower_asof", "follower_id", "as_of"),
)

reconcile_runs = Table(
    "reconcile_runs", metadata,
    Column("run_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("vault_id", ID, ForeignKey("vaults.vault_id"), nullable=False, index=True),
    Column("dry_run", Boolean, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("report", JsonDoc, nullable=False),
)


# Replay Studio runs: the request, who ran it, and the whole answer with its hash.
studio_runs = Table(
    "studio_runs", metadata, Column("run_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("vault_id", ID, nullable=False), Column("follower_id", ID, nullable=True),
    Column("actor", String(255), nullable=False), Column("created_at", TS, nullable=False),
    Column("request", JsonDoc, nullable=False), Column("engine_version", ID, nullable=False),
    Column("output_sha256", String(64), nullable=False), Column("output", Text, nullable=False),
    Index("ix_studio_runs_tenant_created", "tenant_id", "created_at"),
)

# The per-child records of a batch audit event (``dispatch:batch``): the event's payload
# holds the Merkle root over them, in ``idx`` order. ``record`` is the exact canonical JSON
# that was hashed; the other columns repeat parts of it for look-ups (the verifier checks
# that they agree with it).
audit_leaves = Table(
    "audit_leaves", metadata,
    Column("event_id", ID, ForeignKey("audit_events.event_id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("tenant_id", ID, nullable=True),
    Column("entity_id", ID, nullable=False),
    Column("action", String(64), nullable=False),
    Column("record", Text, nullable=False),
    Index("ix_audit_leaves_tenant_entity", "tenant_id", "entity_id"),
)
