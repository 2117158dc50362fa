"""billing_inbox: the tenant an event was attributed to, for the inbox review listing

Provider events arrive unauthenticated by tenant; once applied, the tenant the event was
attributed to is recorded so a tenant's billing readers can list their own events only.
Rows received before this revision stay unattributed (NULL) and are listed to no tenant.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("billing_inbox") as batch:
        batch.add_column(sa.Column("tenant_id", sa.String(64), nullable=True))
    op.create_index("ix_billing_inbox_tenant_received", "billing_inbox",
                    ["tenant_id", "received_at", "inbox_id"])


def downgrade() -> None:
    op.drop_index("ix_billing_inbox_tenant_received", table_name="billing_inbox")
    with op.batch_alter_table("billing_inbox") as batch:
        batch.drop_column("tenant_id")
