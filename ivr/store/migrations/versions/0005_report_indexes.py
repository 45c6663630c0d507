"""indexes for the console's reports and contacts pages

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

The reports count finished notifications per day, plan, campaign and outcome, calls answered
and fallback SMS over a period. Each of those reads one covering index over a time range
instead of the tables' wide rows (a notification's variables, a call's session), which is
what keeps a report over 100,000 notifications fast (bench/console_pages.py). The contacts
page lists the numbers opted out of one category.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_notifications_report", "notifications",
     ["finished_at", "plan_id", "campaign_id", "outcome", "status", "attempts"]),
    ("ix_calls_report", "calls",
     ["created_at", "direction", "plan_id", "status", "answered_by", "answered_at",
      "notification_id"]),
    ("ix_sms_messages_report", "sms_messages",
     ["created_at", "direction", "status", "notification_id"]),
    ("ix_opt_outs_category_number", "opt_outs", ["category", "number"]),
)  # fmt: skip


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
