"""indexes for the console's lists: notifications newest first, calls under way

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

The notifications page shows one page newest first, unfiltered or filtered by status or plan
(by campaign: ix_notifications_campaign_created, 0006); each walks one index from its newest
end and stops after a page (without them SQLite sorted all 100,000 rows: 0.4-1.4 s a page,
bench/console_lists.py).
The live calls page reads the calls not yet final by status and creation time.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_notifications_created", "notifications", ["created_at", "id"]),
    ("ix_notifications_status_created", "notifications", ["status", "created_at", "id"]),
    ("ix_notifications_plan_created", "notifications", ["plan_id", "created_at", "id"]),
    ("ix_calls_status_created", "calls", ["status", "created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
