"""index sms_messages by status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The scheduler's reconcile looks for outbound messages still ``scheduled`` (recorded, never
handed to the provider) every minute; without an index that is a scan of every SMS ever sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sms_messages_status_created", "sms_messages", ["status", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_sms_messages_status_created", table_name="sms_messages")
