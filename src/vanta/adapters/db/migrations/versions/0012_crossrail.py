"""cross-rail execution: venue fee models, stablecoin buffers, child legs

Revision ID: 0012
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import vanta.adapters.db.types

revision: str = "0012"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_DEC = vanta.adapters.db.types.ExactDecimal(length=64)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "venue_fee_models",
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model", _JSON, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("venue", name=op.f("pk_venue_fee_models")),
    )
    op.create_table(
        "stablecoin_buffers",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("amount", _DEC, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_stablecoin_buffers_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("entity", "entity_id", name=op.f("pk_stablecoin_buffers")),
    )
    op.create_table(
        "child_legs",
        sa.Column("leg_id", sa.String(length=80), nullable=False),
        sa.Column("fo_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("pair", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("amount", _DEC, nullable=False),
        sa.Column("filled", _DEC, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("after_idx", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("context", _JSON, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["fo_id"], ["follower_orders.fo_id"],
                                name=op.f("fk_child_legs_fo_id_follower_orders")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_child_legs_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("leg_id", name=op.f("pk_child_legs")),
    )
    with op.batch_alter_table("child_legs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_child_legs_fo_id"), ["fo_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("child_legs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_child_legs_fo_id"))
    op.drop_table("child_legs")
    op.drop_table("stablecoin_buffers")
    op.drop_table("venue_fee_models")
