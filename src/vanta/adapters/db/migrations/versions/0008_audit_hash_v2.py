"""audit_events.hash_v: which rules an event's hash follows

Version 2 (every event written from now on) also covers the event's tenant and the version
itself. Existing events keep version 1 and their hashes, so the chain verifies as it did; see
vanta.domain.audit for why they are not re-hashed. A downgrade drops the column: version-2
events written meanwhile would then be checked as version 1 and fail verification.

Revision ID: 0008
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
# chained after 0010 (operator alerts), which reached main first
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("hash_v", sa.Integer(), nullable=False,
                                   server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("hash_v")
