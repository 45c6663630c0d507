"""campaigns, and the campaign a notification belongs to

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

notifications.campaign_id is a real foreign key (campaigns are never deleted, so it costs no
ON DELETE rule); on SQLite adding it rebuilds the notifications table once, in batch mode.
ix_notifications_campaign_progress (campaign_id, status, outcome) serves the foreign key and
lets a campaign's counts by status and by outcome be read from the index alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("plan_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("calls_per_second", sa.Float(), nullable=True),
        sa.Column("window_start", sa.Integer(), nullable=True),
        sa.Column("window_end", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("next_dial_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_campaigns_idempotency_key")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_created_at"), ["created_at"], unique=False)

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.String(length=32), nullable=True))
        batch_op.create_index(
            "ix_notifications_campaign_progress",
            ["campaign_id", "status", "outcome"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_campaign_id_campaigns"),
            "campaigns",
            ["campaign_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_campaign_id_campaigns"), type_="foreignkey"
        )
        batch_op.drop_index("ix_notifications_campaign_progress")
        batch_op.drop_column("campaign_id")

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_created_at"))

    op.drop_table("campaigns")
