"""Part 3 of bench/outbound.py: notifications carried to their end through simulated calls.

The real server app (``create_app`` with the simulator provider: its scheduler dials through
the simulator's REST API mounted at /simulator, over HTTP) runs in this process on SQLite or
PostgreSQL. N notifications are created at once through NotificationService; every person
presses 1 at the first question (confirm). Measured from the database: each notification's
``created_at`` to its ``finished_at``, and N over the first creation to the last finish.

Baseline: a second simulator places the same number of calls, the same number at once,
against a bare aiohttp app that answers the same webhooks (voice, gather, four status
callbacks) with fixed TwiML of the same shape and the same prompt WAV files, time measured
from the start of the run as well. The difference is what the server does per call: REST
call creation, claims, policy, the engine, one transaction per webhook, prompt lookups.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select

from ivr.config import Settings
from ivr.outbound.requests import NotificationRequest
from ivr.outbound.service import NotificationService
from ivr.simulation.scenario import Turn
from ivr.store import FINAL_NOTIFICATION_STATUSES
from ivr.store.models import NOTIFICATIONS
from ivr.telephony.simulator import Persona, Simulator
from ivr.web.app import OUTBOUND, SIMULATOR, AppParts, create_app

ROOT = Path(__file__).resolve().parent.parent
VARIABLES = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2031-01-01T10:00"}
# The events the server asks the provider for (ivr.telephony.twilio.rest.CALL_EVENTS).
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")


class Databases(Protocol):
    workdir: Path
    postgres_problem: str | None

    def sqlite(self, name: str) -> str: ...

    async def postgres(self, name: str) -> str: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def phone(n: int) -> str:
    return f"+1202300{n:04d}"


def keypress() -> Persona:
    return Persona.person(Turn(press="1"))


async def measure_calls(
    calls: int, concurrent: int, dbs: Databases, postgres: bool
) -> list[list[object]]:
    audio = dbs.workdir / "calls-audio"  # shared: the second backend finds its prompts cached
    measured: list[tuple[str, dict[str, Any]]] = []
    prompts: list[Path] = []
    for backend in ("sqlite", "postgresql"):
        if backend == "postgresql" and not postgres:
            measured.append((backend, {"skipped": dbs.postgres_problem or "skipped"}))
            continue
        url = dbs.sqlite("calls") if backend == "sqlite" else await dbs.postgres("calls")
        result, prompts = await server_campaign(url, calls, concurrent, audio, dbs.workdir)
        measured.append((backend, result))
    bare = await bare_campaign(calls, concurrent, prompts)
    rows: list[list[object]] = [["-", "baseline: bare TwiML app", *_cells(bare, bare)]]
    for backend, result in measured:
        if "skipped" in result:
            rows.append([backend, result["skipped"], "", "", "", "", ""])
        else:
            rows.append([backend, "ivr server + scheduler", *_cells(result, bare)])
    return rows


def _cells(result: dict[str, Any], bare: dict[str, Any]) -> list[object]:
    latencies = result["latencies"]
    return [
        result["calls/s"],
        percentile(latencies, 50),
        percentile(latencies, 99),
        result["webhooks/call"],
        f"{bare['calls/s'] / result['calls/s']:.1f}x",
    ]


async def server_campaign(
    url: str, calls: int, concurrent: int, audio: Path, workdir: Path
) -> tuple[dict[str, Any], list[Path]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="simulator", public_url=base, database_url=url,
        dialplans=ROOT / "dialplans", audio_dir=audio, var_dir=workdir / "var",
        # Always inside calling hours; dialing paced only by the concurrency limit.
        call_window="00:00-24:00", optional_call_window="00:00-24:00", default_timezone="UTC",
        scheduler_interval=0.05, calls_per_second=1000, max_concurrent_calls=concurrent,
    )  # fmt: skip
    # No recognizer: nobody speaks, and loading speech models is not what is measured.
    app = create_app(settings, base, AppParts(recognizer=None))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        simulator = app[SIMULATOR]
        service = app[OUTBOUND].notifications
        for n in range(calls + 1):
            simulator.assign(phone(n), keypress())
        # One call first so that its prompts are synthesized and cached before measuring (all
        # notifications share the variables, so every call then plays cached prompts).
        await campaign(service, [phone(0)], "warm-up")
        prompts = _played_files(simulator, audio)
        simulator.client.exchanges.clear()
        result = await campaign(service, [phone(n) for n in range(1, calls + 1)], "run")
        result["webhooks/call"] = len(simulator.webhooks) / calls
        return result, prompts
    finally:
        await runner.cleanup()


async def campaign(service: NotificationService, numbers: list[str], run: str) -> dict[str, Any]:
    keys = [f"{run}-{n}" for n in range(len(numbers))]
    requests = [
        NotificationRequest(to=to, plan="appointment_reminder", variables=VARIABLES,
                            idempotency_key=key)
        for to, key in zip(numbers, keys, strict=True)
    ]  # fmt: skip
    outcomes = await service.create_many(requests)
    if outcomes != [True] * len(requests):
        raise RuntimeError(f"creating the notifications failed: {outcomes[:3]}")
    statement = select(
        NOTIFICATIONS.c.status, NOTIFICATIONS.c.outcome, NOTIFICATIONS.c.created_at,
        NOTIFICATIONS.c.finished_at,
    ).where(NOTIFICATIONS.c.idempotency_key.in_(keys))  # fmt: skip
    final = {s.value for s in FINAL_NOTIFICATION_STATUSES}
    deadline = time.monotonic() + 60 + len(numbers)
    while True:
        async with service.store.read() as tx:
            rows = (await tx.session.execute(statement)).all()
        if all(row.status in final for row in rows):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{run}: {Counter(r.status for r in rows)} after the deadline")
        await asyncio.sleep(0.1)
    outcomes_seen = Counter(row.outcome for row in rows)
    if outcomes_seen != {"confirmed": len(numbers)}:
        raise RuntimeError(f"{run}: expected every call confirmed, got {dict(outcomes_seen)}")
    first = min(row.created_at for row in rows)
    last = max(row.finished_at for row in rows)
    return {
        "calls/s": len(rows) / (last - first).total_seconds(),
        "latencies": [(row.finished_at - row.created_at).total_seconds() for row in rows],
    }


def _played_files(simulator: Simulator, audio: Path) -> list[Path]:
    """The prompt files the warm-up call played, in order (served again by the baseline)."""
    files = []
    for exchange in simulator.webhooks:
        if exchange.purpose == "play":
            path = audio / urlsplit(exchange.url).path.removeprefix("/audio/")
            if not path.is_file():
                raise RuntimeError(f"played {exchange.url}, but {path} is not a file")
            files.append(path)
    return files


def _bare_app(prompts: list[Path]) -> web.Application:
    """The reminder's webhooks with fixed TwiML: a greeting and a question in a one-key
    Gather, then a goodbye and a hang-up; status callbacks answered 204."""

    def play(i: int) -> str:
        return f"<Play>/prompt/{min(i, len(prompts) - 1)}.wav</Play>"

    head = '<?xml version="1.0" encoding="UTF-8"?><Response>'
    voice = (
        f'{head}<Gather input="dtmf" action="/gather" method="POST" numDigits="1" '
        f'finishOnKey="" timeout="5">{play(0)}{play(1)}</Gather>'
        '<Redirect method="POST">/voice</Redirect></Response>'
    )
    goodbye = f"{head}{play(len(prompts) - 1)}<Hangup /></Response>"

    async def twiml(request: web.Request) -> web.Response:
        await request.post()
        body = voice if request.path == "/voice" else goodbye
        return web.Response(text=body, content_type="application/xml")

    async def status(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(status=204)

    async def prompt(request: web.Request) -> web.FileResponse:
        return web.FileResponse(prompts[int(request.match_info["n"])])

    app = web.Application()
    app.router.add_post("/voice", twiml)
    app.router.add_post("/gather", twiml)
    app.router.add_post("/status", status)
    app.router.add_get("/prompt/{n}.wav", prompt)
    return app


async def bare_campaign(calls: int, concurrent: int, prompts: list[Path]) -> dict[str, Any]:
    if not prompts:
        raise RuntimeError("no prompt files: the server campaign must run first")
    runner = web.AppRunner(_bare_app(prompts), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    simulator = Simulator("AC" + "c" * 32, secrets.token_hex(16))
    api_base = await simulator.start()
    limit = asyncio.Semaphore(concurrent)
    try:
        started = time.perf_counter()

        async def one(n: int) -> float:
            async with limit:
                simulator.assign(phone(n), keypress())
                call = simulator.place_call(
                    to=phone(n), from_="+12025550100", url=f"{base}/voice", api_base=api_base,
                    status_callback=f"{base}/status", status_callback_events=STATUS_EVENTS,
                    machine_detection="DetectMessageEnd",
                )  # fmt: skip
                await simulator.wait_for_call(call.sid, timeout=120)
                if call.status != "completed" or call.errors:
                    raise RuntimeError(f"bare call ended {call.status}: {call.errors[:1]}")
                return time.perf_counter() - started

        latencies = await asyncio.gather(*(one(n) for n in range(calls)))
        elapsed = time.perf_counter() - started
        return {
            "calls/s": calls / elapsed,
            "latencies": list(latencies),
            "webhooks/call": len(simulator.webhooks) / calls,
        }
    finally:
        await simulator.close()
        await runner.cleanup()
