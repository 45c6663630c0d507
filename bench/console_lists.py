"""Console pages (live calls, notifications, campaigns) with 100,000 notifications in SQLite.

The real app serves the pages over HTTP on this machine (no scheduler: the rows stay as
seeded); a signed-in client asks each page ``--repeat`` times and the table shows the
response time p50 / p95 / max and each page's p50 against the same run's baseline, ``GET
/healthz`` (an HTTP round trip through the same server doing no database work).

    .venv/bin/python bench/console_lists.py            # 100,000 notifications
    .venv/bin/python bench/console_lists.py --rows 20000 --repeat 10
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import unused_port

from ivr.config import Settings
from ivr.store import Store
from ivr.store.models import CALL_EVENTS, CALLS, CAMPAIGNS, NOTIFICATIONS
from ivr.store.statements import new_ref
from ivr.web.app import AppParts, create_app

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-console-token"
PLANS = ("appointment_reminder", "delivery_notice", "payment_reminder")
STATUSES = ("done",) * 6 + ("scheduled", "skipped", "failed", "cancelled")
OUTCOMES = ("confirmed", "cancelled", "voicemail", "unreached", "opted_out")
LIVE = 40  # calls under way in the seeded data
CAMPAIGNS_SEEDED = 10  # half the notifications belong to one of these
BATCH = 2000


def _notification(i: int, now: datetime) -> dict[str, Any]:
    created = now - timedelta(seconds=(30 * 86400) * (1 - i / 100_000) + random.random())
    status = random.choice(STATUSES)
    return {
        "id": new_ref(), "idempotency_key": None, "to_number": f"+1212555{i % 10_000:04d}",
        "plan_id": random.choice(PLANS), "category": "transactional",
        "variables": {"name": f"Person {i}", "clinic": "Sunrise", "when": "2026-11-24T10:00"},
        "timezone": "UTC", "not_before": None, "not_after": None, "attempts_max": 3,
        "retry_after": [600.0], "callback_url": None, "status": status,
        "outcome": random.choice(OUTCOMES) if status == "done" else None,
        "attempts": 1 if status != "scheduled" else 0, "active_call_id": None,
        "channels_used": ["voice"], "next_attempt_at": created if status == "scheduled" else None,
        "lease_owner": None, "lease_expires_at": None, "skipped_code": None,
        "skipped_reason": None, "created_at": created, "updated_at": created,
        "finished_at": created + timedelta(minutes=1) if status != "scheduled" else None,
    }  # fmt: skip


def _call(n: dict[str, Any], live: bool, now: datetime) -> dict[str, Any]:
    created = now - timedelta(seconds=random.randint(1, 60)) if live else n["created_at"]
    return {
        "id": new_ref(), "provider_sid": "CA" + new_ref(), "direction": "outbound",
        "plan_id": n["plan_id"], "plan_hash": "0" * 16, "from_number": "+12025550100",
        "to_number": n["to_number"],
        "session_json": '{"state": "ask", "variables": {}}',
        "status": "in-progress" if live else "completed", "answered_by": "human",
        "outcome": n["outcome"], "turn": 2, "last_response": None, "duration_seconds": 30,
        "notification_id": n["id"], "created_at": created, "updated_at": created,
        "answered_at": created, "ended_at": None if live else created,
    }  # fmt: skip


def _events(call_id: str, at: datetime) -> list[dict[str, Any]]:
    kinds = [
        ("status", {"status": "ringing"}), ("CallAnswered", {"answered_by": "human"}),
        ("Entered", {"state": "greet", "previous": None, "reason": "answered"}),
        ("Say", {"text": "Hello. Your appointment is on Tuesday.", "language": "en-US"}),
        ("Entered", {"state": "ask", "previous": "greet", "reason": "next"}),
        ("Say", {"text": "Say yes to confirm.", "language": "en-US"}),
        ("Understood", {"state": "ask", "intent": "confirm", "digits": None, "heard": "yes",
                        "confidence": 0.9}),
        ("SetOutcome", {"outcome": "confirmed"}), ("status", {"status": "completed"}),
    ]  # fmt: skip
    return [
        {"call_id": call_id, "kind": k, "data": d, "at": at + timedelta(seconds=i)}
        for i, (k, d) in enumerate(kinds)
    ]


def _campaign(i: int, now: datetime) -> dict[str, Any]:
    at = now - timedelta(days=30 - i)
    return {
        "id": new_ref(), "name": f"Campaign {i}", "plan_id": PLANS[0], "state": "active",
        "calls_per_second": None, "window_start": None, "window_end": None,
        "idempotency_key": None, "request_hash": None, "next_dial_at": None,
        "created_at": at, "updated_at": at,
    }  # fmt: skip


async def seed(url: str, rows: int) -> tuple[str, str, str]:
    """Notifications (half of them in campaigns), one call each (LIVE of them under way) and
    a few calls' events."""
    now = datetime.now(UTC)
    store = Store.open(url)
    await store.upgrade()
    first_id = deep_id = ""
    campaigns = [_campaign(i, now) for i in range(CAMPAIGNS_SEEDED)]
    try:
        async with store.transaction() as tx:
            await tx.session.execute(CAMPAIGNS.insert(), campaigns)
        for start in range(0, rows, BATCH):
            batch = [_notification(i, now) for i in range(start, min(rows, start + BATCH))]
            for i, n in enumerate(batch):
                n["campaign_id"] = campaigns[i % 20]["id"] if i % 20 < CAMPAIGNS_SEEDED else None
            calls = [
                _call(n, rows - (start + j) <= LIVE, now)
                for j, n in enumerate(batch)
                if n["status"] != "scheduled"
            ]
            events = [e for c in calls[:3] for e in _events(c["id"], c["created_at"])]
            async with store.transaction() as tx:
                await tx.session.execute(NOTIFICATIONS.insert(), batch)
                await tx.session.execute(CALLS.insert(), calls)
                await tx.session.execute(CALL_EVENTS.insert(), events)
            if start == 0:
                first_id = next(c["notification_id"] for c in calls)
            if start <= rows // 2 < start + BATCH:
                deep_id = batch[0]["id"]
    finally:
        await store.close()
    return first_id, deep_id or first_id, campaigns[0]["id"]


async def sign_in(http: aiohttp.ClientSession, base: str) -> None:
    async with http.get(base + "/console/sign-in") as response:
        page = await response.text()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the sign-in page"
    form = {"csrf": match.group(1), "user": "", "password": TOKEN, "next": "/console/"}
    async with http.post(base + "/console/sign-in", data=form, allow_redirects=False) as response:
        assert response.status == 303, await response.text()


async def timed(http: aiohttp.ClientSession, url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        async with http.get(url, allow_redirects=False) as response:
            await response.read()
            assert response.status == 200, (url, response.status)
        times.append(time.perf_counter() - started)
    return times


async def main(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ivr-bench-console-") as workdir:
        database = f"sqlite:///{workdir}/console.db"
        started = time.perf_counter()
        detail_id, deep_id, campaign_id = await seed(database, rows)
        print(f"seeded {rows:,} notifications in {time.perf_counter() - started:.1f} s")
        port = unused_port()
        base = f"http://127.0.0.1:{port}"
        settings = Settings(
            provider="simulator", public_url=base, database_url=database,
            dialplans=ROOT / "dialplans", audio_dir=Path(workdir) / "audio",
            var_dir=Path(workdir) / "var", api_token=TOKEN,
        )  # fmt: skip
        app = create_app(settings, base, AppParts(background=False, warm_up=False))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        pages = {
            "baseline: /healthz": "/healthz",
            "live calls": "/console/calls",
            "notifications, newest": "/console/notifications",
            "notifications, status=done": "/console/notifications?status=done",
            "notifications, plan filter": f"/console/notifications?plan={PLANS[1]}",
            "notifications, status+plan": f"/console/notifications?status=failed&plan={PLANS[2]}",
            "notifications, one number": "/console/notifications?to=%2B12125550042",
            "notifications, page mid-table": f"/console/notifications?before={deep_id}",
            "notification detail": f"/console/notifications/{detail_id}",
            "notifications, one campaign": f"/console/notifications?campaign={campaign_id}",
            "campaigns (10, 50,000 notifications)": "/console/campaigns",
            f"campaign ({rows // 20:,} notifications)": f"/console/campaigns/{campaign_id}",
        }
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                await sign_in(http, base)
                results = {}
                for name, path in pages.items():
                    await timed(http, base + path, 2)  # warm: first plan compile, page cache
                    results[name] = await timed(http, base + path, repeat)
        finally:
            await runner.cleanup()
    baseline = statistics.median(results["baseline: /healthz"])
    print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p50 / baseline':>15}")
    for name, times in results.items():
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        p50 = statistics.median(times)
        print(
            f"{name:40} {p50 * 1000:8.1f} {p95 * 1000:8.1f} {ordered[-1] * 1000:8.1f}"
            f" {p50 / baseline:14.1f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.repeat))
