"""Parts of bench/outbound.py: throwaway databases, rows inserted bare, and the claims part.

Claims: ``NotificationRepository.claim_due`` in worker processes (1 and 2 at once) on a table
of N due notifications; after each claim the worker marks what it claimed in-progress, untimed,
as the scheduler's dial does. Baseline: the claim's due-rows query as a plain SELECT in a
read-only transaction (no row lock, no lease written, the same first rows each time).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from ivr.store import NotificationRecord, NotificationStatus, Store, normalize_database_url
from ivr.store.models import NOTIFICATIONS
from ivr.store.statements import new_ref

POSTGRES_URL = os.environ.get("IVR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PLAN = "appointment_reminder"


# -- databases ------------------------------------------------------------------------------


class Databases:
    """Fresh SQLite files in a temp directory and PostgreSQL databases, all removed at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.admin_url: URL = normalize_database_url(POSTGRES_URL)
        self.address = f"{self.admin_url.host or 'localhost'}:{self.admin_url.port or 5432}"
        self.created: list[str] = []
        self.prefix = f"ivr_bench_{secrets.token_hex(3)}"
        self.postgres_problem: str | None = None

    async def check_postgres(self) -> bool:
        try:
            await self._admin("SELECT 1")
        except Exception as exc:  # whatever it is, the PostgreSQL rows are skipped, not failed
            self.postgres_problem = f"skipped: PostgreSQL not reachable at {self.address}"
            print(f"{self.postgres_problem} ({exc.__class__.__name__}: {exc})")
            return False
        return True

    def sqlite(self, name: str) -> str:
        return f"sqlite:///{self.workdir / name}.db"

    async def postgres(self, name: str) -> str:
        database = f"{self.prefix}_{name}"
        await self._admin(f'CREATE DATABASE "{database}"')
        self.created.append(database)
        plain = self.admin_url.set(drivername="postgresql", database=database)
        return plain.render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        for database in self.created:
            await self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.created.clear()

    async def _admin(self, statement: str) -> None:
        engine = create_async_engine(
            self.admin_url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5}
        )
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()


async def vacuum(url: str) -> None:
    """VACUUM ANALYZE on PostgreSQL between runs, so dead row versions do not skew the next."""
    store = Store.open(url)
    if store.backend == "postgresql":
        engine = create_async_engine(store.url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text("VACUUM ANALYZE notifications"))
        await engine.dispose()
    await store.close()


# -- rows -----------------------------------------------------------------------------------


def number(n: int) -> str:
    """A distinct valid US number per n (exchanges 200-299 of area 202, 10,000 lines each)."""
    return f"+1202{200 + n // 10_000:03d}{n % 10_000:04d}"


def bare_row(cells: dict[str, str], now: datetime) -> dict[str, Any]:
    """A notifications row from CSV cells with no checks: what the baseline inserts."""
    return {
        "id": new_ref(), "idempotency_key": cells["idempotency_key"], "to_number": cells["to"],
        "plan_id": PLAN, "category": "transactional",
        "variables": {"name": cells["name"], "clinic": cells["clinic"], "when": cells["when"]},
        "attempts_max": 3, "retry_after": [600.0, 3600.0],
        "status": NotificationStatus.SCHEDULED.value, "attempts": 0, "channels_used": [],
        "next_attempt_at": now, "created_at": now, "updated_at": now,
    }  # fmt: skip


async def bare_insert(url: str, rows: Iterator[dict[str, Any]], batch: int) -> int:
    """Migrate, then insert ``rows`` with executemany, one transaction per ``batch``."""
    store = Store.open(url)
    await store.upgrade()
    inserted = 0
    chunk: list[dict[str, Any]] = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) == batch:
                inserted += await _insert(store, chunk)
                chunk = []
        if chunk:
            inserted += await _insert(store, chunk)
    finally:
        await store.close()
    return inserted


async def _insert(store: Store, rows: list[dict[str, Any]]) -> int:
    async with store.transaction() as tx:
        await tx.session.execute(NOTIFICATIONS.insert(), rows)
    return len(rows)


async def count_rows(url: str) -> int:
    store = Store.open(url)
    try:
        async with store.read() as tx:
            return sum((await tx.notifications.count_by_status()).values())
    finally:
        await store.close()


# -- 2. claims ------------------------------------------------------------------------------


def claim_worker(commands: Any, results: Any) -> None:
    """A claimer in its own process: runs (url, mode, batch, count, start_at) until None."""
    asyncio.run(_claim_worker(commands, results))


async def _claim_worker(commands: Any, results: Any) -> None:
    stores: dict[str, Store] = {}
    owner = f"bench-{os.getpid()}"
    try:
        while (command := await asyncio.to_thread(commands.get)) is not None:
            url, mode, batch, count, start_at = command
            if url not in stores:  # connected before the measurement starts
                stores[url] = Store.open(url)
                async with stores[url].read() as tx:
                    await tx.notifications.count_by_status()
            await asyncio.sleep(max(0.0, start_at - time.time()))
            store = stores[url]
            ids: list[str] = []
            transactions = 0
            busy = 0.0  # seconds in claim_due (or the SELECT), the hand-off left out
            while len(ids) < count:
                started = time.perf_counter()
                got = await (_claim if mode == "claim" else _select)(store, owner, batch)
                busy += time.perf_counter() - started
                transactions += 1
                if not got:
                    break
                ids.extend(got)
                if mode == "claim":
                    await _hand_off(store, got)
            results.put((ids, busy, transactions))
    finally:
        for store in stores.values():
            await store.close()


class Claimers:
    """Two claimer processes, started once (spawning one costs seconds of imports)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        self.queues = [context.Queue(), context.Queue()]
        self.workers = [
            context.Process(target=claim_worker, args=(q, self.results), daemon=True)
            for q in self.queues
        ]
        for worker in self.workers:
            worker.start()

    async def run(
        self, url: str, mode: str, batch: int, claimers: int, count: int
    ) -> tuple[float, float]:
        """``(transactions/s, notifications/s)`` of ``claimers`` running ``mode`` at once."""
        for q in self.queues[:claimers]:  # connect first
            q.put((url, mode, batch, 0, 0.0))
        for _ in range(claimers):
            await asyncio.to_thread(self.results.get, True, 120)
        start_at = time.time() + 0.05
        for q in self.queues[:claimers]:
            q.put((url, mode, batch, count // claimers, start_at))
        parts = [await asyncio.to_thread(self.results.get, True, 600) for _ in range(claimers)]
        ids = [i for got, _, _ in parts for i in got]
        if mode == "claim" and len(set(ids)) != len(ids):
            raise RuntimeError(f"{len(ids) - len(set(ids))} notifications claimed twice")
        # Claimers run at the same time: their rates add up.
        return (
            sum(transactions / busy for _, busy, transactions in parts),
            sum(len(got) / busy for got, busy, _ in parts),
        )

    async def close(self) -> None:
        for q in self.queues:
            q.put(None)
        for worker in self.workers:
            await asyncio.to_thread(worker.join, 30)


async def _claim(store: Store, owner: str, batch: int) -> list[str]:
    async with store.transaction() as tx:
        claimed = await tx.notifications.claim_due(owner, datetime.now(UTC), batch, 600)
    return [n.id for n in claimed]


async def _hand_off(store: Store, ids: list[str]) -> None:
    """Take claimed notifications out of the due set, as the scheduler's dial does at once.

    Left leased and scheduled, they would pile up at the head of the due index, and each later
    claim would step over all of them: a cost the scheduler never has.
    """
    async with store.transaction() as tx:
        await tx.session.execute(
            update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.id.in_(ids))
            .values(status=NotificationStatus.IN_PROGRESS.value, lease_owner=None,
                    lease_expires_at=None)
        )  # fmt: skip


async def _select(store: Store, _owner: str, batch: int) -> list[str]:
    """The claim's due-rows query, read as it is: no lock, no lease, same rows each time."""
    now = datetime.now(UTC)
    statement = (
        select(NOTIFICATIONS)
        .where(
            NOTIFICATIONS.c.status == NotificationStatus.SCHEDULED.value,
            NOTIFICATIONS.c.next_attempt_at <= now,
            (NOTIFICATIONS.c.lease_expires_at.is_(None)) | (NOTIFICATIONS.c.lease_expires_at < now),
        )
        .order_by(NOTIFICATIONS.c.next_attempt_at)
        .limit(batch)
    )
    async with store.read() as tx:
        rows = (await tx.session.execute(statement)).mappings()
        return [NotificationRecord.of(row).id for row in rows]


async def make_due_again(url: str) -> None:
    """Put the claimed notifications back, so that each run starts on the same N due rows."""
    store = Store.open(url)
    try:
        async with store.transaction() as tx:
            await tx.session.execute(
                update(NOTIFICATIONS)
                .where(NOTIFICATIONS.c.status == NotificationStatus.IN_PROGRESS.value)
                .values(status=NotificationStatus.SCHEDULED.value)
            )
    finally:
        await store.close()
    await vacuum(url)


async def measure_claims(
    due_rows: int, claims: int, batches: tuple[int, ...], dbs: Databases, postgres: bool
) -> list[list[object]]:
    """A row per backend, claimers (1, 2) and batch size: claims and SELECTs per second."""
    rows: list[list[object]] = []
    claimers = Claimers()
    try:
        for backend in ("sqlite", "postgresql"):
            if backend == "postgresql" and not postgres:
                rows.append([backend, dbs.postgres_problem or "skipped", "", "", "", "", "", ""])
                continue
            url = dbs.sqlite("claims") if backend == "sqlite" else await dbs.postgres("claims")
            now = datetime.now(UTC)
            # Due a millisecond apart, oldest first, so the ORDER BY has work to do.
            due = (
                {**bare_row({"to": number(n), "name": "P", "clinic": "C",
                             "when": "2031-01-01T10:00", "idempotency_key": f"c{n}"}, now),
                 "next_attempt_at": now - timedelta(milliseconds=due_rows - n)}
                for n in range(due_rows)
            )  # fmt: skip
            await bare_insert(url, due, 1000)
            for batch in batches:
                for k in (1, 2):
                    select_tx, select_rows = await claimers.run(url, "select", batch, k, claims)
                    claim_tx, claim_rows = await claimers.run(url, "claim", batch, k, claims)
                    await make_due_again(url)
                    rows.append([backend, k, batch, claim_tx, claim_rows, select_tx, select_rows,
                                 f"{select_rows / claim_rows:.1f}x"])  # fmt: skip
    finally:
        await claimers.close()
    return rows
