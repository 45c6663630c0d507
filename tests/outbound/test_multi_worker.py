"""Two ``ivr serve`` processes on one PostgreSQL database share a campaign of 300 calls.

Both start at once on a fresh database (one migrates, the other waits for it); ``ivr notify
import`` then writes the campaign and both schedulers claim from the same queue. Every person
must be called exactly once, every notification must end, and both workers must have
dialed: leases and ``SKIP LOCKED`` split the work, they do not serialize or duplicate it.
300 calls keep the run short on a loaded machine (``IVR_MULTI_WORKER_CALLS`` sets more).
Without a reachable PostgreSQL server the test fails (it is never skipped).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ivr.simulation.scenario import Turn
from ivr.store import Store
from ivr.telephony.simulator import Persona
from tests.outbound.serve_support import call_ref, open_cluster, phone_numbers, snapshot
from tests.store.postgres import PostgresServer

# IVR_MULTI_WORKER_CALLS=1000 runs the same check on a larger campaign.
COUNT = int(os.environ.get("IVR_MULTI_WORKER_CALLS", "300"))
ANNA = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"}
SERVER_SETTINGS = {
    # Short leases and ring timeout: reconciling runs every 5 s on both workers meanwhile.
    "IVR_LEASE": "5s",
    "IVR_RING_TIMEOUT": "5s",
    "IVR_SCHEDULER_INTERVAL": "0.1",
    "IVR_MAX_CONCURRENT_CALLS": "200",
    "IVR_CALLS_PER_SECOND": "200",
}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    server = PostgresServer()
    server.require_reachable()
    try:
        yield server.create_database().render_as_string(hide_password=False)
    finally:
        server.drop_all()


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_two_workers_call_each_person_exactly_once(tmp_path: Path, postgres_url: str) -> None:
    async with open_cluster(tmp_path) as cluster:
        sim = cluster.simulator
        numbers = phone_numbers(COUNT)
        confirms = Persona.person(Turn(press="1"))
        for number in numbers:
            sim.assign(number, confirms)
        workers = [
            cluster.start_server(name, postgres_url, **SERVER_SETTINGS)
            for name in ("worker-a", "worker-b")
        ]
        for worker in workers:
            await worker.wait_ready(cluster.http)
        started = time.monotonic()
        # One import for all: both schedulers find all of them due notifications at the same moment.
        rows = [{"to": number, **ANNA} for number in numbers]
        cluster.import_csv(postgres_url, "appointment_reminder", rows)
        created = time.monotonic()
        store = Store.open(postgres_url)
        try:

            async def all_final() -> bool:
                async with store.read() as tx:
                    counts = await tx.notifications.count_by_status()
                return counts.get("done", 0) == COUNT

            await cluster.until(all_final, 180, f"all {COUNT} notifications final")
            finished = time.monotonic()
            after = await snapshot(store)
        finally:
            await store.close()
        await sim.wait_idle(30)
        cpu = {w.name: round(w.cpu_seconds(), 1) for w in workers}
        logs = cluster.logs()

        assert len(after.notifications) == COUNT
        outcomes = Counter((n["status"], n["outcome"], n["attempts"]) for n in after.notifications)
        assert outcomes == {("done", "confirmed", 1): COUNT}, outcomes
        # Each person called exactly once, by one attempt the database knows.
        per_number = Counter(call.to for call in sim.calls.values())
        assert per_number == Counter(numbers), [n for n, c in per_number.items() if c != 1][:10]
        assert len(after.calls) == COUNT
        assert {call_ref(c.url) for c in sim.calls.values()} == {c["id"] for c in after.calls}
        assert all(c["status"] == "completed" for c in after.calls)
        # Both workers dialed: a call's answer URL names the server that placed it.
        by_worker = Counter(urlsplit(call.url).port for call in sim.calls.values())
        assert set(by_worker) == {w.port for w in workers}, by_worker
        for worker in workers:
            assert "Traceback" not in worker.log.read_text(), logs
        seconds = finished - started
        print(
            "multi worker:",
            {
                "calls": len(sim.calls),
                "per_worker": {w.name: by_worker[w.port] for w in workers},
                "import_seconds": round(created - started, 1),
                "cpu_seconds": cpu,
                "total_seconds": round(seconds, 1),
                "calls_per_second": round(COUNT / seconds, 1),
            },
        )
