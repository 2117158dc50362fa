"""outbox: a partial index of open rescheduled rows

The dispatcher and the relay claim due rescheduled rows (retries, mostly) ahead of a
backlog of first attempts, so a retry starts on its schedule; this index finds them without
reading the backlog.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("done_at IS NULL AND available_at > created_at")


def upgrade() -> None:
    op.create_index("ix_outbox_rescheduled", "outbox", ["available_at"],
                    sqlite_where=WHERE, postgresql_where=WHERE)


def downgrade() -> None:
    op.drop_index("ix_outbox_rescheduled", table_name="outbox")
