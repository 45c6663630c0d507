"""Read-only queries behind the console's live calls and notifications pages.

Every list is one keyset page (newest first, ``before``/``after`` an id of the page next to
it) that reads only the columns the page shows, so a page costs the same with a hundred or a
hundred thousand rows. Nothing here writes; callers run these inside ``store.read()``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from ivr.store.models import CALLS, FINAL_CALL_STATUSES, NOTIFICATIONS, CallStatus
from ivr.store.repo import Transaction

# Calls not yet final count as live for this long after they were placed: a call whose final
# status callback never came (a crash, a lost request) must not stay "live" forever.
LIVE_WINDOW = timedelta(hours=2)
LIVE_STATUSES = tuple(s.value for s in CallStatus if s not in FINAL_CALL_STATUSES)
MAX_PAGE = 200

Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page, newest first; ``newer``/``older``: the ids to page on from, or None."""

    rows: list[Row]
    newer: str | None
    older: str | None


def _name(variables: Any) -> str | None:
    """The person's name as the plan's variables carry it (``name``), if any."""
    if isinstance(variables, dict):
        value = variables.get("name")
        if isinstance(value, str | int) and str(value).strip():
            return str(value)
    return None


async def _keyset_page(
    tx: Transaction,
    statement: Select[Any],
    table: Any,
    *,
    before: str | None,
    after: str | None,
    limit: int,
) -> tuple[list[Any], str | None, str | None]:
    """Rows of ``statement`` newest first around the anchors; (rows, newer, older)."""
    limit = max(1, min(limit, MAX_PAGE))
    created, ident = table.c.created_at, table.c.id
    anchor_id = before or after
    if anchor_id is not None:
        anchor = select(created).where(ident == anchor_id).scalar_subquery()
        if before is not None:
            statement = statement.where(
                or_(created < anchor, and_(created == anchor, ident < anchor_id))
            )
        else:
            statement = statement.where(
                or_(created > anchor, and_(created == anchor, ident > anchor_id))
            )
    ascending = after is not None and before is None
    order = (created, ident) if ascending else (created.desc(), ident.desc())
    rows = list((await tx.session.execute(statement.order_by(*order).limit(limit + 1))).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    if ascending:
        rows.reverse()
        newer = rows[0]["id"] if rows and more else None
        older = rows[-1]["id"] if rows else None
    else:
        newer = rows[0]["id"] if rows and before is not None else None
        older = rows[-1]["id"] if rows and more else None
    return rows, newer, older


# -- live calls -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveCall:
    id: str
    direction: str
    number: str  # the person's number (the called one outbound, the caller inbound)
    name: str | None
    plan_id: str
    status: str
    state: str | None  # the dial-plan state the call is in, once answered
    answered_by: str | None
    notification_id: str | None
    created_at: datetime
    answered_at: datetime | None

    @property
    def since(self) -> datetime:
        return self.answered_at or self.created_at


def _state(session_json: str) -> str | None:
    try:
        state = json.loads(session_json).get("state")
    except (ValueError, AttributeError):
        return None
    return state if isinstance(state, str) else None


async def live_calls(
    tx: Transaction, now: datetime, limit: int = 100
) -> tuple[list[LiveCall], int]:
    """Calls under way now (newest first, at most ``limit``) and how many there are."""
    c, n = CALLS.c, NOTIFICATIONS.c
    live: ColumnElement[bool] = and_(c.status.in_(LIVE_STATUSES), c.created_at >= now - LIVE_WINDOW)
    statement = (
        select(
            c.id,
            c.direction,
            c.plan_id,
            c.from_number,
            c.to_number,
            c.status,
            c.answered_by,
            c.session_json,
            c.notification_id,
            c.created_at,
            c.answered_at,
            n.variables,
        )
        .select_from(CALLS.outerjoin(NOTIFICATIONS, n.id == c.notification_id))
        .where(live)
        .order_by(c.created_at.desc(), c.id.desc())
        .limit(max(1, min(limit, MAX_PAGE)))
    )
    rows = (await tx.session.execute(statement)).mappings()
    calls = [
        LiveCall(
            id=row["id"],
            direction=row["direction"],
            number=row["to_number"] if row["direction"] == "outbound" else row["from_number"],
            name=_name(row["variables"]),
            plan_id=row["plan_id"],
            status=row["status"],
            state=_state(row["session_json"]) if row["status"] == "in-progress" else None,
            answered_by=row["answered_by"],
            notification_id=row["notification_id"],
            created_at=row["created_at"],
            answered_at=row["answered_at"],
        )
        for row in rows
    ]
    total = len(calls)
    if total >= limit:
        total = int((await tx.session.execute(select(func.count()).where(live))).scalar_one())
    return calls, total


# -- notifications ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationRow:
    id: str
    to_number: str
    name: str | None
    plan_id: str
    category: str
    status: str
    outcome: str | None
    attempts: int
    attempts_max: int
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    campaign_id: str | None


@dataclass(frozen=True)
class NotificationFilter:
    status: str | None = None
    plan_id: str | None = None
    to_number: str | None = None
    campaign_id: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        n = NOTIFICATIONS.c
        found: list[ColumnElement[bool]] = []
        for column, value in (
            (n.status, self.status),
            (n.plan_id, self.plan_id),
            (n.to_number, self.to_number),
            (n.campaign_id, self.campaign_id),
        ):
            if value:
                found.append(column == value)
        return found


async def notification_page(
    tx: Transaction,
    where: NotificationFilter,
    *,
    before: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page[NotificationRow]:
    n = NOTIFICATIONS.c
    statement = select(
        n.id, n.to_number, n.variables, n.plan_id, n.category, n.status, n.outcome, n.attempts,
        n.attempts_max, n.next_attempt_at, n.created_at, n.finished_at, n.campaign_id,
    ).where(*where.conditions())  # fmt: skip
    rows, newer, older = await _keyset_page(
        tx, statement, NOTIFICATIONS, before=before, after=after, limit=limit
    )
    return Page(
        [
            NotificationRow(
                id=r["id"],
                to_number=r["to_number"],
                name=_name(r["variables"]),
                plan_id=r["plan_id"],
                category=r["category"],
                status=r["status"],
                outcome=r["outcome"],
                attempts=r["attempts"],
                attempts_max=r["attempts_max"],
                next_attempt_at=r["next_attempt_at"],
                created_at=r["created_at"],
                finished_at=r["finished_at"],
                campaign_id=r["campaign_id"],
            )
            for r in rows
        ],
        newer,
        older,
    )


def person_name(variables: Any) -> str | None:
    return _name(variables)


__all__: Sequence[str] = (
    "LIVE_STATUSES",
    "LiveCall",
    "NotificationFilter",
    "NotificationRow",
    "Page",
    "live_calls",
    "notification_page",
    "person_name",
)
