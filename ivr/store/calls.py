"""Calls and their event log: what the webhook handlers read and write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import ColumnElement, RowMapping, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.models import (
    CALL_EVENTS,
    CALL_STATUS_RANK,
    CALLS,
    FINAL_CALL_STATUSES,
    CallStatus,
    Direction,
    utcnow,
)
from ivr.store.statements import insert_for, new_ref, one_key, rank_of, rowcount


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A snapshot of one row of ``calls``; change it through CallRepository only."""

    id: str
    provider_sid: str | None
    direction: Direction
    plan_id: str
    plan_hash: str
    from_number: str
    to_number: str
    session_json: str
    status: CallStatus
    answered_by: str | None
    outcome: str | None
    turn: int
    last_response: str | None
    duration_seconds: int | None
    notification_id: str | None
    created_at: datetime
    updated_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_CALL_STATUSES

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> CallRecord:
        values = {name: row[name] for name in _CALL_FIELDS}
        values["direction"] = Direction(row["direction"])
        values["status"] = CallStatus(row["status"])
        return cls(**values)


_CALL_FIELDS = tuple(f.name for f in fields(CallRecord))


@dataclass(frozen=True, slots=True)
class CallEventRecord:
    id: int
    call_id: str
    at: datetime
    kind: str
    data: dict[str, Any]

    @classmethod
    def of(cls, row: RowMapping) -> CallEventRecord:
        return cls(
            id=row["id"], call_id=row["call_id"], at=row["at"], kind=row["kind"], data=row["data"]
        )


class CallChanges(TypedDict, total=False):
    """What a dial-plan step may change besides the session (status has its own rules)."""

    outcome: str | None
    answered_by: str | None


class CallRepository:
    def __init__(self, session: AsyncSession, backend: str) -> None:
        self._session = session
        self._backend = backend

    async def create(
        self,
        *,
        direction: Direction,
        plan_id: str,
        plan_hash: str,
        from_number: str,
        to_number: str,
        session_json: str,
        status: CallStatus = CallStatus.QUEUED,
        provider_sid: str | None = None,
        notification_id: str | None = None,
    ) -> CallRecord:
        """A new call with a fresh opaque reference (``record.id``) and turn 0."""
        values = _new_call(
            direction, plan_id, plan_hash, from_number, to_number, session_json, status
        )
        statement = (
            insert(CALLS)
            .values(**values, provider_sid=provider_sid, notification_id=notification_id)
            .returning(*CALLS.c)
        )
        return CallRecord.of((await self._session.execute(statement)).mappings().one())

    async def get_or_create_by_sid(
        self,
        *,
        provider_sid: str,
        direction: Direction,
        plan_id: str,
        plan_hash: str,
        from_number: str,
        to_number: str,
        session_json: str,
        status: CallStatus = CallStatus.RINGING,
    ) -> tuple[CallRecord, bool]:
        """The call with this provider sid, created if new: ``(record, created)``.

        For inbound calls, whose first webhook may be delivered twice at once: the INSERT skips
        on a sid conflict (PostgreSQL waits for the other transaction), so one call row results.
        """
        values = _new_call(
            direction, plan_id, plan_hash, from_number, to_number, session_json, status
        )
        statement = (
            insert_for(self._backend, CALLS)
            .values(**values, provider_sid=provider_sid)
            .on_conflict_do_nothing(index_elements=[CALLS.c.provider_sid])
        )
        created = rowcount(await self._session.execute(statement)) == 1
        record = await self.get_by_sid(provider_sid)
        if record is None:  # pragma: no cover - the row was inserted or already committed
            raise LookupError(f"call with provider sid {provider_sid} vanished")
        return record, created

    async def insert_first_turn(
        self, draft: CallRecord, session_json: str, response: str, **changes: Unpack[CallChanges]
    ) -> bool:
        """Write an inbound call (a :func:`draft_inbound_call`) with its first turn taken:
        turn 1, its session and TwiML. True if written; False when a call with its provider
        sid exists (another delivery of the first webhook won: nothing is written).

        One statement where creating the call and then advancing it took two transactions;
        like :meth:`get_or_create_by_sid`, PostgreSQL makes a concurrent twin wait and skip.
        """
        values = {name: getattr(draft, name) for name in _CALL_FIELDS}
        values.update(
            direction=draft.direction.value,
            status=draft.status.value,
            turn=draft.turn + 1,
            session_json=session_json,
            last_response=response,
            **changes,
        )
        statement = (
            insert_for(self._backend, CALLS)
            .values(values)
            .on_conflict_do_nothing(index_elements=[CALLS.c.provider_sid])
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def get(self, ref: str) -> CallRecord | None:
        return await self._one(CALLS.c.id == ref)

    async def for_notification(self, notification_id: str) -> list[CallRecord]:
        """The attempts of a notification, oldest first."""
        statement = (
            select(CALLS)
            .where(CALLS.c.notification_id == notification_id)
            .order_by(CALLS.c.created_at, CALLS.c.id)
        )
        return [CallRecord.of(row) for row in (await self._session.execute(statement)).mappings()]

    async def get_by_sid(self, sid: str) -> CallRecord | None:
        return await self._one(CALLS.c.provider_sid == sid)

    async def set_sid(self, ref: str, sid: str) -> bool:
        """Record the provider's sid; False if the call is unknown or already has another sid."""
        statement = (
            update(CALLS)
            .where(CALLS.c.id == ref)
            .where(CALLS.c.provider_sid.is_(None) | (CALLS.c.provider_sid == sid))
            .values(provider_sid=sid, updated_at=utcnow())
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def advance(
        self,
        ref: str,
        expected_turn: int,
        session_json: str,
        response: str,
        **changes: Unpack[CallChanges],
    ) -> bool:
        """Store the next turn if the call is still at ``expected_turn``; True if this call won.

        One conditional UPDATE (``WHERE id = ref AND turn = expected_turn``, ``turn = turn + 1``):
        of two concurrent deliveries of the same webhook exactly one advances the dial plan. The
        other gets False and answers with the winner's ``last_response`` from ``get(ref)``.
        """
        statement = (
            update(CALLS)
            .where(CALLS.c.id == ref, CALLS.c.turn == expected_turn)
            .values(
                turn=CALLS.c.turn + 1,
                session_json=session_json,
                last_response=response,
                updated_at=utcnow(),
                **changes,
            )
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def update_status(
        self,
        status: CallStatus | str,
        *,
        ref: str | None = None,
        sid: str | None = None,
        answered_by: str | None = None,
        duration_seconds: int | None = None,
    ) -> bool:
        """Move the call (by ``ref`` or provider ``sid``) forward to ``status``; True if it moved.

        Status callbacks repeat and arrive out of order: the WHERE clause only lets a status of a
        higher rank through, so ``ringing`` after ``in-progress`` and anything after a final
        status change nothing. ``status`` must be a CallStatus value (ValueError otherwise).
        """
        new_status = CallStatus(status)
        key, value = one_key(ref=ref, sid=sid)
        now = utcnow()
        values: dict[str, Any] = {"status": new_status.value, "updated_at": now}
        if answered_by is not None:
            values["answered_by"] = answered_by
        if duration_seconds is not None:
            values["duration_seconds"] = duration_seconds
        if new_status is CallStatus.IN_PROGRESS:
            values["answered_at"] = func.coalesce(CALLS.c.answered_at, now)
        if new_status in FINAL_CALL_STATUSES:
            values["ended_at"] = now
        statement = (
            update(CALLS)
            .where((CALLS.c.id if key == "ref" else CALLS.c.provider_sid) == value)
            .where(rank_of(CALLS.c.status, CALL_STATUS_RANK) < CALL_STATUS_RANK[new_status])
            .values(values)
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def _one(self, condition: ColumnElement[bool]) -> CallRecord | None:
        row = (await self._session.execute(select(CALLS).where(condition))).mappings().first()
        return None if row is None else CallRecord.of(row)


def draft_inbound_call(
    *,
    provider_sid: str,
    plan_id: str,
    plan_hash: str,
    from_number: str,
    to_number: str,
    session_json: str,
    status: CallStatus = CallStatus.IN_PROGRESS,
) -> CallRecord:
    """An inbound call at turn 0 with a fresh reference, not written yet: the runtime takes
    its first turn with it, then writes both at once (:meth:`CallRepository.insert_first_turn`)."""
    values = _new_call(
        Direction.INBOUND, plan_id, plan_hash, from_number, to_number, session_json, status
    )
    blank = dict.fromkeys(_CALL_FIELDS)
    return CallRecord.of({**blank, **values, "provider_sid": provider_sid})


def _new_call(
    direction: Direction,
    plan_id: str,
    plan_hash: str,
    from_number: str,
    to_number: str,
    session_json: str,
    status: CallStatus,
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_ref(),
        "direction": Direction(direction).value,
        "plan_id": plan_id,
        "plan_hash": plan_hash,
        "from_number": from_number,
        "to_number": to_number,
        "session_json": session_json,
        "status": CallStatus(status).value,
        "turn": 0,
        "created_at": now,
        "updated_at": now,
    }


class CallEventRepository:
    """The append-only log of what happened on a call, in the order it happened."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(
        self, ref: str, kind: str, data: Mapping[str, Any] | None = None
    ) -> CallEventRecord:
        statement = (
            insert(CALL_EVENTS)
            .values(call_id=ref, kind=str(kind), data=dict(data or {}), at=utcnow())
            .returning(*CALL_EVENTS.c)
        )
        return CallEventRecord.of((await self._session.execute(statement)).mappings().one())

    async def append_many(self, ref: str, entries: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Append several events in order, in one INSERT (a webhook logs a handful at once)."""
        if not entries:
            return
        now = utcnow()
        rows = [{"call_id": ref, "kind": str(k), "data": dict(d), "at": now} for k, d in entries]
        await self._session.execute(insert(CALL_EVENTS), rows)

    async def list(self, ref: str) -> Sequence[CallEventRecord]:
        statement = (
            select(CALL_EVENTS).where(CALL_EVENTS.c.call_id == ref).order_by(CALL_EVENTS.c.id)
        )
        rows = (await self._session.execute(statement)).mappings()
        return [CallEventRecord.of(row) for row in rows]
