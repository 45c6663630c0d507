"""Part of bench/console_pages.py: a SQLite database with N notifications of a working month.

Rows go in with the sqlite3 module's executemany in one transaction, in the storage format
SQLAlchemy uses on SQLite (timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text, JSON as
text, booleans as 0/1): 100,000 notifications with their calls, events, SMS, campaigns and
contacts take seconds, not the minutes one INSERT per row through the repositories would.
The schema comes from the real migrations first.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ivr.store import upgrade_database
from ivr.store.models import (
    CALL_EVENTS,
    CALLS,
    CAMPAIGNS,
    CONTACTS,
    NOTIFICATIONS,
    OPT_OUTS,
    SMS_MESSAGES,
)

PLANS = (("appointment_reminder", 50), ("delivery_notice", 25), ("appointment_reminder_ru", 15),
         ("appointment_reminder_ko", 10))  # fmt: skip
# (result, status, weight, attempts): what a month of reminders ends with.
RESULTS = (
    ("confirmed", "done", 45, 1), ("cancelled", "done", 10, 1), ("opted_out", "done", 3, 1),
    ("unreached", "done", 20, 3), ("no_answer", "done", 7, 1), ("voicemail", "done", 5, 2),
    ("incomplete", "done", 5, 1), (None, "skipped", 3, 0), (None, "scheduled", 2, 0),
)  # fmt: skip
DAYS = 30
CAMPAIGN_COUNT = 20
CAMPAIGN_SHARE = 0.6
CAMPAIGN_DAYS = 1.5
ROBOT = "+12025550100"


def stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def number(n: int) -> str:
    # +1 202 2xx xxxx: valid North American numbers (the pages check what they are given).
    return f"+1202{2_000_000 + n:07d}"


@dataclass
class Filled:
    """What the bench asks for: counts, and ids/numbers that exist."""

    path: Path
    counts: dict[str, int]
    campaign_id: str
    notification_id: str
    contact: str
    finished: int  # notifications finished
    in_totals: int  # of those, counted in the reports' daily totals (by the triggers)


def _insert(db: sqlite3.Connection, table: Any, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    columns = [c.name for c in table.columns if c.name in rows[0]]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    db.executemany(sql, ([row[c] for c in columns] for row in rows))
    return len(rows)


def _notification(
    n: int, rng: random.Random, now: datetime, campaigns: list[str]
) -> dict[str, Any]:
    plan = rng.choices([p for p, _ in PLANS], [w for _, w in PLANS])[0]
    result, status, _, attempts = rng.choices(RESULTS, [r[2] for r in RESULTS])[0]
    # A campaign runs for a day and a half (they follow each other through the month); the
    # other notifications come one by one from the integrators' systems, any day.
    campaign = rng.choice(campaigns) if rng.random() < CAMPAIGN_SHARE else None
    if campaign is None:
        age = rng.uniform(0, DAYS)
    else:
        age = CAMPAIGN_DAYS * (campaigns.index(campaign) + rng.random())
    created = now - timedelta(days=age, seconds=3600)
    finished = None if status == "scheduled" else created + timedelta(minutes=rng.uniform(1, 90))
    later = stamp(now + timedelta(days=30))
    return {
        "id": f"n{n:07d}", "idempotency_key": None, "to_number": number(rng.randrange(60_000)),
        "plan_id": plan, "category": "transactional",
        "variables": json.dumps({"name": f"Patient {n}", "clinic": "Sunrise Clinic",
                                 "when": "2026-12-24T10:00"}),
        "timezone": None, "not_before": None, "not_after": None, "attempts_max": 3,
        "retry_after": "[600.0, 3600.0]", "callback_url": None, "status": status,
        "outcome": result, "attempts": attempts, "active_call_id": None,
        "channels_used": json.dumps(["call"] if attempts else []),
        "next_attempt_at": later if status == "scheduled" else None, "lease_owner": None,
        "lease_expires_at": None, "skipped_code": "opted_out" if status == "skipped" else None,
        "skipped_reason": None, "created_at": stamp(created),
        "updated_at": stamp(finished or created),
        "finished_at": stamp(finished) if finished else None, "campaign_id": campaign,
    }  # fmt: skip


def _calls(note: dict[str, Any], rng: random.Random) -> Iterator[dict[str, Any]]:
    finished = datetime.fromisoformat(note["finished_at"] or note["created_at"]).replace(tzinfo=UTC)
    for attempt in range(note["attempts"]):
        last = attempt == note["attempts"] - 1
        answered = last and note["outcome"] != "unreached"
        at = finished - timedelta(minutes=10 * (note["attempts"] - attempt))
        yield {
            "id": f"{note['id']}c{attempt}", "provider_sid": f"CA{note['id']}{attempt}",
            "direction": "outbound", "plan_id": note["plan_id"], "plan_hash": "0" * 16,
            "from_number": ROBOT, "to_number": note["to_number"],
            "session_json": json.dumps({"plan_id": note["plan_id"], "state": "ask",
                                        "waiting": "done", "outcome": note["outcome"]}),
            "status": "completed" if answered else rng.choice(("no-answer", "busy")),
            "answered_by": ("machine_end_beep" if note["outcome"] == "voicemail" else "human")
            if answered else None,
            "outcome": note["outcome"] if answered else None, "turn": 3 if answered else 0,
            "last_response": "<Response><Hangup/></Response>", "duration_seconds": 25,
            "notification_id": note["id"], "created_at": stamp(at), "updated_at": stamp(at),
            "answered_at": stamp(at + timedelta(seconds=5)) if answered else None,
            "ended_at": stamp(at + timedelta(seconds=30)),
        }  # fmt: skip


def _events(call: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if call["answered_at"] is None:
        return
    kinds = (("prompt", {"text": "Hello. Your appointment is tomorrow at 10:00."}),
             ("input", {"speech": "yes", "confidence": 0.91}),
             ("transition", {"from": "ask", "to": "confirmed", "reason": "intent confirm"}),
             ("status", {"status": "completed"}))  # fmt: skip
    for kind, data in kinds:
        yield {"call_id": call["id"], "at": call["answered_at"], "kind": kind,
               "data": json.dumps(data)}  # fmt: skip


def _sms(note: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    if note["outcome"] not in ("unreached", "voicemail") or rng.random() > 0.8:
        return None
    return {
        "id": f"{note['id']}s", "provider_sid": f"SM{note['id']}", "call_id": None,
        "notification_id": note["id"], "direction": "outbound", "from_number": ROBOT,
        "to_number": note["to_number"], "body": "Hi, Sunrise Clinic reminds you of your visit.",
        "status": rng.choices(("delivered", "undelivered", "sent"), (90, 7, 3))[0], "error": None,
        "created_at": note["finished_at"], "updated_at": note["finished_at"],
    }  # fmt: skip


def _contacts(
    rng: random.Random, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    at = stamp(now - timedelta(days=10))
    contacts = [
        {"number": number(n), "timezone": rng.choice(("America/New_York", "Europe/Paris", None)),
         "multiple_channels": 0, "do_not_call": int(n % 10 == 0),
         "do_not_call_reason": "asked on the phone" if n % 10 == 0 else None,
         "created_at": at, "updated_at": at}
        for n in range(0, 60_000, 3)
    ]  # fmt: skip
    opt_outs = [
        {"number": number(n), "category": "*" if n % 4 == 0 else "marketing", "source": "sms",
         "reason": "STOP", "created_at": at, "updated_at": at}
        for n in range(1, 60_000, 12)
    ]  # fmt: skip
    return contacts, opt_outs


def fill(path: Path, notifications: int, seed: int = 15) -> Filled:
    """Create and fill the database at ``path`` (migrated by the real migrations first)."""
    asyncio.run(upgrade_database(f"sqlite:///{path}"))
    rng = random.Random(seed)
    now = datetime.now(UTC)
    campaigns = [
        {"id": f"camp{n:02d}", "name": f"Reminders week {n}", "plan_id": "appointment_reminder",
         "state": "done", "calls_per_second": None, "window_start": None, "window_end": None,
         "idempotency_key": None, "request_hash": None, "next_dial_at": None,
         "created_at": stamp(now - timedelta(days=DAYS)), "updated_at": stamp(now)}
        for n in range(CAMPAIGN_COUNT)
    ]  # fmt: skip
    ids = [c["id"] for c in campaigns]
    notes = [_notification(n, rng, now, ids) for n in range(notifications)]
    calls = [call for note in notes for call in _calls(note, rng)]
    events = [event for call in calls for event in _events(call)]
    sms = [m for note in notes if (m := _sms(note, rng)) is not None]
    contacts, opt_outs = _contacts(rng, now) if notifications >= 1000 else ([], [])
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous=OFF")
        with db:
            counts = {
                "campaigns": _insert(db, CAMPAIGNS, campaigns),
                "notifications": _insert(db, NOTIFICATIONS, notes),
                "calls": _insert(db, CALLS, calls),
                "call events": _insert(db, CALL_EVENTS, events),
                "sms": _insert(db, SMS_MESSAGES, sms),
                "contacts": _insert(db, CONTACTS, contacts),
                "opt-outs": _insert(db, OPT_OUTS, opt_outs),
            }
        db.execute("ANALYZE")  # as a database that has lived a month would have statistics
        in_totals = db.execute("SELECT coalesce(sum(finished), 0) FROM report_notification_days")
        counted = int(in_totals.fetchone()[0])
    finally:
        db.close()
    answered = next(c for c in calls if c["answered_at"] is not None)
    finished = sum(1 for note in notes if note["finished_at"] is not None)
    return Filled(path, counts, ids[0], str(answered["notification_id"]),
                  contacts[0]["number"] if contacts else notes[0]["to_number"], finished,
                  counted)  # fmt: skip
