"""fee_ledger: the total refunded of a period's fee invoice

A refund of a performance-fee invoice is shown next to the fee it gives back. Existing rows
stay NULL (nothing refunded).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vanta.adapters.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fee_ledger") as batch:
        batch.add_column(sa.Column("refunded", vanta.adapters.db.types.ExactDecimal(length=64),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fee_ledger") as batch:
        batch.drop_column("refunded")
