"""an index for the console's contacts page

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

The contacts page lists the numbers opted out of one category. (The reports read the daily
totals of 0007; the covering indexes this revision first held for them are gone.)
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_opt_outs_category_number", "opt_outs", ["category", "number"]),
)  # fmt: skip


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
