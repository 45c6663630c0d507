"""index a campaign's notifications in creation order

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

A campaign's export (and any page of its notifications) walks them in creation order by
keyset, ``(created_at, id) > (last page's)``. Without this index every page sorted all of
the campaign's notifications again: exporting 100,000 took 28 s against 1.4 s for reading
them once (bench/campaigns.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_notifications_campaign_created",
        "notifications",
        ["campaign_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_campaign_created", table_name="notifications")
