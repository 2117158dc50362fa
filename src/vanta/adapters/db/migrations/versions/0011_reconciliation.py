"""reconciliation: drift thresholds, position reports and runs

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reconcile_thresholds",
        sa.Column("vault_id", sa.String(length=64), nullable=False),
        sa.Column("follower_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("threshold_bps", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_reconcile_thresholds_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.vault_id"],
                                name=op.f("fk_reconcile_thresholds_vault_id_vaults")),
        sa.PrimaryKeyConstraint("vault_id", "follower_id", name=op.f("pk_reconcile_thresholds")),
    )
    op.create_table(
        "position_reports",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("follower_id", sa.String(length=64), nullable=False),
        sa.Column("positions", _JSON, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["follower_id"], ["followers.follower_id"],
                                name=op.f("fk_position_reports_follower_id_followers")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_position_reports_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_reports")),
    )
    op.create_index("ix_position_reports_follower_asof", "position_reports",
                    ["follower_id", "as_of"], unique=False)
    op.create_table(
        "reconcile_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("vault_id", sa.String(length=64), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", _JSON, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_reconcile_runs_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.vault_id"],
                                name=op.f("fk_reconcile_runs_vault_id_vaults")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_reconcile_runs")),
    )
    op.create_index(op.f("ix_reconcile_runs_vault_id"), "reconcile_runs", ["vault_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_reconcile_runs_vault_id"), table_name="reconcile_runs")
    op.drop_table("reconcile_runs")
    op.drop_index("ix_position_reports_follower_asof", table_name="position_reports")
    op.drop_table("position_reports")
    op.drop_table("reconcile_thresholds")
