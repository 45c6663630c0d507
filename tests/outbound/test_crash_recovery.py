"""SIGKILL in the middle of a campaign, a restart, and still: every notification ends once.

A real ``ivr serve`` on SQLite dials 200 notifications through the simulator (people who
confirm by key, nobody home, answering machines). While calls are live it is killed with
SIGKILL, then started again on the same database and port. Whatever was in flight, each
notification must end exactly once (one result webhook row, one fallback SMS at most), no
attempt may be dialed twice, and the attempts that were live at the kill must be settled by
asking the provider (``GET Calls/{sid}.json``), not by dialing again.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ivr.simulation.scenario import Turn
from ivr.store import Store
from ivr.telephony.simulator import Persona, SimulatorSettings
from tests.outbound.serve_support import (
    Cluster,
    ServeProcess,
    Snapshot,
    call_ref,
    open_cluster,
    phone_numbers,
    snapshot,
)

COUNT = 200
MAX_ATTEMPTS = 2
ANNA = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"}
PERSONAS = {
    "confirms": Persona.person(Turn(press="1")),
    "no_answer": Persona.nobody("no-answer"),
    "machine": Persona.machine(),
}
# What each kind of person ends as; a call cut by the crash may end "incomplete" instead.
OUTCOMES = {"confirms": "confirmed", "no_answer": "unreached", "machine": "voicemail"}
SERVER_SETTINGS = {
    "IVR_LEASE": "3s",
    "IVR_RING_TIMEOUT": "6s",
    "IVR_UNCONFIRMED_CALL_GRACE": "8s",
    "IVR_SCHEDULER_INTERVAL": "0.1",
    "IVR_MAX_CONCURRENT_CALLS": "60",
    "IVR_CALLS_PER_SECOND": "40",
}


def kind_of(index: int) -> str:
    return ("confirms", "confirms", "confirms", "no_answer", "machine")[index % 5]


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_sigkill_mid_campaign_then_restart_ends_each_notification_once(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    # pace 0.1: a call lasts one to two seconds, so dozens are live when the server dies.
    async with open_cluster(tmp_path, SimulatorSettings(pace=0.1)) as cluster:
        sim = cluster.simulator
        kinds: dict[str, str] = {}
        requests = []
        for index, number in enumerate(phone_numbers(COUNT)):
            kinds[number] = kind_of(index)
            sim.assign(number, PERSONAS[kinds[number]])
            requests.append(
                {
                    "to": number,
                    "plan": "appointment_reminder",
                    "variables": ANNA,
                    "attempts": {"max": MAX_ATTEMPTS, "retry_after": "1s"},
                    "callback_url": cluster.callback_url,
                    "idempotency_key": f"crash-{index}",
                }
            )
        database_url = f"sqlite:///{tmp_path / 'ivr.db'}"
        first = cluster.start_server("first", database_url, **SERVER_SETTINGS)
        await first.wait_ready(cluster.http)
        ids = await cluster.notify(first, requests)

        async def mid_campaign() -> bool:
            ended = sum(1 for call in sim.calls.values() if call.final)
            return ended >= 40 and len(sim.calls) - ended >= 10

        await cluster.until(mid_campaign, 60, "a campaign with calls ended and calls live")
        first.kill()
        live_at_kill = {sid for sid, call in sim.calls.items() if not call.final}
        calls_at_kill = len(sim.calls)

        store = Store.open(database_url)
        try:
            before = await snapshot(store)
            # Until here only the killed server can have sent anything: a request it sent just
            # before the kill is handled by this loop after kill() (which blocks it) returns.
            restart_began = time.monotonic()
            restarted = cluster.start_server(
                "restarted", database_url, port=first.port, **SERVER_SETTINGS
            )
            await restarted.wait_ready(cluster.http)
            restarted_at = time.monotonic()

            async def all_final() -> bool:
                return (await snapshot(store)).statuses() == {"done": COUNT}

            await cluster.until(all_final, 90, f"all {COUNT} notifications final")
            final_at = time.monotonic()

            async def all_reported() -> bool:
                delivered = [
                    w for w in (await snapshot(store)).webhooks if w["status"] == "delivered"
                ]
                return len(delivered) == COUNT

            await cluster.until(all_reported, 60, f"{COUNT} result webhooks delivered")
            after = await snapshot(store)
        finally:
            await store.close()
        await sim.wait_idle(30)
        report = check_campaign(cluster, before, after, ids, kinds, live_at_kill, restart_began)
        report.update(
            calls_at_kill=calls_at_kill,
            live_at_kill=len(live_at_kill),
            final_seconds=round(final_at - restarted_at, 1),
            reported_seconds=round(time.monotonic() - restarted_at, 1),
            total_seconds=round(time.monotonic() - started, 1),
        )
        check_reconciled(cluster, restarted, live_at_kill, report)
        print("crash recovery:", report)


def check_campaign(
    cluster: Cluster,
    before: Snapshot,
    after: Snapshot,
    ids: list[str],
    kinds: dict[str, str],
    live_at_kill: set[str],
    restart_began: float,
) -> dict[str, Any]:
    sim = cluster.simulator
    logs = cluster.logs()
    # The kill really came in the middle: some notifications over, some calls under way.
    final_before = sum(1 for n in before.notifications if n["status"] == "done")
    in_progress_before = sum(1 for n in before.notifications if n["status"] == "in_progress")
    assert 0 < final_before < COUNT, (final_before, logs)
    assert in_progress_before > 0, logs
    assert live_at_kill, logs

    by_id = {n["id"]: n for n in after.notifications}
    assert sorted(by_id) == sorted(ids)
    # Ends exactly once: one result webhook row per notification, written with the end.
    assert Counter(w["notification_id"] for w in after.webhooks) == Counter(ids)

    # No attempt dialed twice: each call reference (one per attempt) reached the simulator
    # at most once, and nobody got more calls than the notification has attempts.
    placed = Counter(call_ref(call.url) for call in sim.calls.values())
    twice = {ref: count for ref, count in placed.items() if count > 1}
    assert not twice, f"attempts dialed more than once: {twice}\n{logs}"
    calls_by_ref = {c["id"]: c for c in after.calls}
    assert set(placed) <= set(calls_by_ref), "the simulator saw calls the database does not know"
    per_number = Counter(call.to for call in sim.calls.values())
    for n in after.notifications:
        # Attempt k of a notification is its k-th call row (the row and the count are one
        # commit), so one POST per row is one call per (notification, attempt).
        assert len(after.calls_of(n["id"])) == n["attempts"], n
        dialed = sum(1 for c in after.calls_of(n["id"]) if c["id"] in placed)
        assert per_number[n["to_number"]] == dialed <= n["attempts"] <= MAX_ATTEMPTS, (n, logs)
        # Every attempt ended (none left in flight) and each sid is the simulator's one call.
        for call in after.calls_of(n["id"]):
            assert call["status"] in {"completed", "no-answer", "busy", "failed", "canceled"}
            if call["provider_sid"] is not None:
                assert sim.calls[call["provider_sid"]].to == n["to_number"]

    # The fallback SMS: recorded once with the end of exactly the notifications that say
    # "sms", and sent at most once. Only a send the kill interrupted (handed over, no sid
    # heard back) may be missing: sending it again could text the person twice.
    texts = Counter(m.to for m in sim.messages.values() if m.direction == "outbound-api")
    assert max(texts.values(), default=0) <= 1, texts
    outbound = [m for m in after.sms if m["direction"] == "outbound"]
    recorded = Counter(m["notification_id"] for m in outbound)
    no_sid = {m["notification_id"] for m in outbound if m["provider_sid"] is None}
    for n in after.notifications:
        wants_sms = "sms" in n["channels_used"]
        assert recorded[n["id"]] == int(wants_sms), n
        if n["id"] not in no_sid:
            assert texts[n["to_number"]] == int(wants_sms), (n, logs)
    assert all(m["status"] != "scheduled" for m in outbound), "an SMS was never handed over"

    # Outcomes as each person behaves; a call the crash cut off may be "incomplete".
    outcomes = Counter((kinds[n["to_number"]], n["outcome"]) for n in after.notifications)
    for (kind, outcome), count in outcomes.items():
        assert outcome in {OUTCOMES[kind], "incomplete"}, outcomes
        if outcome == "incomplete":
            assert count <= len(live_at_kill), outcomes
    for n in after.notifications:
        if kinds[n["to_number"]] == "no_answer":
            assert n["attempts"] == MAX_ATTEMPTS, n
            assert "sms" in n["channels_used"], n

    # Result webhooks: every notification reported, as final. A delivery the kill interrupted
    # may come twice (at least once, by design); any other notification comes once.
    got = Counter(r.body["id"] for r in cluster.received)
    assert set(got) == set(ids)
    assert all(r.body["status"] == "done" for r in cluster.received)
    first_seen: dict[str, float] = {}
    for r in cluster.received:
        first_seen.setdefault(r.body["id"], r.at)
    repeated = {i for i, count in got.items() if count > 1}
    assert all(first_seen[i] < restart_began for i in repeated), repeated
    unconfirmed = [c["id"] for c in after.calls if c["provider_sid"] is None]
    return {
        "unconfirmed": len(unconfirmed),
        "unconfirmed_but_dialed": sum(1 for ref in unconfirmed if ref in placed),
        "notifications": COUNT,
        "final_at_kill": final_before,
        "in_progress_at_kill": in_progress_before,
        "calls_placed": len(sim.calls),
        "attempts": sum(n["attempts"] for n in after.notifications),
        "sms": sum(texts.values()),
        "sms_without_sid": len(no_sid),
        "webhooks_repeated": len(repeated),
        "outcomes": dict(Counter(n["outcome"] for n in after.notifications)),
    }


def check_reconciled(
    cluster: Cluster, restarted: ServeProcess, live_at_kill: set[str], report: dict[str, Any]
) -> None:
    """Attempts live at the kill were settled by looking them up, never by a new call."""
    looked_up = {
        request.path.rsplit("/", 1)[-1].removesuffix(".json")
        for request in cluster.simulator.api_requests
        if request.method == "GET" and "/Calls/" in request.path
    }
    assert looked_up & live_at_kill, (
        f"no call live at the kill was looked up after the restart\n{cluster.logs()}"
    )
    reconciled = restarted.log_lines("reconciled")
    assert reconciled, cluster.logs()
    report.update(looked_up=len(looked_up), reconciled=len(reconciled))
