"""SQLAlchemy table definitions: the spec's tables plus outbox, attempts and the audit head."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from vanta.adapters.db.types import ExactDecimal, JsonDoc

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)
TS = DateTime(timezone=True)
# BigInteger autoincrement is not rowid on SQLite; Integer there keeps AUTOINCREMENT working.
SEQ = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants", metadata,
    Column("tenant_id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(32), nullable=False, default="active"),
    Column("created_at", TS, nullable=False),
)

users = Table(
    "users", metadata,
    Column("user_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("email", String(320), nullable=False),
    Column("role", String(32), nullable=False),
    Column("oidc_sub", String(255), nullable=True, unique=True),
    Column("created_at", TS, nullable=False),
)

subscriptions = Table(
    "subscriptions", metadata,
    Column("subscription_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("plan_id", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("entitlements", JsonDoc, nullable=False),
    Column("renewal_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("provider", String(16), nullable=False, server_default="manual"),
    Column("provider_ref", String(255), nullable=True, unique=True),
    Column("customer_ref", String(255), nullable=True),
    Column("past_due_since", TS, nullable=True),
    # the newest provider event applied; older ones arriving late are ignored
    Column("last_event_at", TS, nullable=True),
    Column("updated_at", TS, nullable=True),
)

vaults = Table(
    "vaults", metadata,
    Column("vault_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("label", String(200), nullable=False),
    Column("rails", JsonDoc, nullable=False),
    Column("personas", JsonDoc, nullable=False),
    Column("risk_profile", JsonDoc, nullable=False),
    Column("public", Boolean, nullable=False, default=False),
    Column("maintenance", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
)

followers = Table(
    "followers", metadata,
    Column("follower_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("vault_id", ID, ForeignKey("vaults.vault_id"), nullable=False, index=True),
    Column("label", String(200), nullable=False),
    Column("mode", String(32), nullable=False),
    Column("scale", ExactDecimal, nullable=False),
    Column("max_pos_usd", ExactDecimal, nullable=True),
    Column("kill_switch", Boolean, nullable=False, default=False),
    Column("webhook_url", String(2048), nullable=True),
    Column("hmac_key_ref", String(255), nullable=True),
    Column("bridged_brokers", JsonDoc, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("scale_mode", String(16), nullable=False, server_default="fixed"),
    Column("nav_multiplier", ExactDecimal, nullable=False, server_default="1"),
    Column("fractional", Boolean, nullable=False, server_default=false()),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("paused_reason", String(64), nullable=True),
    Column("protections", JsonDoc, nullable=True),
    Column("plan_id", String(32), nullable=False, server_default="core"),
    Column("overlay_opt_in", Boolean, nullable=False, server_default=false()),
    # Signing keys during a rotation: [{"ref": ..., "not_after": iso | null}]; all sign.
    Column("webhook_keys", JsonDoc, nullable=True),
    Column("webhook_disabled_at", TS, nullable=True),  # set on a 410 Gone
    Column("webhook_disabled_reason", String(255), nullable=True),
)

manager_orders = Table(
    "manager_orders", metadata,
    Column("mo_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("vault_id", ID, ForeignKey("vaults.vault_id"), nullable=False),
    Column("client_order_id", String(128), nullable=False),
    Column("source", String(16), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", ExactDecimal, nullable=False),
    Column("tif", String(8), nullable=False),
    Column("ref_price", ExactDecimal, nullable=True),
    Column("closes_position", Boolean, nullable=False, default=False),
    Column("meta", JsonDoc, nullable=False),
    Column("snapshot", JsonDoc, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", TS, nullable=False, index=True),
    UniqueConstraint("vault_id", "client_order_id", name="uq_manager_orders_vault_client_id"),
    Index("ix_manager_orders_vault_created", "vault_id", "created_at", "mo_id"),  # studio
)

follower_orders = Table(
    "follower_orders", metadata,
    Column("fo_id", ID, primary_key=True),
    Column("mo_id", ID, ForeignKey("manager_orders.mo_id"), nullable=False, index=True),
    Column("follower_id", ID, ForeignKey("followers.follower_id"), nullable=False),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("vault_id", ID, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", ExactDecimal, nullable=False),
    Column("cap_applied", Boolean, nullable=False, default=False),
    Column("state", String(16), nullable=False),
    Column("skip_reason", String(64), nullable=True),
    Column("broker_order_ref", String(128), nullable=True),
    Column("dispatch_attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("audit", JsonDoc, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("filled_qty", ExactDecimal, nullable=False, server_default="0"),
    Column("avg_fill_price", ExactDecimal, nullable=True),
    Column("dead_lettered_at", TS, nullable=True),
    Index("ix_follower_orders_follower_created", "follower_id", "created_at"),
    Index("ix_follower_orders_follower_symbol", "follower_id", "symbol"),
    # an order's children in page order: its first page reads 51 index entries, not all
    # 10,000 children sorted (the web app's order page, GET /v1/follower-orders?mo_id=)
    Index("ix_follower_orders_mo_page", "mo_id", "created_at", "fo_id"),
)

audit_events = Table(
    "audit_events", metadata,
    Column("event_id", ID, primary_key=True),
    Column("seq", SEQ, nullable=False, unique=True),
    Column("tenant_id", ID, nullable=True, index=True),
    Column("entity", String(32), nullable=False),
    Column("entity_id", ID, nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("payload", JsonDoc, nullable=False),
    Column("ts", String(40), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # 1: tenant outside the hash (before 0008); 2: tenant and version inside it
    Column("hash_v", Integer, nullable=False, server_default="1"),
)

# One row; updating it in each appending transaction serializes the hash chain.
audit_chain_head = Table(
    "audit_chain_head", metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", SEQ, nullable=False),
    Column("hash", String(64), nullable=False),
)

outbox = Table(
    "outbox", metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("topic", String(64), nullable=False),
    Column("key", ID, nullable=False, unique=True),
    Column("payload", JsonDoc, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("available_at", TS, nullable=False),
    Column("locked_until", TS, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("done_at", TS, nullable=True),
    Index("ix_outbox_due", "done_at", "available_at"),
)
# Rows moved off their first due time (retries, mostly): claimed ahead of a backlog of first
# attempts, so a retry starts on its schedule (partial: only open, rescheduled rows).
RESCHEDULED = text("done_at IS NULL AND available_at > created_at")
Index("ix_outbox_rescheduled", outbox.c.available_at, sqlite_where=RESCHEDULED,
      postgresql_where=RESCHEDULED)

delivery_attempts = Table(
    "delivery_attempts", metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("fo_id", ID, ForeignKey("follower_orders.fo_id"), nullable=False, index=True),
    Column("attempt_no", Integer, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("response_excerpt", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("outcome", String(16), nullable=False),
)

vault_overlays = Table(
    "vault_overlays", metadata,
    Column("overlay_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("vault_id", ID, ForeignKey("vaults.vault_id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("params", JsonDoc, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("applied_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False, index=True),
    Column("reverted_at", TS, nullable=True),
    Column("state", String(16), nullable=False),  # active | reverted
)

nav_observations = Table(
    "nav_observations", metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("entity", String(16), nullable=False),  # vault | follower
    Column("entity_id", ID, nullable=False),
    Column("nav", ExactDecimal, nullable=False),
    Column("as_of", TS, nullable=False),
    Column("source", String(32), nullable=False),
    Index("ix_nav_observations_entity_asof", "entity", "entity_id", "as_of"),
)

instruments = Table(
    "instruments", metadata,
    Column("symbol", String(32), primary_key=True),
    Column("venue", String(32), primary_key=True),
    Column("lot_step", ExactDecimal, nullable=False),
    Column("min_qty", ExactDecimal, nullable=False),
    Column("min_notional", ExactDecimal, nullable=False),
    Column("fractional_step", ExactDecimal, nullable=True),
    Column("updated_at", TS, nullable=False),
)

fills = Table(
    "fills", metadata,
    Column("trade_id", String(128), primary_key=True),  # the venue's; de-duplicates reports
    Column("fo_id", ID, ForeignKey("follower_orders.fo_id"), nullable=False, index=True),
    Column("qty", ExactDecimal, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("ts", TS, nullable=False),
    Column("recorded_at", TS, nullable=False),
)

invitations = Table(
    "invitations", metadata,
    Column("invitation_id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("email", String(320), nullable=False),
    Column("role", String(32), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # the token is never stored
    Column("created_by", String(255), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("accepted_at", TS, nullable=True),
    Column("user_id", ID, nullable=True),
)

billing_inbox = Table(
    "billing_inbox", metadata,
    Column("inbox_id", String(300), primary_key=True),  # provider:event id — de-duplicates
    Column("provider", String(16), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("received_at", TS, nullable=False),
    Column("payload", JsonDoc, nullable=False),
    Column("processed_at", TS, nullable=True),
    Column("outcome", String(64), nullable=True),
    # The tenant the event was attributed to once applied (None: no tenant could be trusted);
    # it is what scopes the inbox review listing. No foreign key: the inbox outlives tenants.
    Column("tenant_id", ID, nullable=True),
    Index("ix_billing_inbox_tenant_received", "tenant_id", "received_at", "inbox_id"),
)

follower_flows = Table(
    "follower_flows", metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("follower_id", ID, ForeignKey("followers.follower_id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # deposit | withdrawal
    Column("amount", ExactDecimal, nullable=False),
    Column("at", TS, nullable=False),
)

fee_ledger = Table(
    "fee_ledger", metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("follower_id", ID, ForeignKey("followers.follower_id"), nullable=False, index=True),
    Column("period_label", String(64), nullable=False),
    Column("period_end", TS, nullable=False),
    Column("rate", ExactDecimal, nullable=False),
    Column("nav_start", ExactDecimal, nullable=False),
    Column("nav_end", ExactDecimal, nullable=False),
    Column("net_flows", ExactDecimal, nullable=False),
    Column("pnl", ExactDecimal, nullable=False),
    Column("fee", ExactDecimal, nullable=False),
    Column("hwm_before", ExactDecimal, nullable=False),
    Column("hwm_after", ExactDecimal, nullable=False),
    Column("invoice_provider", String(16), nullable=True),
    Column("invoice_ref", String(255), nullable=True),
    Column("created_at", TS, nullable=False),
    # the total refunded of the period's invoice (NULL = nothing refunded)
    Column("refunded", ExactDecimal, nullable=True),
    UniqueConstraint("follower_id", "period_label", name="uq_fee_ledger_follower_period"),
)

# Re-exported so that every table is imported from this module; defined after the core tables
# because they reference them.
from vanta.adapters.db import tables_more as _more  # noqa: E402

tenant_branding = _more.tenant_branding
alert_channels = _more.alert_channels
alerts = _more.alerts
reconcile_thresholds = _more.reconcile_thresholds
position_reports = _more.position_reports
reconcile_runs = _more.reconcile_runs
studio_runs = _more.studio_runs
audit_leaves = _more.audit_leaves

# The cross-rail tables live in a module of their own (the size rule), re-exported here too.
from vanta.adapters.db.tables_crossrail import (  # noqa: E402, F401
    child_legs,
    stablecoin_buffers,
    venue_fee_models,
)
