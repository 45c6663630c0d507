"""Opt-outs: which numbers asked not to get which optional categories of messages.

A row with category ``*`` (ALL_CATEGORIES) covers every optional category. Whether a category is
optional at all (marketing) or always delivered (transactional) is policy, not the store's
business: callers ask ``is_opted_out`` for optional categories only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.models import ALL_CATEGORIES, OPT_OUTS, OptOutSource, utcnow
from ivr.store.statements import insert_for, require_e164, rowcount


@dataclass(frozen=True, slots=True)
class OptOutRecord:
    number: str
    category: str
    source: OptOutSource
    reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RowMapping) -> OptOutRecord:
        return cls(
            number=row["number"],
            category=row["category"],
            source=OptOutSource(row["source"]),
            reason=row["reason"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


class OptOutRepository:
    def __init__(self, session: AsyncSession, backend: str) -> None:
        self._session = session
        self._backend = backend

    async def opt_out(
        self,
        number: str,
        category: str,
        source: OptOutSource,
        reason: str | None = None,
    ) -> OptOutRecord:
        """Opt ``number`` out of ``category`` (``*`` for all optional ones); safe to repeat.

        A repeat keeps the first ``created_at`` and records the latest source and reason.
        """
        require_e164(number)
        now = utcnow()
        statement = insert_for(self._backend, OPT_OUTS).values(
            number=number,
            category=category,
            source=OptOutSource(source).value,
            reason=reason,
            created_at=now,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=[OPT_OUTS.c.number, OPT_OUTS.c.category],
            set_={"source": statement.excluded.source, "reason": reason, "updated_at": now},
        )
        row = (await self._session.execute(statement.returning(*OPT_OUTS.c))).mappings().one()
        return OptOutRecord.of(row)

    async def opt_in(self, number: str, category: str) -> int:
        """Undo opt-outs; returns how many rows went.

        ``opt_in(number, "*")`` (e.g. SMS START) opts the number back in to everything. Opting in
        to one category removes that category's row only: a ``*`` row still covers it.
        """
        require_e164(number)
        statement = delete(OPT_OUTS).where(OPT_OUTS.c.number == number)
        if category != ALL_CATEGORIES:
            statement = statement.where(OPT_OUTS.c.category == category)
        return rowcount(await self._session.execute(statement))

    async def is_opted_out(self, number: str, category: str) -> bool:
        """True if ``number`` opted out of ``category`` or of every optional category."""
        require_e164(number)
        condition = exists().where(
            OPT_OUTS.c.number == number, OPT_OUTS.c.category.in_([category, ALL_CATEGORIES])
        )
        return bool(await self._session.scalar(select(condition)))

    async def list(self, number: str) -> Sequence[OptOutRecord]:
        require_e164(number)
        statement = (
            select(OPT_OUTS).where(OPT_OUTS.c.number == number).order_by(OPT_OUTS.c.category)
        )
        return [OptOutRecord.of(row) for row in (await self._session.execute(statement)).mappings()]
