"""Read-only queries behind the console's contacts page: a paged search over known numbers.

A number is known when it has a contact row (time zone, channels, do-not-call) or an opt-out;
the list is the union of both, in number order, paged by the last number shown (keyset paging:
page 500 costs what page 1 does). Changing a contact goes through
ivr/outbound/contact_preferences.py, as for the API.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.models import ALL_CATEGORIES, CONTACTS, NOTIFICATIONS, OPT_OUTS

# What the search box takes: the start of an E.164 number ("+1202", "+44").
NUMBER_PREFIX = re.compile(r"\+?[0-9]{0,15}")


@dataclass(frozen=True)
class ContactRow:
    number: str
    timezone: str | None
    do_not_call: bool
    do_not_call_reason: str | None
    opt_outs: tuple[str, ...]


@dataclass(frozen=True)
class ContactSearch:
    """``prefix``: the start of the number; ``category``: opted out of it (or of all)."""

    prefix: str = ""
    do_not_call: bool = False
    category: str | None = None

    def __post_init__(self) -> None:
        if not NUMBER_PREFIX.fullmatch(self.prefix):
            raise ValueError(f"{self.prefix!r} is not the start of a number like +1202")

    @property
    def number_prefix(self) -> str:
        """The prefix with its "+" (numbers are stored in E.164)."""
        if not self.prefix or self.prefix.startswith("+"):
            return self.prefix
        return "+" + self.prefix


@dataclass(frozen=True)
class RecentNotification:
    id: str
    plan_id: str
    status: str
    outcome: str | None
    created_at: datetime


class ContactQueries:
    def __init__(self, session: AsyncSession, backend: str) -> None:
        self._session = session
        self._backend = backend

    def _starts_with(self, column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
        if self._backend == "sqlite":
            # SQLite's LIKE ignores case and so cannot use the primary key's index; GLOB can.
            # The prefix is "+" and digits only (ContactSearch), no GLOB wildcard.
            return column.op("GLOB")(prefix + "*")
        return column.startswith(prefix, autoescape=True)

    async def page(
        self, search: ContactSearch, *, after: str | None = None, limit: int = 50
    ) -> list[ContactRow]:
        """Up to ``limit`` numbers after ``after``, in order, with their contact and opt-outs."""
        prefix = search.number_prefix
        dnc = CONTACTS.c.do_not_call.is_(True)
        opted_out = OPT_OUTS.c.category.in_([search.category or "", ALL_CATEGORIES])
        opted = select(OPT_OUTS.c.number).where(opted_out)
        sources: list[tuple[Select[tuple[str]], ColumnElement[str]]]
        if search.do_not_call and search.category is not None:
            sources = [(select(CONTACTS.c.number).where(dnc, CONTACTS.c.number.in_(opted)),
                        CONTACTS.c.number)]  # fmt: skip
        elif search.do_not_call:
            sources = [(select(CONTACTS.c.number).where(dnc), CONTACTS.c.number)]
        elif search.category is not None:
            sources = [(opted, OPT_OUTS.c.number)]
        else:
            # Every number with a contact row or an opt-out; DISTINCT: one per number.
            sources = [
                (select(CONTACTS.c.number), CONTACTS.c.number),
                (select(OPT_OUTS.c.number).distinct(), OPT_OUTS.c.number),
            ]
        narrowed = []
        for source, column in sources:
            if prefix:
                source = source.where(self._starts_with(column, prefix))
            if after is not None:
                source = source.where(column > after)
            # Each part stops at the page's end, so the union never sees the whole table.
            narrowed.append(source.order_by(column).limit(limit))
        if len(narrowed) == 1:
            statement = narrowed[0]
        else:
            both = union(*(part.subquery().select() for part in narrowed)).subquery()
            statement = select(both.c.number).order_by(both.c.number).limit(limit)
        numbers = [str(number) for number in (await self._session.execute(statement)).scalars()]
        return await self._rows(numbers)

    async def _rows(self, numbers: Sequence[str]) -> list[ContactRow]:
        if not numbers:
            return []
        contacts = {
            row.number: row
            for row in await self._session.execute(
                select(CONTACTS).where(CONTACTS.c.number.in_(numbers))
            )
        }
        opt_outs: dict[str, list[str]] = {}
        statement = (
            select(OPT_OUTS.c.number, OPT_OUTS.c.category)
            .where(OPT_OUTS.c.number.in_(numbers))
            .order_by(OPT_OUTS.c.number, OPT_OUTS.c.category)
        )
        for row in await self._session.execute(statement):
            opt_outs.setdefault(str(row.number), []).append(str(row.category))
        rows = []
        for number in numbers:
            contact = contacts.get(number)
            rows.append(
                ContactRow(
                    number=number,
                    timezone=contact.timezone if contact else None,
                    do_not_call=bool(contact and contact.do_not_call),
                    do_not_call_reason=contact.do_not_call_reason if contact else None,
                    opt_outs=tuple(opt_outs.get(number, ())),
                )
            )
        return rows

    async def recent_notifications(self, number: str, limit: int = 20) -> list[RecentNotification]:
        """The latest notifications to ``number``, newest first (its to_number index)."""
        n = NOTIFICATIONS.c
        statement = (
            select(n.id, n.plan_id, n.status, n.outcome, n.created_at)
            .where(n.to_number == number)
            .order_by(n.created_at.desc(), n.id.desc())
            .limit(limit)
        )
        return [
            RecentNotification(row.id, row.plan_id, row.status, row.outcome, row.created_at)
            for row in await self._session.execute(statement)
        ]
