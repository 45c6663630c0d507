"""Campaigns at volume on SQLite: the 0004 migration, creating, progress, export.

    .venv/bin/python bench/campaigns.py             # 100,000 notifications
    .venv/bin/python bench/campaigns.py --rows 5000 # quick

Each number is printed with a same-run baseline and the ratio:
1. migration 0003 -> 0004 on a database holding N notifications (the notifications table is
   rebuilt to add its foreign key); baseline: copying the table with CREATE TABLE AS SELECT;
2. a campaign from a CSV of N rows (CampaignService.create_from_csv, all rows validated as
   the API does, in one transaction); baseline: NotificationService.create_many of the same
   requests, the path of ``ivr notify import``;
3. a campaign's progress (CampaignService.get: counts by status and outcome) with N
   notifications, and a page of campaigns (list); baseline: SELECT count(*) of the campaign's
   notifications;
4. the export (every row as CSV); baseline: reading the same columns with a plain SELECT;
5. the scheduler's claim of 50 due notifications while the large campaign is paused (its
   notifications are parked out of the claim's index range); baseline: the same claim once
   it is resumed; and the pause (baseline: the resume).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.config import Settings  # noqa: E402
from ivr.dialplan.loader import load_plans_or_raise  # noqa: E402
from ivr.outbound.campaigns import CampaignService  # noqa: E402
from ivr.outbound.requests import NotificationRequest  # noqa: E402
from ivr.outbound.service import NotificationService  # noqa: E402
from ivr.store import Store, Transaction  # noqa: E402
from ivr.store.db import create_engine  # noqa: E402
from ivr.store.migrate import upgrade_engine  # noqa: E402
from ivr.store.models import NOTIFICATIONS  # noqa: E402


class TimedStore(Store):
    """Measures how long each write transaction holds SQLite's writer (webhooks wait that long)."""

    longest = 0.0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with super().transaction() as tx:
            start = time.perf_counter()
            yield tx
        self.longest = max(self.longest, time.perf_counter() - start)


VARS = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2031-11-24T10:00"}


def numbers(count: int) -> list[str]:
    # +1 212..919 area codes x 555-01xx are fictional; vary the exchange for volume.
    areas = ["212", "312", "415", "617", "713", "303", "404", "503", "206", "305"]
    return [f"+1{areas[i % 10]}{200 + (i // 10) % 800:03d}{i // 8000:04d}" for i in range(count)]


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await work()
    return time.perf_counter() - start, result


def report(name: str, seconds: float, baseline: float) -> None:
    ratio = seconds / baseline if baseline else float("inf")
    print(
        f"{name:<44} {seconds * 1000:9.1f} ms   baseline {baseline * 1000:9.1f} ms   x{ratio:.2f}"
    )


async def migration(folder: Path, rows: int) -> None:
    engine = create_engine(f"sqlite:///{folder}/migrate.db")
    await upgrade_engine(engine, "0003")
    now = "2026-12-01 10:00:00.000000"
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO notifications (id, to_number, plan_id, category, variables, "
                "attempts_max, retry_after, status, attempts, channels_used, created_at, "
                "updated_at) VALUES (:id, '+12125550100', 'appointment_reminder', "
                "'transactional', '{}', 3, '[600]', 'scheduled', 0, '[]', :now, :now)"
            ),
            [{"id": f"n{i:08d}", "now": now} for i in range(rows)],
        )
    baseline, _ = await timed(lambda: _copy_table(engine))
    seconds, _ = await timed(lambda: upgrade_engine(engine, "0004"))
    await engine.dispose()
    report(f"migration 0004 with {rows} notifications", seconds, baseline)


async def _copy_table(engine: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE copy AS SELECT * FROM notifications"))
        await connection.execute(text("DROP TABLE copy"))


async def volume(folder: Path, rows: int) -> None:
    settings = Settings(
        provider="simulator", database_url=f"sqlite:///{folder}/ivr.db",
        dialplans=ROOT / "dialplans", audio_dir=folder / "audio", var_dir=folder / "var",
        default_timezone="UTC",
    )  # fmt: skip
    plans = load_plans_or_raise([settings.dialplans], settings.audio_dir)
    people = numbers(rows)
    csv_text = "to,name,clinic,when\n" + "".join(
        f"{n},Anna,Sunrise Clinic,2031-11-24T10:00\n" for n in people
    )
    async with Store.open(f"sqlite:///{folder}/baseline.db") as store:
        await store.upgrade()
        service = NotificationService(store, plans, settings)
        requests = [
            NotificationRequest(to=n, plan="appointment_reminder", variables=VARS) for n in people
        ]

        async def batches() -> None:
            for start in range(0, len(requests), 500):
                await service.create_many(requests[start : start + 500])

        baseline, _ = await timed(batches)
    async with TimedStore(create_engine(settings.database_url)) as store:
        await store.upgrade()
        campaigns = CampaignService(store, plans, settings)
        store.longest = 0.0
        seconds, (view, errors) = await timed(
            lambda: campaigns.create_from_csv("bench", "appointment_reminder", csv_text)
        )
        assert view is not None, errors[:3]
        report(f"create a campaign from {rows} CSV rows", seconds, baseline)
        print(f"{'  longest write transaction while creating':<44} {store.longest * 1000:9.1f} ms")
        for extra in range(49):  # a page of campaigns to list
            await campaigns.create(
                f"small {extra}", "appointment_reminder", [{"to": people[0], "variables": VARS}]
            )

        async def count() -> int:
            async with store.read() as tx:
                statement = select(func.count()).where(NOTIFICATIONS.c.campaign_id == view.id)
                return int((await tx.session.execute(statement)).scalar_one())

        baseline, _ = await timed(count)
        seconds, _ = await timed(lambda: campaigns.get(view.id))
        report(f"progress of a {rows}-notification campaign", seconds, baseline)
        seconds, _ = await timed(lambda: campaigns.list(limit=50))
        report("list 50 campaigns (one of them large)", seconds, baseline)

        async def read_all() -> int:
            async with store.read() as tx:
                statement = select(
                    NOTIFICATIONS.c.id, NOTIFICATIONS.c.to_number, NOTIFICATIONS.c.status,
                    NOTIFICATIONS.c.variables,
                ).where(NOTIFICATIONS.c.campaign_id == view.id)  # fmt: skip
                return len((await tx.session.execute(statement)).all())

        async def export() -> int:
            return sum([len(piece) async for piece in campaigns.export_csv(view.id)])

        baseline, _ = await timed(read_all)
        seconds, size = await timed(export)
        report(f"export {rows} rows ({size // 1024} KiB of CSV)", seconds, baseline)

        due = datetime.now(UTC) + timedelta(seconds=1)

        async def claim(owner: str) -> int:
            async with store.transaction() as tx:
                return len(await tx.notifications.claim_due(owner, due, 50, 30))

        seconds, _ = await timed(lambda: campaigns.pause(view.id))
        pause_seconds = seconds
        claim_paused, claimed = await timed(lambda: claim("paused"))
        assert claimed == 49  # the 49 small campaigns' notifications
        resume_seconds, _ = await timed(lambda: campaigns.resume(view.id))
        claim_active, _ = await timed(lambda: claim("active"))
        report(f"claim 50 beside a paused {rows} campaign", claim_paused, claim_active)
        report(f"pause, then resume, a {rows} campaign", pause_seconds, resume_seconds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        await migration(folder, args.rows)
        await volume(folder, args.rows)


if __name__ == "__main__":
    asyncio.run(main())
