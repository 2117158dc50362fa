"""audit per batch: the per-child records under a batch event's Merkle root

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_leaves",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["audit_events.event_id"],
                                name=op.f("fk_audit_leaves_event_id_audit_events")),
        sa.PrimaryKeyConstraint("event_id", "idx", name=op.f("pk_audit_leaves")),
    )
    op.create_index("ix_audit_leaves_tenant_entity", "audit_leaves",
                    ["tenant_id", "entity_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_leaves_tenant_entity", table_name="audit_leaves")
    op.drop_table("audit_leaves")
