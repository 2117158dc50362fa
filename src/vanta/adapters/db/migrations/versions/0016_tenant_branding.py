"""tenant_branding: a tenant's display name, accent colour and logo for white-label pages

Revision ID: 0016
Revises: 0015 (the last of main's chain 0007 → 0010 → 0008 → 0011 with the web app's 0014
on top, all merged into this branch)
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenant_branding",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey(
            "tenants.tenant_id", name="fk_tenant_branding_tenant_id_tenants"), nullable=False),
        sa.Column("display_name", sa.String(80), nullable=False),
        sa.Column("accent_color", sa.String(7), nullable=False),
        sa.Column("logo_type", sa.String(32), nullable=True),
        sa.Column("logo_data", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_branding"),
    )


def downgrade() -> None:
    op.drop_table("tenant_branding")
