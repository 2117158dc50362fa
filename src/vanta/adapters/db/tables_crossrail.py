"""Tables of cross-rail execution, on the one ``metadata`` of ``tables`` (import them from
there: ``tables`` imports this module once its own tables are defined)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table

from vanta.adapters.db.tables import ID, TS, metadata
from vanta.adapters.db.types import ExactDecimal, JsonDoc

# Cross-rail execution: venue fee models (one row per edited venue, the current version),
# stablecoin buffers (a vault default or a follower override) and child legs.
venue_fee_models = Table(
    "venue_fee_models", metadata,
    Column("venue", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("model", JsonDoc, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(255), nullable=False),
)

stablecoin_buffers = Table(
    "stablecoin_buffers", metadata,
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("entity", String(16), primary_key=True),  # vault | follower
    Column("entity_id", ID, primary_key=True),
    Column("amount", ExactDecimal, nullable=False),
    Column("updated_at", TS, nullable=False),
)

child_legs = Table(
    "child_legs", metadata,
    Column("leg_id", String(80), primary_key=True),  # <fo_id>.<idx>
    Column("fo_id", ID, ForeignKey("follower_orders.fo_id"), nullable=False, index=True),
    Column("tenant_id", ID, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("pair", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    Column("filled", ExactDecimal, nullable=False),
    Column("state", String(16), nullable=False),
    Column("after_idx", Integer, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("reason", String(200), nullable=True),
    Column("context", JsonDoc, nullable=True),
    Column("updated_at", TS, nullable=False),
)
