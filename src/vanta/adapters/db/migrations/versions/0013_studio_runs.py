"""Replay Studio: stored runs, and an index to stream one vault's orders in order

Revision ID: 0013
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "studio_runs",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("vault_id", sa.String(64), nullable=False),
        sa.Column("follower_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                             "postgresql"), nullable=False),
        sa.Column("engine_version", sa.String(64), nullable=False),
        sa.Column("output_sha256", sa.String(64), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_studio_runs_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_studio_runs")),
    )
    op.create_index("ix_studio_runs_tenant_created", "studio_runs", ["tenant_id", "created_at"])
    op.create_index("ix_manager_orders_vault_created", "manager_orders",
                    ["vault_id", "created_at", "mo_id"])


def downgrade() -> None:
    op.drop_index("ix_manager_orders_vault_created", table_name="manager_orders")
    op.drop_index("ix_studio_runs_tenant_created", table_name="studio_runs")
    op.drop_table("studio_runs")
