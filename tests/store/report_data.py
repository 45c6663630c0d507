"""A small, known data set for the reports: the expected numbers are worked out by hand below.

Period: 2026-11-01 .. 2026-11-03 (UTC). Finished in it (plan, day, result, attempts):
  A d1 confirmed 1, A d1 confirmed 2, A d1 unreached 3, B d1 cancelled 1,
  A d2 opted_out 1, A d2 skipped 0, B d2 confirmed 1, B d2 cancelled-before-call 0
Outside it: A confirmed at 2026-10-31 23:59:59, A confirmed at 2026-11-04 00:00:00, and one in
progress (not finished). So: 8 finished; reached 5 (confirmed 3, cancelled 1, opted_out 1);
confirmation rate 3/5; attempts 9 over 6 called = 1.5.
Calls (outbound, of notifications, placed in the period): A: 2 answered by a person, 1 by a
machine, 2 no-answer, 1 still ringing; B: 1 busy, 1 answered (no AMD). Plus an inbound call,
an outbound call of no notification and one placed before the period, none counted.
So A: 5 ended, 3 answered, 2 by a person; B: 2 ended, 1 answered, 1 by a person.
SMS (outbound, of notifications, in the period): A: delivered 2, failed 1, sent 1; B:
undelivered 1; plus an inbound one, one of no notification and one after the period.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ivr.store import Transaction
from ivr.store.models import CALLS, CAMPAIGNS, NOTIFICATIONS, SMS_MESSAGES

PLAN_A = "appointment_reminder"
PLAN_B = "delivery_notice"
ROBOT = "+12025550100"


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def notification_row(
    ref: str,
    plan: str,
    finished: datetime | None,
    outcome: str | None,
    attempts: int,
    status: str = "done",
    number: str = "+12025550123",
    **extra: Any,
) -> dict[str, Any]:
    created = finished or at(1)
    return {
        "id": ref, "idempotency_key": None, "to_number": number, "plan_id": plan,
        "category": "transactional", "variables": {"name": "Ann"}, "timezone": None,
        "not_before": None, "not_after": None, "attempts_max": 3, "retry_after": [600.0],
        "callback_url": None, "status": status, "outcome": outcome, "attempts": attempts,
        "active_call_id": None, "channels_used": ["call"], "next_attempt_at": None,
        "lease_owner": None, "lease_expires_at": None, "skipped_code": None,
        "skipped_reason": None, "created_at": created, "updated_at": created,
        "finished_at": finished, **extra,
    }  # fmt: skip


def call_row(
    ref: str,
    plan: str,
    created: datetime,
    status: str,
    *,
    answered_by: str | None = None,
    answered: bool = False,
    notification: str | None = "n-a1",
    direction: str = "outbound",
) -> dict[str, Any]:
    return {
        "id": ref, "provider_sid": None, "direction": direction, "plan_id": plan,
        "plan_hash": "a" * 16, "from_number": ROBOT, "to_number": "+12025550123",
        "session_json": "{}", "status": status, "answered_by": answered_by, "outcome": None,
        "turn": 0, "last_response": None, "duration_seconds": None,
        "notification_id": notification, "created_at": created, "updated_at": created,
        "answered_at": created if answered else None, "ended_at": None,
    }  # fmt: skip


def sms_row(
    ref: str,
    created: datetime,
    status: str,
    notification: str | None = "n-a1",
    direction: str = "outbound",
) -> dict[str, Any]:
    return {
        "id": ref, "provider_sid": None, "call_id": None, "notification_id": notification,
        "direction": direction, "from_number": ROBOT, "to_number": "+12025550123",
        "body": "Hi", "status": status, "error": None, "created_at": created,
        "updated_at": created,
    }  # fmt: skip


NOTIFICATIONS_ROWS = [
    notification_row("n-a1", PLAN_A, at(1, 9), "confirmed", 1),
    notification_row("n-a2", PLAN_A, at(1, 10), "confirmed", 2),
    notification_row("n-a3", PLAN_A, at(1, 23, 59, 59), "unreached", 3),
    notification_row("n-b1", PLAN_B, at(1, 0), "cancelled", 1),
    notification_row("n-a4", PLAN_A, at(2, 8), "opted_out", 1),
    notification_row("n-a5", PLAN_A, at(2, 9), None, 0, status="skipped"),
    notification_row("n-b2", PLAN_B, at(2, 10), "confirmed", 1),
    notification_row("n-b3", PLAN_B, at(2, 11), None, 0, status="cancelled"),
    notification_row("n-x1", PLAN_A, at(31, 23, 59, 59, month=10), "confirmed", 1),
    notification_row("n-x2", PLAN_A, at(4, 0), "confirmed", 1),
    notification_row("n-x3", PLAN_A, None, None, 1, status="in_progress"),
]
CALLS_ROWS = [
    call_row("c-1", PLAN_A, at(1, 9), "completed", answered_by="human", answered=True),
    call_row("c-2", PLAN_A, at(1, 10), "completed", answered=True),
    call_row("c-3", PLAN_A, at(2, 9), "completed", answered_by="machine_start", answered=True),
    call_row("c-4", PLAN_A, at(2, 10), "no-answer"),
    call_row("c-5", PLAN_A, at(3, 10), "no-answer"),
    call_row("c-6", PLAN_A, at(3, 11), "ringing"),
    call_row("c-7", PLAN_B, at(1, 9), "busy", notification="n-b1"),
    call_row("c-8", PLAN_B, at(2, 9), "completed", answered=True, notification="n-b2"),
    call_row("c-x1", PLAN_A, at(2, 9), "completed", answered=True, direction="inbound",
             notification=None),
    call_row("c-x2", PLAN_A, at(2, 9), "completed", answered=True, notification=None),
    call_row("c-x3", PLAN_A, at(31, 9, month=10), "completed", answered=True),
]  # fmt: skip
SMS_ROWS = [
    sms_row("s-1", at(1, 9), "delivered"),
    sms_row("s-2", at(2, 9), "delivered", notification="n-a3"),
    sms_row("s-3", at(2, 10), "failed", notification="n-a3"),
    sms_row("s-4", at(3, 10), "sent", notification="n-a3"),
    sms_row("s-5", at(3, 11), "undelivered", notification="n-b1"),
    sms_row("s-x1", at(2, 9), "received", notification=None, direction="inbound"),
    sms_row("s-x2", at(2, 9), "delivered", notification=None),
    sms_row("s-x3", at(4, 0), "delivered"),
]


# Two campaigns (one with markup in its name, as an operator may type it); the rest of the
# notifications belong to none. Spring: n-a1, n-a2 (confirmed), n-b1 (cancelled) finished, and
# the calls c-1..c-7 and messages s-1, s-5 are theirs. Autumn: n-a4 (opted out).
SPRING = "camp-spring"
AUTUMN = "camp-autumn"
SPRING_NAME = "<script>alert(1)</script> Spring"
CAMPAIGN_OF = {"n-a1": SPRING, "n-a2": SPRING, "n-b1": SPRING, "n-a4": AUTUMN}


def campaign_row(ref: str, name: str) -> dict[str, Any]:
    return {
        "id": ref, "name": name, "plan_id": PLAN_A, "state": "done", "calls_per_second": None,
        "window_start": None, "window_end": None, "idempotency_key": None,
        "request_hash": None, "next_dial_at": None, "created_at": at(1, 0),
        "updated_at": at(1, 0),
    }  # fmt: skip


async def insert_report_data(tx: Transaction) -> None:
    """The rows above."""
    await tx.session.execute(
        CAMPAIGNS.insert(), [campaign_row(SPRING, SPRING_NAME), campaign_row(AUTUMN, "Autumn")]
    )
    rows = [{**row, "campaign_id": CAMPAIGN_OF.get(row["id"])} for row in NOTIFICATIONS_ROWS]
    await tx.session.execute(NOTIFICATIONS.insert(), rows)
    await tx.session.execute(CALLS.insert(), CALLS_ROWS)
    await tx.session.execute(SMS_MESSAGES.insert(), SMS_ROWS)
