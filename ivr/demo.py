"""``ivr demo``: a small reminder campaign, end to end, on this machine alone.

The real server starts (SQLite, its scheduler, offline TTS and recognition) with the
simulator standing in for the telephone network, and six people get an appointment reminder:
one confirms by voice, one cancels by key, one never answers (retries, then an SMS), one has an
answering machine (a voicemail, then an SMS), one says "stop calling" (opted out: a marketing
call to them afterwards is skipped), and one lives where it is night (the call waits for
morning there). Live progress, then the outcomes, the SMS log and one call's transcript.

By default the server hears callers over Twilio Media Streams (``--media stream``): the
simulator opens the WebSocket the server's ``<Connect><Stream>`` names and speaks into it in
real time, prompts arrive as audio frames, and Ann answers while her reminder still plays
(barge-in: the server sends ``clear``). ``--media record`` runs the same calls with
``<Gather>``/``<Record>``, the way for providers without streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ivr.calls.live_prompts import LIVE_HEARD, LIVE_PROMPTS
from ivr.config import Settings
from ivr.outbound.requests import NotificationRequest
from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import Persona, SimulatorSettings
from ivr.web.app import OUTBOUND, SIMULATOR, AppParts, create_app
from ivr.web.keys import SERVICES

Media = Literal["stream", "record"]

# Cities to pick the recipients' time zones from: one where it is day, one where it is night.
CITIES = (
    "Pacific/Honolulu", "America/Los_Angeles", "America/Chicago", "America/New_York",
    "America/Sao_Paulo", "Europe/London", "Europe/Berlin", "Europe/Moscow", "Asia/Dubai",
    "Asia/Kolkata", "Asia/Bangkok", "Asia/Shanghai", "Asia/Seoul", "Australia/Sydney",
    "Pacific/Auckland",
)  # fmt: skip
# The appointment is tomorrow at this time in each person's zone, so the reminder is never
# for a day that has passed, whenever the demo runs.
APPOINTMENT_HOUR = 10
CLINIC = "Sunrise Clinic"


@dataclass(frozen=True)
class Person:
    name: str
    number: str
    persona: Persona
    what: str
    night: bool = False
    attempts: dict[str, Any] | None = None


# Over a stream Ann says "confirm" this far into her call, while the robot still asks her
# (its greeting with the date takes about 7.5 s): the server hears her, cuts the prompt.
# ``<Record>`` only listens after the prompt, so there she answers once it has played.
ANN_BARGES_IN_MS = 9000

PEOPLE = (
    Person("Ann", "+12025550101",
           Persona.person(Turn(say="confirm", barge_in_ms=ANN_BARGES_IN_MS)),
           "confirms by voice"),
    Person("Ben", "+12025550102", Persona.person(Turn(press="2")), "cancels by key"),
    Person("Cat", "+12025550103", Persona(answer="no-answer"), "never answers",
           attempts={"max": 3, "retry_after": "2s"}),
    Person("Dan", "+12025550104", Persona.machine(), "answering machine"),
    Person("Eve", "+12025550105", Persona.person(Turn(say="stop calling")), 'says "stop calling"'),
    Person("Fay", "+12025550106", Persona.person(Turn(press="1")), "it is night where she lives",
           night=True),
)  # fmt: skip


def city_where_local_hour_is(hour: int) -> str:
    now = datetime.now(UTC)

    def distance(city: str) -> float:
        local = now.astimezone(ZoneInfo(city))
        return abs(((local.hour + local.minute / 60 - hour) + 12) % 24 - 12)

    return min(CITIES, key=distance)


def appointment(zone: str, now: datetime) -> str:
    """Tomorrow at ``APPOINTMENT_HOUR`` on the wall clock of ``zone``, as a plan variable.

    Without an offset: the plan reads a naive time as the recipient's local time, and the
    reminder says the time their clock will show.
    """
    tomorrow = now.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
    return f"{tomorrow.isoformat()}T{APPOINTMENT_HOUR:02d}:00"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def progress(
    rows: list[tuple[Person, dict[str, Any] | None]], marketing: dict[str, Any] | None
) -> Table:
    table = Table(title="Appointment reminders (live)")
    for column in ("person", "what happens", "status", "calls", "outcome", "note"):
        table.add_column(column)
    for person, doc in [*rows, (PEOPLE[4], marketing)]:
        if doc is None:
            table.add_row(person.name, person.what, "-", "-", "-", "")
            continue
        note = doc["skipped_reason"] or ""
        if doc["status"] == "scheduled" and doc["next_attempt_at"]:
            note = f"next call at {doc['next_attempt_at'][11:16]} UTC"
        label = "marketing notice" if doc is marketing else person.what
        table.add_row(person.name, label, doc["status"], str(doc["attempts"]),
                      doc["outcome"] or "-", note)  # fmt: skip
    return table


CAMPAIGN = "Appointment reminders (demo)"
# Streamed calls take the time their prompts take to say; the slowest (Cat's three attempts)
# ends within a minute on a loaded machine.
DEMO_SECONDS = 120
MEDIA_TEXT = {
    "stream": "callers heard live over Media Streams",
    "record": "callers heard with <Gather>/<Record>",
}


async def run_demo(
    console: Console,
    workdir: Path,
    root: Path,
    serve_console: bool = False,
    port: int | None = None,
    media: Media = "stream",
) -> bool:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    # With the console, the server stays up afterwards; its API token signs in.
    token = secrets.token_urlsafe(12) if serve_console else None
    day, night = city_where_local_hour_is(13), city_where_local_hour_is(3)
    settings = Settings(
        provider="simulator", public_url=url, database_url=f"sqlite:///{workdir}/demo.db",
        dialplans=root / "dialplans", audio_dir=root / "audio", var_dir=workdir / "var",
        scheduler_interval=0.1, calls_per_second=20, api_token=token, twilio_media=media,
    )  # fmt: skip
    app = create_app(settings, url, AppParts())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        simulator = app[SIMULATOR]
        # Streams play in real time: the server paces its prompts by the wall clock.
        simulator.settings = SimulatorSettings(pace=0.05, stream_time_scale=1.0)
        service = app[OUTBOUND].notifications
        how = MEDIA_TEXT[media]
        console.print(f"Server on {url} (simulated network, {how}). Day: {day}; night: {night}.")
        now = datetime.now(UTC)
        console.print(
            f"Appointments tomorrow, local time: {appointment(day, now)} in {day}, "
            f"{appointment(night, now)} in {night}."
        )
        rows = []
        for person in PEOPLE:
            simulator.assign(person.number, person.persona)
            zone = night if person.night else day
            variables = {"name": person.name, "clinic": CLINIC, "when": appointment(zone, now)}
            rows.append({
                "to": person.number, "timezone": zone, "idempotency_key": f"demo-{person.name}",
                "variables": variables,
                **({"attempts": person.attempts} if person.attempts else {}),
            })  # fmt: skip
        # One campaign: the console shows it move, and it can be paused or exported there.
        created, errors = await app[OUTBOUND].campaigns.create(
            CAMPAIGN, "appointment_reminder", rows
        )
        if created is None:
            raise RuntimeError(f"the demo campaign was refused: {errors}")
        ids = []
        async with app[SERVICES].store.read() as tx:
            for person in PEOPLE:
                record = await tx.notifications.get_by_idempotency_key(f"demo-{person.name}")
                assert record is not None
                ids.append(record.id)
        marketing_id: str | None = None
        started = time.monotonic()
        with Live(console=console, refresh_per_second=8) as live:
            while time.monotonic() - started < DEMO_SECONDS:
                docs = [await service.get(i) for i in ids]
                marketing = await service.get(marketing_id) if marketing_id else None
                live.update(progress(list(zip(PEOPLE, docs, strict=True)), marketing))
                eve = docs[4]
                if marketing_id is None and eve is not None and eve["status"] == "done":
                    request = NotificationRequest(
                        to=PEOPLE[4].number, plan="appointment_reminder", category="marketing",
                        variables={"name": "Eve", "clinic": CLINIC,
                                   "when": appointment(day, now)}, timezone=day,
                    )  # fmt: skip
                    marketing_id = (await service.create(request))[0]["id"]
                settled = all(d and d["status"] != "in_progress" for d in docs[:5]) and all(
                    d and d["status"] in ("done", "skipped") for d in docs[:5]
                )
                if settled and marketing is not None and marketing["status"] == "skipped":
                    break
                await asyncio.sleep(0.25)
        console.line()  # off a terminal, Live leaves its last frame without a line break
        await app[SIMULATOR].wait_idle(timeout=10)
        ok = await report(console, app, ids, marketing_id)
        if serve_console:
            await keep_serving(console, url, token or "")
        return ok
    finally:
        await runner.cleanup()


async def keep_serving(console: Console, url: str, token: str) -> None:
    """Until Ctrl-C: the console shows the demo's campaign, notifications and transcripts."""
    console.print(
        f"\n[bold]Console:[/bold] {url}/console/  — sign in with the API token "
        f"[bold]{token}[/bold] (leave the user name empty). Fay's call waits for her morning; "
        "the campaign can be paused there. Ctrl-C stops the server.",
        soft_wrap=True,
        highlight=False,
    )
    await until_stopped()
    console.print("stopped")


async def until_stopped() -> None:
    """Wait for Ctrl-C or SIGTERM. Handlers are installed explicitly: a process started in
    the background by a shell inherits SIGINT ignored, and Python then never turns Ctrl-C into
    KeyboardInterrupt, so the server would outlive the ``kill -INT`` meant to stop it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await stop.wait()
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


async def report(
    console: Console, app: web.Application, ids: list[str], marketing: str | None
) -> bool:
    service = app[OUTBOUND].notifications
    docs = [await service.get(i) for i in ids]
    expected = ["confirmed", "cancelled", "unreached", "voicemail", "opted_out", None]
    outcomes = [d["outcome"] if d else None for d in docs]
    sms_log = Table(title="SMS log")
    for column in ("to", "message", "status"):
        sms_log.add_column(column)
    for person, doc in zip(PEOPLE, docs, strict=True):
        for sms in doc["sms"] if doc else []:
            sms_log.add_row(f"{person.name} {person.number}", sms["body"], sms["status"])
    console.print(sms_log)
    streamed = await streamed_calls(app, docs)
    if streamed:
        names = ", ".join(name for name, _ in streamed)
        console.print(
            f"Media Streams: {len(streamed)} answered calls went over the WebSocket "
            f"/twilio/stream ({names}), their prompts played as audio frames."
        )
    ann = docs[0]
    if ann and ann["calls"]:
        console.print("[bold]Ann's call[/bold] (her answer recognized offline):")
        for line in await call_lines(app, ann["calls"][0]["id"]):
            console.print(line, highlight=False, markup=False)
    skipped = await service.get(marketing) if marketing else None
    ok = outcomes == expected and skipped is not None and skipped["skipped_code"] == "opted_out"
    verdict = "[green]as expected[/green]" if ok else f"[red]unexpected: {outcomes}[/red]"
    marketing_status = skipped["status"] if skipped else "not created"
    reason = skipped["skipped_reason"] if skipped else ""
    console.print(f"Outcomes {verdict}; Eve's later marketing call: {marketing_status} ({reason})")
    return ok


async def streamed_calls(
    app: web.Application, docs: list[dict[str, Any] | None]
) -> list[tuple[str, str]]:
    """(person, call id) of the calls the server played over a Media Stream: the server's
    own record of it, the ``live_prompts`` its stream sessions play from."""
    found = []
    async with app[SERVICES].store.read() as tx:
        for person, doc in zip(PEOPLE, docs, strict=True):
            for call in doc["calls"] if doc else []:
                if any(e.kind == LIVE_PROMPTS for e in await tx.events.list(call["id"])):
                    found.append((person.name, call["id"]))
    return found


async def call_lines(app: web.Application, call_id: str) -> list[str]:
    """A call's transcript from its event log; over a stream, an answer that cut a prompt
    (barge-in) says so."""
    lines, cut_by = [], None
    async with app[SERVICES].store.read() as tx:
        events = await tx.events.list(call_id)
    for event in events:
        if event.kind == "Say":
            lines.append(f"  ROBOT   {event.data.get('text', '')}")
        elif event.kind == LIVE_HEARD:
            cut_by = event.data.get("barge_in")
        elif event.kind == "Understood":
            heard = event.data.get("heard") or event.data.get("digits") or ""
            line = (
                f"  CALLER  {heard!r} -> {event.data.get('intent')} "
                f"({event.data.get('confidence') or 0:.2f})"
            )
            if cut_by:
                line += f"  <- barge-in ({cut_by}): said while the robot spoke; it cut its prompt"
            lines.append(line)
            cut_by = None
    return lines


def main(
    root: Path, serve_console: bool = False, port: int | None = None, media: Media = "stream"
) -> bool:
    # Pipes and CI logs get wide tables rather than cells wrapped into unreadable columns.
    console = Console(width=None if sys.stdout.isatty() else 160)
    with tempfile.TemporaryDirectory(prefix="ivr-demo-") as workdir:
        try:
            return asyncio.run(run_demo(console, Path(workdir), root, serve_console, port, media))
        except KeyboardInterrupt:
            console.print("stopped")
            return True
