"""Notifications: created once per idempotency key, claimed under a lease, finished once.

Claims are one statement: ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`` on
PostgreSQL, so workers on one database never claim the same notification and skip each
other's locked rows instead of waiting; on SQLite the writer lock (BEGIN IMMEDIATE) makes the
same statement exclusive. A lease expires: a worker that died mid-claim gives its
notifications back after ``lease_seconds``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, RowMapping, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.campaigns import not_held_by_campaign
from ivr.store.models import (
    CONTACTS,
    FINAL_NOTIFICATION_STATUSES,
    NOTIFICATIONS,
    WEBHOOK_DELIVERIES,
    NotificationStatus,
    utcnow,
)
from ivr.store.statements import insert_for, new_ref, require_e164, rowcount

_FINAL = [s.value for s in FINAL_NOTIFICATION_STATUSES]


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: str
    idempotency_key: str | None
    to_number: str
    plan_id: str
    category: str
    variables: dict[str, Any]
    timezone: str | None
    not_before: datetime | None
    not_after: datetime | None
    attempts_max: int
    retry_after: list[float]
    callback_url: str | None
    status: NotificationStatus
    outcome: str | None
    attempts: int
    active_call_id: str | None
    channels_used: list[str]
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    skipped_code: str | None
    skipped_reason: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    campaign_id: str | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_NOTIFICATION_STATUSES

    @classmethod
    def of(cls, row: RowMapping) -> NotificationRecord:
        values = {name: row[name] for name in _NOTIFICATION_FIELDS}
        values["status"] = NotificationStatus(row["status"])
        values["channels_used"] = list(row["channels_used"] or [])
        return cls(**values)


_NOTIFICATION_FIELDS = tuple(f.name for f in fields(NotificationRecord))


@dataclass(frozen=True, slots=True)
class NewNotification:
    to_number: str
    plan_id: str
    category: str
    variables: dict[str, Any]
    attempts_max: int
    retry_after: list[float]
    next_attempt_at: datetime
    timezone: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    callback_url: str | None = None
    idempotency_key: str | None = None
    campaign_id: str | None = None


class NotificationRepository:
    def __init__(self, session: AsyncSession, backend: str) -> None:
        self._session = session
        self._backend = backend

    async def create(self, new: NewNotification) -> tuple[NotificationRecord, bool]:
        """The notification, and False when its idempotency key already existed (no new row)."""
        require_e164(new.to_number)
        now = utcnow()
        values = {f.name: getattr(new, f.name) for f in fields(NewNotification)}
        statement = insert_for(self._backend, NOTIFICATIONS).values(
            id=new_ref(),
            status=NotificationStatus.SCHEDULED.value,
            attempts=0,
            channels_used=[],
            created_at=now,
            updated_at=now,
            **values,
        )
        if new.idempotency_key is not None:
            statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
        result = await self._session.execute(statement.returning(*NOTIFICATIONS.c))
        row = result.mappings().one_or_none()
        if row is not None:
            return NotificationRecord.of(row), True
        existing = await self.get_by_idempotency_key(new.idempotency_key or "")
        if existing is None:  # pragma: no cover - the conflicting row is committed
            raise LookupError(f"idempotency key {new.idempotency_key!r} vanished")
        return existing, False

    async def get(self, notification_id: str) -> NotificationRecord | None:
        return await self._one(NOTIFICATIONS.c.id == notification_id)

    async def get_by_idempotency_key(self, key: str) -> NotificationRecord | None:
        return await self._one(NOTIFICATIONS.c.idempotency_key == key)

    async def create_many(
        self, news: Sequence[NewNotification], *, parked: bool = False
    ) -> list[bool]:
        """Insert several notifications in one statement (a CSV import's batch).

        Per item, False when its idempotency key already existed, in the table or earlier in
        ``news``: that item added no row. Nothing is read back, so a batch costs one round trip.
        ``parked``: their next_attempt_at is kept in paused_next_attempt_at (a campaign being
        created, see CampaignRepository.release_held).
        """
        if not news:
            return []
        now = utcnow()
        rows = []
        for position, new in enumerate(news):
            require_e164(new.to_number)
            values = {f.name: getattr(new, f.name) for f in fields(NewNotification)}
            # A microsecond apart: pages list oldest first, and ids are random, so equal
            # creation times would list an imported file out of order.
            created_at = now + timedelta(microseconds=position)
            rows.append(
                {
                    **values,
                    "id": new_ref(),
                    "status": NotificationStatus.SCHEDULED.value,
                    "attempts": 0,
                    "channels_used": [],
                    "created_at": created_at,
                    "updated_at": created_at,
                }
            )
            if parked:
                rows[-1]["paused_next_attempt_at"] = rows[-1]["next_attempt_at"]
                rows[-1]["next_attempt_at"] = None
        statement = (
            insert_for(self._backend, NOTIFICATIONS)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(NOTIFICATIONS.c.id)
        )
        inserted = set((await self._session.execute(statement, rows)).scalars())
        return [row["id"] in inserted for row in rows]

    async def existing_idempotency_keys(self, keys: Collection[str]) -> set[str]:
        """Those of ``keys`` that a notification already has."""
        found: set[str] = set()
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), 1000):  # an IN list of at most 1000 values
            # The keys go into the SQL as literals. As parameters, every batch of an import
            # would be one prepared statement, and PostgreSQL would keep the plan it made for
            # it when the table was nearly empty (a sequential scan) while the import fills it:
            # 100,000 rows took 215 s in this query alone, under 2 s with a plan per batch.
            keys_in: BindParameter[str] = bindparam(
                "keys", wanted[start : start + 1000], literal_execute=True
            )
            statement = select(NOTIFICATIONS.c.idempotency_key).where(
                NOTIFICATIONS.c.idempotency_key.in_(keys_in)
            )
            found.update((await self._session.execute(statement)).scalars())
        return found

    async def page(
        self,
        *,
        status: str | None = None,
        plan_id: str | None = None,
        to_number: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[NotificationRecord]:
        """Oldest first; ``after`` is the last id of the previous page."""
        statement = select(NOTIFICATIONS)
        for column, value in (("status", status), ("plan_id", plan_id), ("to_number", to_number)):
            if value is not None:
                statement = statement.where(NOTIFICATIONS.c[column] == value)
        if after is not None:
            anchor = select(NOTIFICATIONS.c.created_at).where(NOTIFICATIONS.c.id == after)
            statement = statement.where(
                or_(
                    NOTIFICATIONS.c.created_at > anchor.scalar_subquery(),
                    and_(
                        NOTIFICATIONS.c.created_at == anchor.scalar_subquery(),
                        NOTIFICATIONS.c.id > after,
                    ),
                )
            )
        statement = statement.order_by(NOTIFICATIONS.c.created_at, NOTIFICATIONS.c.id).limit(limit)
        rows = (await self._session.execute(statement)).mappings()
        return [NotificationRecord.of(row) for row in rows]

    async def count(self, status: NotificationStatus) -> int:
        """How many have ``status``: an index range, where count_by_status reads every row."""
        statement = select(func.count()).where(NOTIFICATIONS.c.status == status.value)
        return int((await self._session.execute(statement)).scalar_one())

    async def count_by_status(self) -> dict[str, int]:
        statement = select(NOTIFICATIONS.c.status, func.count()).group_by(NOTIFICATIONS.c.status)
        return dict((await self._session.execute(statement)).all())

    async def claim_due(
        self, owner: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[NotificationRecord]:
        """Lease up to ``limit`` scheduled notifications whose time has come."""
        if limit <= 0:
            return []
        due = (
            select(NOTIFICATIONS.c.id)
            .where(
                NOTIFICATIONS.c.status == NotificationStatus.SCHEDULED.value,
                NOTIFICATIONS.c.next_attempt_at <= now,
                or_(
                    NOTIFICATIONS.c.lease_expires_at.is_(None),
                    NOTIFICATIONS.c.lease_expires_at < now,
                ),
                not_held_by_campaign(),
            )
            .order_by(NOTIFICATIONS.c.next_attempt_at)
            .limit(limit)
        )
        if self._backend == "postgresql":
            due = due.with_for_update(skip_locked=True)
        statement = (
            update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.id.in_(due.scalar_subquery()))
            .values(
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
            .returning(*NOTIFICATIONS.c)
        )
        rows = (await self._session.execute(statement)).mappings()
        return sorted((NotificationRecord.of(r) for r in rows), key=_due_order)

    async def change(
        self,
        notification_id: str,
        owner: str | None,
        *,
        active_call: str | None = None,
        **values: Any,
    ) -> bool:
        """Update a notification that is not final (and, with ``owner``, still leased by it).

        With ``active_call`` only while that call is its attempt in progress: whoever reacts
        to the end of an attempt (its status callback, or a reconciler acting on what it read
        a moment ago) must not touch a newer attempt placed meanwhile.
        """
        statement = update(NOTIFICATIONS).where(
            NOTIFICATIONS.c.id == notification_id, NOTIFICATIONS.c.status.not_in(_FINAL)
        )
        if owner is not None:
            statement = statement.where(NOTIFICATIONS.c.lease_owner == owner)
        if active_call is not None:
            statement = statement.where(
                NOTIFICATIONS.c.status == NotificationStatus.IN_PROGRESS.value,
                NOTIFICATIONS.c.active_call_id == active_call,
            )
        statement = statement.values(updated_at=utcnow(), **values)
        return rowcount(await self._session.execute(statement)) == 1

    async def finish(
        self,
        notification_id: str,
        status: NotificationStatus,
        *,
        outcome: str | None = None,
        skipped_code: str | None = None,
        skipped_reason: str | None = None,
        channels_used: list[str] | None = None,
        active_call: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """Make the notification final; True only for the one call that did (ends exactly once).

        ``active_call`` and ``owner``: only while that call is its attempt in progress, or
        while that worker leases it (see ``change``).
        """
        if status not in FINAL_NOTIFICATION_STATUSES:
            raise ValueError(f"{status} is not a final notification status")
        now = utcnow()
        return await self.change(
            notification_id,
            owner,
            active_call=active_call,
            status=status.value,
            outcome=outcome,
            skipped_code=skipped_code,
            skipped_reason=skipped_reason,
            **({"channels_used": channels_used} if channels_used is not None else {}),
            finished_at=now,
            next_attempt_at=None,
            lease_owner=None,
            lease_expires_at=None,
        )

    async def cancel(self, notification_id: str) -> bool:
        """Cancel a notification that has not started (no call placed yet, none under way)."""
        statement = (
            update(NOTIFICATIONS)
            .where(
                NOTIFICATIONS.c.id == notification_id,
                NOTIFICATIONS.c.status == NotificationStatus.SCHEDULED.value,
                NOTIFICATIONS.c.attempts == 0,
                NOTIFICATIONS.c.lease_owner.is_(None),
            )
            .values(
                status=NotificationStatus.CANCELLED.value,
                finished_at=utcnow(),
                next_attempt_at=None,
                updated_at=utcnow(),
            )
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def in_progress(self, updated_before: datetime) -> list[NotificationRecord]:
        """Notifications waiting on a call that nothing was heard of since ``updated_before``."""
        statement = select(NOTIFICATIONS).where(
            NOTIFICATIONS.c.status == NotificationStatus.IN_PROGRESS.value,
            NOTIFICATIONS.c.updated_at < updated_before,
        )
        return [
            NotificationRecord.of(r) for r in (await self._session.execute(statement)).mappings()
        ]

    async def delivered_since(
        self, to_number: str, since: datetime, exclude: str
    ) -> list[tuple[str, datetime]]:
        """``(category, finished_at)`` of other notifications that reached ``to_number``."""
        statement = select(NOTIFICATIONS.c.category, NOTIFICATIONS.c.finished_at).where(
            NOTIFICATIONS.c.to_number == to_number,
            NOTIFICATIONS.c.status == NotificationStatus.DONE.value,
            NOTIFICATIONS.c.outcome != "unreached",
            NOTIFICATIONS.c.finished_at >= since,
            NOTIFICATIONS.c.id != exclude,
        )
        rows = (await self._session.execute(statement)).all()
        return [(str(row.category), row.finished_at) for row in rows]

    async def _one(self, condition: Any) -> NotificationRecord | None:
        row = (await self._session.execute(select(NOTIFICATIONS).where(condition))).mappings()
        found = row.one_or_none()
        return None if found is None else NotificationRecord.of(found)


def _due_order(record: NotificationRecord) -> tuple[datetime | None, str]:
    return record.next_attempt_at, record.id


@dataclass(frozen=True, slots=True)
class ContactRecord:
    number: str
    timezone: str | None
    multiple_channels: bool
    do_not_call: bool
    do_not_call_reason: str | None


class ContactRepository:
    def __init__(self, session: AsyncSession, backend: str) -> None:
        self._session = session
        self._backend = backend

    async def get(self, number: str) -> ContactRecord | None:
        statement = select(CONTACTS).where(CONTACTS.c.number == require_e164(number))
        row = (await self._session.execute(statement)).mappings().one_or_none()
        if row is None:
            return None
        return ContactRecord(
            row["number"], row["timezone"], row["multiple_channels"], row["do_not_call"],
            row["do_not_call_reason"],
        )  # fmt: skip

    async def timezones(self, numbers: Collection[str]) -> dict[str, str | None]:
        """The time zone each known contact among ``numbers`` gave (unknown numbers are absent)."""
        zones: dict[str, str | None] = {}
        wanted = sorted(set(numbers))
        for start in range(0, len(wanted), 1000):
            statement = select(CONTACTS.c.number, CONTACTS.c.timezone).where(
                CONTACTS.c.number.in_(wanted[start : start + 1000])
            )
            rows = await self._session.execute(statement)
            zones.update((row.number, row.timezone) for row in rows)
        return zones

    async def update(self, number: str, **values: Any) -> ContactRecord:
        """Create or change a contact: ``timezone``, ``multiple_channels``, ``do_not_call``..."""
        require_e164(number)
        now = utcnow()
        defaults = {"multiple_channels": False, "do_not_call": False}
        statement = insert_for(self._backend, CONTACTS).values(
            number=number, created_at=now, updated_at=now, **{**defaults, **values}
        )
        statement = statement.on_conflict_do_update(
            index_elements=["number"], set_={"updated_at": now, **values}
        )
        await self._session.execute(statement)
        contact = await self.get(number)
        assert contact is not None
        return contact

    async def do_not_call_list(self) -> list[ContactRecord]:
        statement = select(CONTACTS.c.number).where(CONTACTS.c.do_not_call.is_(True))
        result = await self._session.execute(statement.order_by(CONTACTS.c.number))
        numbers: list[str] = list(result.scalars())
        return [c for n in numbers if (c := await self.get(n)) is not None]


@dataclass(frozen=True, slots=True)
class WebhookDeliveryRecord:
    id: int
    notification_id: str
    url: str
    attempt: int
    status: str
    response_status: int | None
    error: str | None
    next_try_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RowMapping) -> WebhookDeliveryRecord:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


class WebhookDeliveryRepository:
    """Result webhooks to send: one row per notification, its attempts counted in it."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def enqueue(self, notification_id: str, url: str, at: datetime) -> None:
        await self._session.execute(
            WEBHOOK_DELIVERIES.insert().values(
                notification_id=notification_id,
                url=url,
                attempt=0,
                status="pending",
                next_try_at=at,
                created_at=at,
                updated_at=at,
            )
        )

    async def due(self, now: datetime, limit: int) -> list[WebhookDeliveryRecord]:
        statement = (
            select(WEBHOOK_DELIVERIES)
            .where(
                WEBHOOK_DELIVERIES.c.status == "pending", WEBHOOK_DELIVERIES.c.next_try_at <= now
            )
            .order_by(WEBHOOK_DELIVERIES.c.next_try_at)
            .limit(limit)
        )
        rows = (await self._session.execute(statement)).mappings()
        return [WebhookDeliveryRecord.of(row) for row in rows]

    async def claim(self, delivery_id: int, seen_next_try_at: datetime, until: datetime) -> bool:
        """Take a due delivery for one try (postponed to ``until``); False if another did."""
        statement = (
            update(WEBHOOK_DELIVERIES)
            .where(
                WEBHOOK_DELIVERIES.c.id == delivery_id,
                WEBHOOK_DELIVERIES.c.status == "pending",
                WEBHOOK_DELIVERIES.c.next_try_at == seen_next_try_at,
            )
            .values(next_try_at=until, updated_at=utcnow())
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def record_try(
        self,
        delivery_id: int,
        status: str,
        response_status: int | None,
        error: str | None,
        next_try_at: datetime | None,
    ) -> None:
        await self._session.execute(
            update(WEBHOOK_DELIVERIES)
            .where(WEBHOOK_DELIVERIES.c.id == delivery_id)
            .values(
                attempt=WEBHOOK_DELIVERIES.c.attempt + 1,
                status=status,
                response_status=response_status,
                error=error,
                next_try_at=next_try_at,
                updated_at=utcnow(),
            )
        )

    async def for_notification(self, notification_id: str) -> Sequence[WebhookDeliveryRecord]:
        statement = select(WEBHOOK_DELIVERIES).where(
            WEBHOOK_DELIVERIES.c.notification_id == notification_id
        )
        rows = (await self._session.execute(statement.order_by(WEBHOOK_DELIVERIES.c.id))).mappings()
        return [WebhookDeliveryRecord.of(row) for row in rows]
