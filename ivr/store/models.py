"""The tables: calls and their events, SMS, opt-outs, campaigns, notifications, contacts,
result webhooks.

Statuses are stored as plain strings and checked in Python (the enums below), so a later
migration that adds a status does not have to rebuild a SQLite table for a CHECK constraint.
Every timestamp is an aware UTC datetime, also on SQLite, which has no time-zone type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names: SQLite migrations rebuild tables (batch mode) and must be able
# to name the constraint they drop or change.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Opaque references (calls.id, sms_messages.id) are secrets.token_urlsafe(16): 22 characters.
REF_LENGTH = 32
# From/To of a call or message may be a SIP URI or a client name, not only an E.164 number.
ADDRESS_LENGTH = 255
# E.164: "+" and at most 15 digits.
E164_LENGTH = 16


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database: naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    # The dialect argument is part of the TypeDecorator interface; UTC handling is the same on all.
    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; store aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        # SQLite returns what it stored (UTC, without an offset); PostgreSQL returns aware values.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallStatus(StrEnum):
    """Twilio's CallStatus values (``queued`` is also ours before the provider is asked)."""

    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"


# A status only ever moves to a higher rank; all final statuses share the top rank, so none of
# them replaces another and nothing leaves them.
CALL_STATUS_RANK: dict[CallStatus, int] = {
    CallStatus.QUEUED: 0,
    CallStatus.INITIATED: 1,
    CallStatus.RINGING: 2,
    CallStatus.IN_PROGRESS: 3,
    CallStatus.COMPLETED: 4,
    CallStatus.BUSY: 4,
    CallStatus.NO_ANSWER: 4,
    CallStatus.FAILED: 4,
    CallStatus.CANCELED: 4,
}
FINAL_CALL_STATUSES = frozenset(s for s, rank in CALL_STATUS_RANK.items() if rank == 4)


class SmsStatus(StrEnum):
    """Twilio's message statuses, outbound (queued ... delivered) and inbound (received)."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RECEIVING = "receiving"
    RECEIVED = "received"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"


SMS_STATUS_RANK: dict[SmsStatus, int] = {
    SmsStatus.ACCEPTED: 0,
    SmsStatus.SCHEDULED: 0,
    SmsStatus.QUEUED: 1,
    SmsStatus.SENDING: 2,
    SmsStatus.SENT: 3,
    SmsStatus.RECEIVING: 3,
    SmsStatus.RECEIVED: 4,
    SmsStatus.DELIVERED: 4,
    SmsStatus.UNDELIVERED: 4,
    SmsStatus.FAILED: 4,
    SmsStatus.CANCELED: 4,
}
FINAL_SMS_STATUSES = frozenset(s for s, rank in SMS_STATUS_RANK.items() if rank == 4)


class EventKind(StrEnum):
    """The usual kinds of call events; the column takes any short string."""

    WEBHOOK = "webhook"
    STATUS = "status"
    PROMPT = "prompt"
    INPUT = "input"
    RECOGNITION = "recognition"
    TRANSITION = "transition"
    LOOKUP = "lookup"
    ERROR = "error"


class OptOutSource(StrEnum):
    API = "api"
    IVR = "ivr"
    SMS = "sms"


# An opt-out with this category covers every optional category.
ALL_CATEGORIES = "*"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        # The console's live calls: those not yet final, by status and creation time (0008).
        Index("ix_calls_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(REF_LENGTH), primary_key=True)
    # Null until the provider answers the create request (outbound) with its CallSid.
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(8))
    plan_id: Mapped[str] = mapped_column(String(100))
    plan_hash: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    to_number: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    session_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    answered_by: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(64))
    # Counts the dial-plan steps taken; action URLs carry it so a repeated webhook is recognized.
    turn: Mapped[int] = mapped_column(Integer, default=0)
    # The response body of the latest turn, returned again when that webhook is repeated.
    last_response: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # The notification this call is an attempt of (an indexed column, no foreign key: see 0002).
    notification_id: Mapped[str | None] = mapped_column(String(REF_LENGTH), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class CallEvent(Base):
    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_call_id_id", "call_id", "id"),)

    # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]]


class SmsMessage(Base):
    __tablename__ = "sms_messages"
    # reconcile's "recorded, never sent" query (see migration 0003)
    __table_args__ = (Index("ix_sms_messages_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(REF_LENGTH), primary_key=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    call_id: Mapped[str | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    # The notification this message belongs to (fallback SMS); no foreign key, see 0002.
    notification_id: Mapped[str | None] = mapped_column(String(REF_LENGTH), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    from_number: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), index=True)
    to_number: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), index=True)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OptOut(Base):
    __tablename__ = "opt_outs"
    # The console's "opted out of this category" list (migration 0005).
    __table_args__ = (Index("ix_opt_outs_category_number", "category", "number"),)

    number: Mapped[str] = mapped_column(String(E164_LENGTH), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class NotificationStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    FAILED = "failed"


FINAL_NOTIFICATION_STATUSES = frozenset(
    {
        NotificationStatus.DONE,
        NotificationStatus.SKIPPED,
        NotificationStatus.CANCELLED,
        NotificationStatus.FAILED,
    }
)


class CampaignState(StrEnum):
    """What is stored; a campaign is shown ``done`` once every notification of it has ended.

    ``creating``: its notifications are being written, batch by batch; nobody sees it (lists,
    get) and nothing of it is dialed until it turns ``active``.
    """

    CREATING = "creating"
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class Campaign(Base):
    """A named batch of notifications that is paused, paced and reported on together."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(REF_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan_id: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    # Dial requests per second for this campaign across all workers (None: only the global one).
    calls_per_second: Mapped[float | None] = mapped_column(Float)
    # Daily window in the recipient's zone, minutes of the day (see policy_hours.CallWindow).
    window_start: Mapped[int | None] = mapped_column(Integer)
    window_end: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # sha256 of the creating request: the same key with another body is refused (409).
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The next dial slot under calls_per_second, taken atomically by whichever worker dials.
    next_dial_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Notification(Base):
    """A reminder or notice to deliver: its request, its progress, and how it ended."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_next", "status", "next_attempt_at"),
        # A campaign's progress (counts by status and by outcome) is read from this index alone.
        Index("ix_notifications_campaign_progress", "campaign_id", "status", "outcome"),
        # A campaign's notifications in creation order, page by page (export, console) (0006).
        Index("ix_notifications_campaign_created", "campaign_id", "created_at", "id"),
        # The console's notification lists, newest first, whole or by one filter (0008).
        Index("ix_notifications_created", "created_at", "id"),
        Index("ix_notifications_status_created", "status", "created_at", "id"),
        Index("ix_notifications_plan_created", "plan_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(REF_LENGTH), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    to_number: Mapped[str] = mapped_column(String(E164_LENGTH), index=True)
    plan_id: Mapped[str] = mapped_column(String(100), index=True)
    category: Mapped[str] = mapped_column(String(64))
    variables: Mapped[dict[str, Any]]
    timezone: Mapped[str | None] = mapped_column(String(64))
    not_before: Mapped[datetime | None]
    not_after: Mapped[datetime | None]
    attempts_max: Mapped[int] = mapped_column(Integer)
    # Seconds to wait before each retry (the last repeats), as in a plan's attempts.retry_after.
    retry_after: Mapped[list[float]] = mapped_column(JSON)
    callback_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(64))
    # Calls placed so far; the call of the attempt under way.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    active_call_id: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    channels_used: Mapped[list[str]] = mapped_column(JSON, default=list)
    next_attempt_at: Mapped[datetime | None]
    # Which worker holds the notification while it decides and dials, until when.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    skipped_code: Mapped[str | None] = mapped_column(String(32))
    skipped_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"))
    # While its campaign is paused, next_attempt_at is kept here and the column is null, so
    # the claims' index range (status, next_attempt_at) never walks a paused campaign (0006).
    paused_next_attempt_at: Mapped[datetime | None]


class Contact(Base):
    """What a person asked for: their time zone, more than one channel, no calls at all."""

    __tablename__ = "contacts"

    number: Mapped[str] = mapped_column(String(E164_LENGTH), primary_key=True)
    timezone: Mapped[str | None] = mapped_column(String(64))
    multiple_channels: Mapped[bool] = mapped_column(default=False)
    do_not_call: Mapped[bool] = mapped_column(default=False)
    do_not_call_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One attempt to tell the integrator a notification's result (its callback_url)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    # pending (not yet tried or to be retried at next_try_at), delivered, failed (gave up).
    status: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    next_try_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReportNotificationDay(Base):
    """Notifications finished per UTC day, plan, campaign ('' for none) and result.

    Written only by database triggers (ivr/store/report_rollups.py, migration 0007)."""

    __tablename__ = "report_notification_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(REF_LENGTH), primary_key=True)
    result: Mapped[str] = mapped_column(String(64), primary_key=True)
    finished: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    called: Mapped[int] = mapped_column(Integer)


class ReportCallDay(Base):
    """Outbound calls of notifications that ended, per UTC day placed, plan and campaign.

    Written only by database triggers (ivr/store/report_rollups.py, migration 0007)."""

    __tablename__ = "report_call_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(REF_LENGTH), primary_key=True)
    ended: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    by_person: Mapped[int] = mapped_column(Integer)


class ReportSmsDay(Base):
    """Fallback SMS per UTC day created, plan and campaign; delivered and failed as they are now.

    Written only by database triggers (ivr/store/report_rollups.py, migration 0007)."""

    __tablename__ = "report_sms_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(REF_LENGTH), primary_key=True)
    sent: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)


# The repositories run Core statements on these tables and turn the rows (RETURNING for writes)
# into frozen records: no identity map to go stale after a conditional UPDATE, and a webhook
# transaction on SQLite took 2.0 ms instead of 4.4 ms through the ORM unit of work.
CALLS = cast(Table, Call.__table__)
CALL_EVENTS = cast(Table, CallEvent.__table__)
SMS_MESSAGES = cast(Table, SmsMessage.__table__)
OPT_OUTS = cast(Table, OptOut.__table__)
NOTIFICATIONS = cast(Table, Notification.__table__)
CAMPAIGNS = cast(Table, Campaign.__table__)
CONTACTS = cast(Table, Contact.__table__)
WEBHOOK_DELIVERIES = cast(Table, WebhookDelivery.__table__)
REPORT_NOTIFICATION_DAYS = cast(Table, ReportNotificationDay.__table__)
REPORT_CALL_DAYS = cast(Table, ReportCallDay.__table__)
REPORT_SMS_DAYS = cast(Table, ReportSmsDay.__table__)
