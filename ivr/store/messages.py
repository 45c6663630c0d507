"""SMS messages, sent and received, with their delivery status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.models import (
    FINAL_SMS_STATUSES,
    SMS_MESSAGES,
    SMS_STATUS_RANK,
    Direction,
    SmsStatus,
    utcnow,
)
from ivr.store.statements import insert_for, new_ref, one_key, rank_of, rowcount


@dataclass(frozen=True, slots=True)
class SmsRecord:
    """A snapshot of one row of ``sms_messages``."""

    id: str
    provider_sid: str | None
    call_id: str | None
    notification_id: str | None
    direction: Direction
    from_number: str
    to_number: str
    body: str
    status: SmsStatus
    error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_SMS_STATUSES

    @classmethod
    def of(cls, row: RowMapping) -> SmsRecord:
        values = {name: row[name] for name in _SMS_FIELDS}
        values["direction"] = Direction(row["direction"])
        values["status"] = SmsStatus(row["status"])
        return cls(**values)


_SMS_FIELDS = tuple(f.name for f in fields(SmsRecord))


class SmsRepository:
    def __init__(self, session: AsyncSession, backend: str) -> None:
        self._session = session
        self._backend = backend

    async def create(
        self,
        *,
        direction: Direction,
        from_number: str,
        to_number: str,
        body: str,
        status: SmsStatus = SmsStatus.QUEUED,
        provider_sid: str | None = None,
        call_ref: str | None = None,
        notification_id: str | None = None,
    ) -> SmsRecord:
        """A new message; record it before asking the provider to send it, then ``set_sid``."""
        values = _new_message(direction, from_number, to_number, body, status)
        statement = (
            insert(SMS_MESSAGES)
            .values(
                **values,
                provider_sid=provider_sid,
                call_id=call_ref,
                notification_id=notification_id,
            )
            .returning(*SMS_MESSAGES.c)
        )
        return SmsRecord.of((await self._session.execute(statement)).mappings().one())

    async def get_or_create_by_sid(
        self,
        *,
        provider_sid: str,
        direction: Direction,
        from_number: str,
        to_number: str,
        body: str,
        status: SmsStatus = SmsStatus.RECEIVED,
    ) -> tuple[SmsRecord, bool]:
        """The message with this provider sid, created if new: ``(record, created)``.

        An incoming SMS webhook may be delivered twice; only the first delivery creates a row,
        so a STOP or a reply is acted on once.
        """
        values = _new_message(direction, from_number, to_number, body, status)
        statement = (
            insert_for(self._backend, SMS_MESSAGES)
            .values(**values, provider_sid=provider_sid)
            .on_conflict_do_nothing(index_elements=[SMS_MESSAGES.c.provider_sid])
        )
        created = rowcount(await self._session.execute(statement)) == 1
        record = await self.get_by_sid(provider_sid)
        if record is None:  # pragma: no cover - the row was inserted or already committed
            raise LookupError(f"message with provider sid {provider_sid} vanished")
        return record, created

    async def get(self, ref: str) -> SmsRecord | None:
        return await self._one(SMS_MESSAGES.c.id == ref)

    async def get_by_sid(self, sid: str) -> SmsRecord | None:
        return await self._one(SMS_MESSAGES.c.provider_sid == sid)

    async def set_sid(self, ref: str, sid: str) -> bool:
        """Record the provider's sid; False if unknown or the message already has another sid."""
        statement = (
            update(SMS_MESSAGES)
            .where(SMS_MESSAGES.c.id == ref)
            .where(SMS_MESSAGES.c.provider_sid.is_(None) | (SMS_MESSAGES.c.provider_sid == sid))
            .values(provider_sid=sid, updated_at=utcnow())
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def update_status(
        self,
        status: SmsStatus | str,
        *,
        sid: str | None = None,
        ref: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move the message (by provider ``sid`` or ``ref``) forward to ``status``; True if moved.

        queued < sending < sent < delivered / undelivered / failed: a late ``sent`` after
        ``delivered``, or anything after a final status, changes nothing (checked in the WHERE).
        """
        new_status = SmsStatus(status)
        key, value = one_key(sid=sid, ref=ref)
        values: dict[str, Any] = {"status": new_status.value, "updated_at": utcnow()}
        if error is not None:
            values["error"] = error
        rank = rank_of(SMS_MESSAGES.c.status, SMS_STATUS_RANK)
        statement = (
            update(SMS_MESSAGES)
            .where((SMS_MESSAGES.c.provider_sid if key == "sid" else SMS_MESSAGES.c.id) == value)
            .where(rank < SMS_STATUS_RANK[new_status])
            .values(values)
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def list_for(
        self,
        *,
        number: str | None = None,
        call_ref: str | None = None,
        notification_id: str | None = None,
    ) -> Sequence[SmsRecord]:
        """Messages to or from ``number``, of a call, or of a notification, oldest first."""
        key, value = one_key(number=number, call_ref=call_ref, notification_id=notification_id)
        columns = SMS_MESSAGES.c
        condition: ColumnElement[bool]
        if key == "number":
            condition = or_(columns.to_number == value, columns.from_number == value)
        elif key == "call_ref":
            condition = columns.call_id == value
        else:
            condition = columns.notification_id == value
        statement = select(SMS_MESSAGES).where(condition).order_by(columns.created_at, columns.id)
        rows = (await self._session.execute(statement)).mappings()
        return [SmsRecord.of(row) for row in rows]

    async def unsent(self, created_before: datetime) -> list[SmsRecord]:
        """Outbound messages still ``scheduled``: recorded, never handed to the provider."""
        columns = SMS_MESSAGES.c
        statement = select(SMS_MESSAGES).where(
            columns.direction == Direction.OUTBOUND.value,
            columns.status == SmsStatus.SCHEDULED.value,
            columns.created_at < created_before,
        )
        rows = (await self._session.execute(statement.order_by(columns.created_at))).mappings()
        return [SmsRecord.of(row) for row in rows]

    async def _one(self, condition: ColumnElement[bool]) -> SmsRecord | None:
        statement = select(SMS_MESSAGES).where(condition)
        row = (await self._session.execute(statement)).mappings().first()
        return None if row is None else SmsRecord.of(row)


def _new_message(
    direction: Direction, from_number: str, to_number: str, body: str, status: SmsStatus
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_ref(),
        "direction": Direction(direction).value,
        "from_number": from_number,
        "to_number": to_number,
        "body": body,
        "status": SmsStatus(status).value,
        "created_at": now,
        "updated_at": now,
    }
