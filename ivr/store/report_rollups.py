"""Daily totals for the reports, kept by database triggers as notifications and calls end.

Counting a month of 100,000 notifications per page view means sorting 100,000 index entries
(0.3-0.6 s on SQLite on a loaded 2-core machine, bench/console_pages.py); reading the month's
totals is reading a few hundred rows. The totals are written by triggers in the same
transaction as the change they count, on SQLite and PostgreSQL alike, so they are exact, need
no code on the write paths, and hold for every process writing to the database:

- ``report_notification_days``: one row per (UTC day finished, plan, campaign, result) with
  how many finished, their calls and how many were called at all. A notification finishes
  once (its finished_at is set once, see NotificationRepository.finish/cancel), so the
  trigger counts it when finished_at goes from null to a value, or when a row is inserted
  already finished.
- ``report_sms_days``: fallback SMS (outbound, of a notification) per (UTC day created, plan,
  campaign): how many, and how many are delivered or failed now (a status change moves the
  message between those counts).
- ``report_call_days``: one row per (UTC day placed, plan, campaign) of the outbound calls of
  notifications that ended: how many, answered, answered by a person. A call reaches a final
  status once (CALL_STATUS_RANK), counted then, or when inserted already final.

``campaign_id`` is ``''`` for "no campaign" (a primary key column cannot be null).

SQLite drops a table's triggers when a batch migration rebuilds the table: a later migration
that rebuilds ``notifications`` or ``calls`` must call ``create_triggers`` again.
"""

from __future__ import annotations

from collections.abc import Callable

from ivr.store.models import FINAL_CALL_STATUSES, SmsStatus

# What the reports call a delivered and a failed fallback SMS.
SMS_DELIVERED = (SmsStatus.DELIVERED.value,)
SMS_FAILED = (SmsStatus.UNDELIVERED.value, SmsStatus.FAILED.value, SmsStatus.CANCELED.value)

_FINAL = ", ".join(f"'{status.value}'" for status in sorted(FINAL_CALL_STATUSES))
_DELIVERED = ", ".join(f"'{status}'" for status in SMS_DELIVERED)
_FAILED = ", ".join(f"'{status}'" for status in SMS_FAILED)


def _result(row: str) -> str:
    # As report_queries.result_of: the outcome, else the final status.
    return (
        f"CASE WHEN {row}.outcome IS NOT NULL AND {row}.outcome <> '' THEN {row}.outcome "
        f"WHEN {row}.status = 'cancelled' THEN 'cancelled_before_call' ELSE {row}.status END"
    )


def _notification_upsert(day: str) -> str:
    return f"""
    INSERT INTO report_notification_days
        (day, plan_id, campaign_id, result, finished, attempts, called)
    VALUES ({day}, NEW.plan_id, COALESCE(NEW.campaign_id, ''), {_result("NEW")}, 1,
            NEW.attempts, CASE WHEN NEW.attempts > 0 THEN 1 ELSE 0 END)
    ON CONFLICT (day, plan_id, campaign_id, result) DO UPDATE SET
        finished = report_notification_days.finished + 1,
        attempts = report_notification_days.attempts + excluded.attempts,
        called = report_notification_days.called + excluded.called"""


def _call_upsert(day: str) -> str:
    answered = "CASE WHEN NEW.answered_at IS NOT NULL THEN 1 ELSE 0 END"
    person = (
        "CASE WHEN NEW.answered_at IS NOT NULL AND COALESCE(NEW.answered_by, 'human') = 'human' "
        "THEN 1 ELSE 0 END"
    )
    campaign = (
        "COALESCE((SELECT n.campaign_id FROM notifications n WHERE n.id = NEW.notification_id), '')"
    )
    return f"""
    INSERT INTO report_call_days (day, plan_id, campaign_id, ended, answered, by_person)
    VALUES ({day}, NEW.plan_id, {campaign}, 1, {answered}, {person})
    ON CONFLICT (day, plan_id, campaign_id) DO UPDATE SET
        ended = report_call_days.ended + 1,
        answered = report_call_days.answered + excluded.answered,
        by_person = report_call_days.by_person + excluded.by_person"""


def _bucket(row: str) -> str:
    # In parentheses: PL/pgSQL ends an IF condition at the first THEN outside them.
    return (
        f"(CASE WHEN {row}.status IN ({_DELIVERED}) THEN 'delivered' "
        f"WHEN {row}.status IN ({_FAILED}) THEN 'failed' ELSE 'other' END)"
    )


def _sms_upsert(day: str, row: str, sent: int, sign: int) -> str:
    """Count the message ``row`` (NEW or OLD) into its day: ``sign`` +1 adds, -1 takes away."""
    owner = f"FROM notifications n WHERE n.id = {row}.notification_id"
    campaign = f"COALESCE((SELECT n.campaign_id {owner}), '')"
    plan = f"COALESCE((SELECT n.plan_id {owner}), '')"
    delivered = f"CASE WHEN {_bucket(row)} = 'delivered' THEN {sign} ELSE 0 END"
    failed = f"CASE WHEN {_bucket(row)} = 'failed' THEN {sign} ELSE 0 END"
    return f"""
    INSERT INTO report_sms_days (day, plan_id, campaign_id, sent, delivered, failed)
    VALUES ({day}, {plan}, {campaign}, {sent}, {delivered}, {failed})
    ON CONFLICT (day, plan_id, campaign_id) DO UPDATE SET
        sent = report_sms_days.sent + excluded.sent,
        delivered = report_sms_days.delivered + excluded.delivered,
        failed = report_sms_days.failed + excluded.failed"""


_SMS_COUNTS = "NEW.direction = 'outbound' AND NEW.notification_id IS NOT NULL"

_CALL_COUNTS = (
    f"NEW.direction = 'outbound' AND NEW.notification_id IS NOT NULL AND NEW.status IN ({_FINAL})"
)


def _sqlite() -> list[str]:
    # SQLite keeps UTC timestamps as "YYYY-MM-DD HH:MM:SS.ffffff" text (see UTCDateTime).
    n_day, c_day = "substr(NEW.finished_at, 1, 10)", "substr(NEW.created_at, 1, 10)"
    s_day = c_day
    return [
        f"""CREATE TRIGGER report_notification_inserted AFTER INSERT ON notifications
            WHEN NEW.finished_at IS NOT NULL BEGIN {_notification_upsert(n_day)}; END""",
        f"""CREATE TRIGGER report_notification_finished AFTER UPDATE OF finished_at ON notifications
            WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL
            BEGIN {_notification_upsert(n_day)}; END""",
        f"""CREATE TRIGGER report_call_inserted AFTER INSERT ON calls
            WHEN {_CALL_COUNTS} BEGIN {_call_upsert(c_day)}; END""",
        f"""CREATE TRIGGER report_call_ended AFTER UPDATE OF status ON calls
            WHEN {_CALL_COUNTS} AND OLD.status NOT IN ({_FINAL})
            BEGIN {_call_upsert(c_day)}; END""",
        f"""CREATE TRIGGER report_sms_inserted AFTER INSERT ON sms_messages
            WHEN {_SMS_COUNTS} BEGIN {_sms_upsert(s_day, "NEW", 1, 1)}; END""",
        f"""CREATE TRIGGER report_sms_status AFTER UPDATE OF status ON sms_messages
            WHEN {_SMS_COUNTS} AND {_bucket("OLD")} <> {_bucket("NEW")}
            BEGIN {_sms_upsert(s_day.replace("NEW.", "OLD."), "OLD", 0, -1)};
                  {_sms_upsert(s_day, "NEW", 0, 1)}; END""",
    ]


def _postgresql() -> list[str]:
    n_day = "to_char(NEW.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    c_day = "to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return [
        f"""CREATE FUNCTION report_notification_counted() RETURNS trigger AS $$
        BEGIN
            IF NEW.finished_at IS NOT NULL
               AND (TG_OP = 'INSERT' OR OLD.finished_at IS NULL) THEN
                {_notification_upsert(n_day)};
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER report_notification_counted
            AFTER INSERT OR UPDATE OF finished_at ON notifications
            FOR EACH ROW EXECUTE FUNCTION report_notification_counted()""",
        f"""CREATE FUNCTION report_call_counted() RETURNS trigger AS $$
        BEGIN
            IF {_CALL_COUNTS}
               AND (TG_OP = 'INSERT' OR OLD.status NOT IN ({_FINAL})) THEN
                {_call_upsert(c_day)};
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER report_call_counted AFTER INSERT OR UPDATE OF status ON calls
            FOR EACH ROW EXECUTE FUNCTION report_call_counted()""",
        f"""CREATE FUNCTION report_sms_counted() RETURNS trigger AS $$
        BEGIN
            IF NOT ({_SMS_COUNTS}) THEN
                RETURN NULL;
            END IF;
            IF TG_OP = 'INSERT' THEN
                {_sms_upsert(c_day, "NEW", 1, 1)};
            ELSIF {_bucket("OLD")} <> {_bucket("NEW")} THEN
                {_sms_upsert(c_day.replace("NEW.", "OLD."), "OLD", 0, -1)};
                {_sms_upsert(c_day, "NEW", 0, 1)};
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER report_sms_counted AFTER INSERT OR UPDATE OF status ON sms_messages
            FOR EACH ROW EXECUTE FUNCTION report_sms_counted()""",
    ]


DROP = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS report_notification_inserted",
        "DROP TRIGGER IF EXISTS report_notification_finished",
        "DROP TRIGGER IF EXISTS report_call_inserted",
        "DROP TRIGGER IF EXISTS report_call_ended",
        "DROP TRIGGER IF EXISTS report_sms_inserted",
        "DROP TRIGGER IF EXISTS report_sms_status",
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS report_notification_counted ON notifications",
        "DROP FUNCTION IF EXISTS report_notification_counted()",
        "DROP TRIGGER IF EXISTS report_call_counted ON calls",
        "DROP FUNCTION IF EXISTS report_call_counted()",
        "DROP TRIGGER IF EXISTS report_sms_counted ON sms_messages",
        "DROP FUNCTION IF EXISTS report_sms_counted()",
    ],
}


def _backfill(day_of: Callable[[str], str]) -> list[str]:
    """The totals of what the database already holds (run once, when the tables are made)."""
    result = _result("n")
    return [
        f"""INSERT INTO report_notification_days
            (day, plan_id, campaign_id, result, finished, attempts, called)
        SELECT {day_of("n.finished_at")}, n.plan_id, COALESCE(n.campaign_id, ''), {result},
               count(*), sum(n.attempts), sum(CASE WHEN n.attempts > 0 THEN 1 ELSE 0 END)
        FROM notifications n WHERE n.finished_at IS NOT NULL
        GROUP BY 1, 2, 3, 4""",
        f"""INSERT INTO report_call_days (day, plan_id, campaign_id, ended, answered, by_person)
        SELECT {day_of("c.created_at")}, c.plan_id, COALESCE(n.campaign_id, ''), count(*),
               sum(CASE WHEN c.answered_at IS NOT NULL THEN 1 ELSE 0 END),
               sum(CASE WHEN c.answered_at IS NOT NULL
                        AND COALESCE(c.answered_by, 'human') = 'human' THEN 1 ELSE 0 END)
        FROM calls c LEFT JOIN notifications n ON n.id = c.notification_id
        WHERE c.direction = 'outbound' AND c.notification_id IS NOT NULL
          AND c.status IN ({_FINAL})
        GROUP BY 1, 2, 3""",
        f"""INSERT INTO report_sms_days (day, plan_id, campaign_id, sent, delivered, failed)
        SELECT {day_of("s.created_at")}, COALESCE(n.plan_id, ''), COALESCE(n.campaign_id, ''),
               count(*), sum(CASE WHEN {_bucket("s")} = 'delivered' THEN 1 ELSE 0 END),
               sum(CASE WHEN {_bucket("s")} = 'failed' THEN 1 ELSE 0 END)
        FROM sms_messages s LEFT JOIN notifications n ON n.id = s.notification_id
        WHERE s.direction = 'outbound' AND s.notification_id IS NOT NULL
        GROUP BY 1, 2, 3""",
    ]


def create_triggers(dialect: str) -> list[str]:
    """The statements that create the triggers on ``dialect`` (sqlite or postgresql)."""
    return _sqlite() if dialect == "sqlite" else _postgresql()


def backfill(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return _backfill(lambda column: f"substr({column}, 1, 10)")
    return _backfill(lambda column: f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
