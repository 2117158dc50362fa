"""open children per manager order: index (mo_id, state)

Finishing a dispatch batch asks, for each manager order in it, whether any child is still
open; with only ``mo_id`` indexed that read every child of the order, once per batch.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_follower_orders_mo_state", "follower_orders", ["mo_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_follower_orders_mo_state", table_name="follower_orders")
