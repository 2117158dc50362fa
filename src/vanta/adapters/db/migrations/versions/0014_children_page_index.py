"""an order's children in page order: index (mo_id, created_at, fo_id)

Listing one order's children a page at a time (the web app's order page and
``GET /v1/follower-orders?mo_id=``) sorted every child of the order by (created_at, fo_id)
to return the first 50; with this index the page is a range read.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_follower_orders_mo_page", "follower_orders",
                    ["mo_id", "created_at", "fo_id"])


def downgrade() -> None:
    op.drop_index("ix_follower_orders_mo_page", table_name="follower_orders")
