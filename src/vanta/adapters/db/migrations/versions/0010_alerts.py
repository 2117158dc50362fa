"""operator alerts: alert_channels and the alerts queue

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "alert_channels",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("secret_ref", sa.String(length=255), nullable=True),
        sa.Column("kinds", _JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_alert_channels_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_alert_channels")),
    )
    op.create_index(op.f("ix_alert_channels_tenant_id"), "alert_channels", ["tenant_id"])
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", _JSON, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_alerts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_state_created", "alerts", ["state", "created_at"])
    op.create_index("ix_alerts_tenant_kind_sent", "alerts", ["tenant_id", "kind", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_tenant_kind_sent", table_name="alerts")
    op.drop_index("ix_alerts_state_created", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_alert_channels_tenant_id"), table_name="alert_channels")
    op.drop_table("alert_channels")
