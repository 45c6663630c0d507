"""Campaigns: named batches of notifications, their state, pacing slots and progress counts.

A campaign's notifications are ordinary notifications with ``campaign_id`` set; the scheduler
claims them like any other (``not_held_by_campaign`` keeps a paused campaign's out of its
claims) and asks ``admit`` in the transaction that records a call, so a pause or a cancel
committed before that transaction is never followed by a new call.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, func, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.models import (
    CALLS,
    CAMPAIGNS,
    NOTIFICATIONS,
    CampaignState,
    NotificationStatus,
    utcnow,
)
from ivr.store.statements import insert_for, new_ref, rowcount

# Attempts at taking a dial slot that another worker keeps taking first, before giving up
# for this round (the notification is then looked at again at the next free slot).
_SLOT_ATTEMPTS = 5


def not_held_by_campaign() -> ColumnElement[bool]:
    """Notifications the scheduler may claim: no campaign, or one that is not paused.

    A paused campaign's pending notifications are out of the claims' index range anyway
    (``hold_pending``); this catches the few that were leased at the pause or got a retry
    since. A cancelled campaign's notifications stay claimable: the scheduler ends each one
    as cancelled (a retry scheduled by a call that was under way at the cancel included).
    """
    held = (CampaignState.PAUSED.value, CampaignState.CREATING.value)
    paused = select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.state.in_(held))
    return or_(NOTIFICATIONS.c.campaign_id.is_(None), NOTIFICATIONS.c.campaign_id.not_in(paused))


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    id: str
    name: str
    plan_id: str
    state: CampaignState
    calls_per_second: float | None
    window_start: int | None
    window_end: int | None
    idempotency_key: str | None
    request_hash: str | None
    next_dial_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RowMapping) -> CampaignRecord:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["state"] = CampaignState(row["state"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class NewCampaign:
    name: str
    plan_id: str
    calls_per_second: float | None = None
    window_start: int | None = None
    window_end: int | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    """A campaign's notifications counted by status and by outcome (None: no outcome yet)."""

    by_status: dict[str, int]
    by_outcome: dict[str | None, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a notification of the campaign may be dialed now.

    ``dial_at``: yes, at that moment (now, or a slot less than the horizon away). Otherwise
    ``state`` says why not: not active, or ``retry_at`` is the campaign's next free slot.
    """

    state: CampaignState | None
    dial_at: datetime | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExportRow:
    id: str
    to_number: str
    status: str
    outcome: str | None
    attempts: int
    variables: dict[str, Any]
    skipped_reason: str | None
    created_at: datetime
    last_call_at: datetime | None


class CampaignRepository:
    def __init__(self, session: AsyncSession, backend: str) -> None:
        self._session = session
        self._backend = backend

    async def create(
        self, new: NewCampaign, state: CampaignState = CampaignState.ACTIVE
    ) -> tuple[CampaignRecord, bool]:
        """The campaign, and False when its idempotency key already existed (no new row)."""
        now = utcnow()
        values = {f.name: getattr(new, f.name) for f in fields(NewCampaign)}
        statement = insert_for(self._backend, CAMPAIGNS).values(
            id=new_ref(), state=state.value, created_at=now, updated_at=now, **values
        )
        if new.idempotency_key is not None:
            statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
        row = (await self._session.execute(statement.returning(*CAMPAIGNS.c))).mappings()
        created = row.one_or_none()
        if created is not None:
            return CampaignRecord.of(created), True
        existing = await self.get_by_idempotency_key(new.idempotency_key or "")
        if existing is None:  # pragma: no cover - the conflicting row is committed
            raise LookupError(f"idempotency key {new.idempotency_key!r} vanished")
        return existing, False

    async def get(self, campaign_id: str) -> CampaignRecord | None:
        return await self._one(CAMPAIGNS.c.id == campaign_id)

    async def get_by_idempotency_key(self, key: str) -> CampaignRecord | None:
        return await self._one(CAMPAIGNS.c.idempotency_key == key)

    async def page(self, *, offset: int = 0, limit: int = 50) -> list[CampaignRecord]:
        """Newest first."""
        statement = (
            select(CAMPAIGNS)
            .where(CAMPAIGNS.c.state != CampaignState.CREATING.value)
            .order_by(CAMPAIGNS.c.created_at.desc(), CAMPAIGNS.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [CampaignRecord.of(r) for r in (await self._session.execute(statement)).mappings()]

    async def count(self) -> int:
        statement = select(func.count()).where(CAMPAIGNS.c.state != CampaignState.CREATING.value)
        return int((await self._session.execute(statement)).scalar_one())

    async def delete_unstarted(self, campaign_id: str) -> None:
        """Take back a campaign whose creation failed: its notifications were never dialable."""
        await self._session.execute(
            NOTIFICATIONS.delete().where(NOTIFICATIONS.c.campaign_id == campaign_id)
        )
        await self._session.execute(CAMPAIGNS.delete().where(CAMPAIGNS.c.id == campaign_id))

    async def set_state(
        self, campaign_id: str, state: CampaignState, *, from_states: Collection[CampaignState]
    ) -> bool:
        """Move the campaign to ``state`` if it is in one of ``from_states`` (one UPDATE)."""
        statement = (
            update(CAMPAIGNS)
            .where(
                CAMPAIGNS.c.id == campaign_id,
                CAMPAIGNS.c.state.in_([s.value for s in from_states]),
            )
            .values(state=state.value, updated_at=utcnow())
        )
        return rowcount(await self._session.execute(statement)) == 1

    async def hold_pending(self, campaign_id: str) -> int:
        """On pause: park the pending notifications' next_attempt_at (see the model)."""
        statement = (
            update(NOTIFICATIONS)
            .where(
                NOTIFICATIONS.c.campaign_id == campaign_id,
                NOTIFICATIONS.c.status == NotificationStatus.SCHEDULED.value,
                NOTIFICATIONS.c.next_attempt_at.is_not(None),
            )
            .values(
                paused_next_attempt_at=NOTIFICATIONS.c.next_attempt_at,
                next_attempt_at=None,
                updated_at=utcnow(),
            )
        )
        return rowcount(await self._session.execute(statement))

    async def release_held(self, campaign_id: str) -> int:
        """On resume: give back what ``hold_pending`` parked.

        A notification that got a time of its own meanwhile (a retry after a call that was
        under way at the pause) keeps it.
        """
        statement = (
            update(NOTIFICATIONS)
            .where(
                NOTIFICATIONS.c.campaign_id == campaign_id,
                NOTIFICATIONS.c.paused_next_attempt_at.is_not(None),
            )
            .values(
                next_attempt_at=func.coalesce(
                    NOTIFICATIONS.c.next_attempt_at, NOTIFICATIONS.c.paused_next_attempt_at
                ),
                paused_next_attempt_at=None,
                updated_at=utcnow(),
            )
        )
        return rowcount(await self._session.execute(statement))

    async def release_held_page(
        self, campaign_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> tuple[datetime, str] | None:
        """``release_held`` for the next ``limit`` notifications in creation order; the key
        to pass as ``after`` for the next page, or None after the last."""
        n = NOTIFICATIONS.c
        page = select(n.id, n.created_at).where(n.campaign_id == campaign_id)
        if after is not None:
            page = page.where(
                tuple_(n.created_at, n.id)
                > tuple_(literal(after[0], n.created_at.type), literal(after[1], n.id.type))
            )
        rows = (await self._session.execute(page.order_by(n.created_at, n.id).limit(limit))).all()
        if not rows:
            return None
        statement = (
            update(NOTIFICATIONS)
            .where(n.id.in_([row[0] for row in rows]), n.paused_next_attempt_at.is_not(None))
            .values(
                next_attempt_at=func.coalesce(n.next_attempt_at, n.paused_next_attempt_at),
                paused_next_attempt_at=None,
            )
        )
        await self._session.execute(statement)
        return (rows[-1][1], rows[-1][0]) if len(rows) == limit else None

    async def cancel_pending(self, campaign_id: str) -> int:
        """Cancel every notification of the campaign not yet final and not on a call.

        A worker holding one under its lease then fails to move it on (it is final), so it
        is not dialed; one whose call is under way is left to finish.
        """
        now = utcnow()
        statement = (
            update(NOTIFICATIONS)
            .where(
                NOTIFICATIONS.c.campaign_id == campaign_id,
                NOTIFICATIONS.c.status == NotificationStatus.SCHEDULED.value,
            )
            .values(
                status=NotificationStatus.CANCELLED.value,
                finished_at=now,
                next_attempt_at=None,
                paused_next_attempt_at=None,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        return rowcount(await self._session.execute(statement))

    async def counts(self, campaign_ids: Sequence[str]) -> dict[str, Counts]:
        """Progress of each campaign, in one query read from the progress index."""
        result: dict[str, Counts] = {cid: Counts({}, {}) for cid in campaign_ids}
        if not campaign_ids:
            return result
        statement = (
            select(
                NOTIFICATIONS.c.campaign_id,
                NOTIFICATIONS.c.status,
                NOTIFICATIONS.c.outcome,
                func.count(),
            )
            .where(NOTIFICATIONS.c.campaign_id.in_(list(campaign_ids)))
            .group_by(NOTIFICATIONS.c.campaign_id, NOTIFICATIONS.c.status, NOTIFICATIONS.c.outcome)
        )
        for row in (await self._session.execute(statement)).all():
            campaign_id, status, outcome, count = str(row[0]), str(row[1]), row[2], int(row[3])
            counts = result[campaign_id]
            counts.by_status[status] = counts.by_status.get(status, 0) + count
            counts.by_outcome[outcome] = counts.by_outcome.get(outcome, 0) + count
        return result

    async def admit(self, campaign_id: str, now: datetime, horizon: float) -> Admission:
        """Take a dial slot for one notification of the campaign (in the dialing transaction).

        Without calls_per_second an active campaign admits at once. With it, the slot is
        taken by a compare-and-set on ``next_dial_at``, so workers sharing the database
        share the rate; a slot more than ``horizon`` seconds away is not taken.
        """
        for _ in range(_SLOT_ATTEMPTS):
            campaign = await self.get(campaign_id)
            if campaign is None or campaign.state is not CampaignState.ACTIVE:
                return Admission(campaign.state if campaign else None)
            if campaign.calls_per_second is None:
                return Admission(campaign.state, dial_at=now)
            seen = campaign.next_dial_at
            slot = max(seen, now) if seen is not None else now
            if slot > now + timedelta(seconds=horizon):
                return Admission(campaign.state, retry_at=slot)
            statement = update(CAMPAIGNS).where(
                CAMPAIGNS.c.id == campaign_id,
                CAMPAIGNS.c.state == CampaignState.ACTIVE.value,
                CAMPAIGNS.c.next_dial_at.is_(None)
                if seen is None
                else CAMPAIGNS.c.next_dial_at == seen,
            )
            gap = timedelta(seconds=1.0 / campaign.calls_per_second)
            statement = statement.values(next_dial_at=slot + gap, updated_at=now)
            if rowcount(await self._session.execute(statement)) == 1:
                return Admission(campaign.state, dial_at=slot)
        return Admission(CampaignState.ACTIVE, retry_at=now + timedelta(seconds=horizon))

    async def export_page(
        self, campaign_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[ExportRow]:
        """Notifications of the campaign in creation order, with the time of their last call."""
        n = NOTIFICATIONS.c
        statement = select(
            n.id, n.to_number, n.status, n.outcome, n.attempts, n.variables, n.skipped_reason,
            n.created_at,
        ).where(n.campaign_id == campaign_id)  # fmt: skip
        if after is not None:
            created, last_id = after
            # A row value, which both databases walk on ix_notifications_campaign_created
            # from the last row on (the same condition spelled with OR rescanned from the
            # campaign's first row on every page in SQLite).
            statement = statement.where(
                tuple_(n.created_at, n.id)
                > tuple_(literal(created, n.created_at.type), literal(last_id, n.id.type))
            )
        statement = statement.order_by(n.created_at, n.id).limit(limit)
        rows = (await self._session.execute(statement)).mappings().all()
        last_calls: dict[str, datetime] = {}
        if rows:
            calls = (
                select(CALLS.c.notification_id, func.max(CALLS.c.created_at))
                .where(CALLS.c.notification_id.in_([row["id"] for row in rows]))
                .group_by(CALLS.c.notification_id)
            )
            for call in (await self._session.execute(calls)).all():
                last_calls[str(call[0])] = _aware(call[1])
        return [ExportRow(**row, last_call_at=last_calls.get(row["id"])) for row in rows]

    async def _one(self, condition: Any) -> CampaignRecord | None:
        row = (await self._session.execute(select(CAMPAIGNS).where(condition))).mappings()
        found = row.one_or_none()
        return None if found is None else CampaignRecord.of(found)


def _aware(value: datetime | str) -> datetime:
    """An aggregate (MAX) loses the column type: SQLite hands back its stored text."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
