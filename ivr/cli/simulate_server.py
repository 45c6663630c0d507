"""``ivr simulate --server``: scripted calls through the real server, as a phone would make them.

The server (``create_app``: SQLite in a temporary folder, offline prompts and recognition, the
simulator as the telephone network) listens on a free local port; each scenario becomes a
call the simulator places or receives over real HTTP. With ``--media stream`` (the default)
the server answers with ``<Connect><Stream>`` and the simulator opens the Media Stream
WebSocket, speaking the caller's ``say:`` turns in the espeak-ng caller voice and ``audio:``
turns (FSDD digits) into it in real time; with ``--media record`` it hears them through
``<Gather>``/``<Record>``. What the call did is read back from the server's database and
checked against the scenario, as the in-process run checks it.

Streamed calls take the time their prompts take to say, so the scenarios run at the same
time, except those that script lookup answers: they share one stand-in lookup service
(answering in the scenario's order) and run one after another.
"""

from __future__ import annotations

import asyncio
import re
import socket
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from ivr.calls.live_prompts import LIVE_HEARD, LIVE_PROMPTS
from ivr.config import Settings
from ivr.dialplan.loader import PlanSet
from ivr.dialplan.schema import Plan
from ivr.simulation.runner import CallFacts, check_expectations
from ivr.simulation.scenario import Scenario
from ivr.telephony.simulator import CallRecord, Persona, SimulatorSettings
from ivr.web.app import SIMULATOR, AppParts, create_app
from ivr.web.call_report import call_facts
from ivr.web.keys import CALLS, SERVICES

Media = Literal["stream", "record"]
CALL_TIMEOUT = 300.0  # seconds: a long menu call in real time on a loaded machine
_LOOKUP_CODES = {"ok": 200, "not_found": 404, "error": 503}
# A lookup URL that starts with a plan variable (``{{ orders_api }}/orders/...``): that
# variable is pointed at the stand-in service for scenarios that script lookup answers.
_URL_BASE = re.compile(r"^\s*\{\{\s*(\w+)\s*\}\}")


@dataclass
class ServerCall:
    """One scenario run as a call through the server."""

    path: Path
    scenario: Scenario
    plan: Plan
    record: CallRecord | None = None  # the simulator's side: what the caller heard and did
    facts: CallFacts | None = None  # the server's side, from its database
    failures: list[str] = field(default_factory=list)
    streamed_turns: int = 0  # turns the server played over a Media Stream (its event log)
    barge_ins: list[str] = field(default_factory=list)  # "speech"/"key" that cut a prompt
    # What the server understood, in order: heard, intent, digits, confidence.
    heard: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def lookup_variables(plan: Plan) -> set[str]:
    """The plan variables its lookup URLs start with."""
    names = set()
    for state in plan.states.values():
        if state.lookup is not None and (match := _URL_BASE.match(state.lookup.url)):
            names.add(match[1])
    return names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScriptedLookups:
    """A stand-in for the services plans look things up in: answers in a scenario's order."""

    def __init__(self) -> None:
        self.answers: deque[tuple[int, dict[str, Any]]] = deque()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def _answer(self, _: web.Request) -> web.Response:
        status, body = self.answers.popleft() if self.answers else (503, {})
        return web.json_response(body, status=status)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def run_over_server(
    plans: PlanSet,
    runs: Sequence[tuple[Path, Scenario]],
    variables: dict[str, str],
    media: Media,
    audio_dirs: Sequence[Path],
    dialplans: Path,
) -> list[ServerCall]:
    """Every scenario as a call through a server started here; the calls in ``runs`` order."""
    calls = [ServerCall(path, s, plans.plans[s.plan]) for path, s in runs]
    lookups = ScriptedLookups()
    await lookups.start()
    plan_variables: dict[str, dict[str, str]] = {}
    for plan in {c.plan.id: c.plan for c in calls}.values():
        plan_variables[plan.id] = dict.fromkeys(lookup_variables(plan), lookups.url)
        plan_variables[plan.id].update(variables)
    with tempfile.TemporaryDirectory(prefix="ivr-simulate-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = Settings(
            provider="simulator", public_url=url, twilio_media=media,
            database_url=f"sqlite:///{workdir}/simulate.db", dialplans=dialplans,
            audio_dir=workdir / "audio", var_dir=workdir / "var", plan_variables=plan_variables,
        )  # fmt: skip
        folders = list(dict.fromkeys([*(c.path.parent for c in calls), *audio_dirs]))
        app = create_app(settings, url, AppParts(simulator_audio=folders, background=False))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            # Real time: the server paces a stream's prompts by the wall clock.
            app[SIMULATOR].settings = SimulatorSettings(stream_time_scale=1.0)
            scripted = [c for c in calls if c.scenario.lookups]
            free = [c for c in calls if not c.scenario.lookups]

            async def one_by_one() -> None:
                for call in scripted:
                    lookups.answers = deque(
                        (_LOOKUP_CODES[a.status], a.data) for a in call.scenario.lookups or []
                    )
                    await _place(app, url, call, calls.index(call))

            await asyncio.gather(one_by_one(), *(_place(app, url, c, calls.index(c)) for c in free))
        finally:
            await runner.cleanup()
            await lookups.close()
    return calls


async def _place(app: web.Application, url: str, call: ServerCall, index: int) -> None:
    scenario, plan = call.scenario, call.plan
    simulator, service = app[SIMULATOR], app[CALLS]
    persona = Persona.from_scenario(scenario, language=plan.language)
    # Each outbound scenario rings a number of its own: one that opts out must not change
    # how the server treats the next.
    number = scenario.caller or f"+1202555{1100 + index:04d}"
    if plan.direction == "outbound":
        simulator.expect(number, persona)
        placed = await service.place_call(number, plan.id, dict(scenario.variables))
        if placed.provider_sid is None:
            call.failures.append("the server could not place the call")
            return
        record = simulator.calls[placed.provider_sid]
    else:
        record = simulator.start_incoming_call(
            number, scenario.called or plan.numbers[0], persona, f"{url}/twilio/voice",
            status_callback=f"{url}/twilio/status",
        )  # fmt: skip
    try:
        await simulator.wait_for_call(record.sid, CALL_TIMEOUT)
    except TimeoutError:
        call.failures.append(f"the call did not end within {CALL_TIMEOUT:g} s")
    call.record = record
    await service.drain()
    call.failures += [f"on the line: {error}" for error in record.errors]
    async with app[SERVICES].store.read() as tx:
        stored = await tx.calls.get_by_sid(record.sid)
        if stored is None:
            call.failures.append("the server has no record of the call")
            return
        call.facts = await call_facts(tx, stored.id)
        events = await tx.events.list(stored.id)
    assert call.facts is not None
    call.streamed_turns = sum(e.kind == LIVE_PROMPTS for e in events)
    call.barge_ins = [str(e.data["barge_in"]) for e in events
                      if e.kind == LIVE_HEARD and e.data.get("barge_in")]  # fmt: skip
    call.heard = [
        {key: e.data.get(key) for key in ("heard", "intent", "digits", "confidence")}
        for e in events
        if e.kind == "Understood"
    ]
    call.failures += check_expectations(scenario.expect, call.facts)
    said = " ".join(call.facts.said.lower().split())
    call.failures += [
        f"expected the robot to say {text!r}"
        for turn in scenario.turns
        for text in turn.expect
        if " ".join(text.lower().split()) not in said
    ]


def describe(call: ServerCall, media: Media) -> list[str]:
    """The call as the caller lived it (the simulator's transcript), then the server's facts."""
    status = "passed" if call.passed else "FAILED"
    lines = [f"=== {call.plan.id}: {call.scenario.name} ({status}; over the server, {media}) ==="]
    for entry in call.record.transcript if call.record else []:
        lines.append(f"{entry.at:7.2f}s {entry.kind:13} {entry.text}")
    if call.facts is not None:
        how = (
            f"{call.streamed_turns} turns over a Media Stream"
            if call.streamed_turns
            else "no Media Stream"
        )
        barge = f", barge-in by {', '.join(call.barge_ins)}" if call.barge_ins else ""
        understood = ", ".join(
            f"{u['heard']!r} -> {u['digits'] or u['intent']}" for u in call.heard
        )
        lines.append(
            f"server: {how}{barge}; understood {understood or 'nothing'}; outcome "
            f"{call.facts.outcome}, end {call.facts.end}, states {' -> '.join(call.facts.states)}"
        )
    lines += [f"  FAIL  {failure}" for failure in call.failures]
    return lines


def to_json(call: ServerCall, media: Media) -> dict[str, Any]:
    facts = call.facts
    return {
        "plan": call.plan.id,
        "scenario": call.scenario.name,
        "passed": call.passed,
        "failures": call.failures,
        "media": media,
        "streamed_turns": call.streamed_turns,
        "barge_ins": call.barge_ins,
        "understood": call.heard,
        "outcome": facts.outcome if facts else None,
        "end": facts.end if facts else None,
        "states": facts.states if facts else [],
        "sms": facts.sms if facts else [],
        "transcript": [
            {"at": round(e.at, 3), "kind": e.kind, "text": e.text}
            for e in (call.record.transcript if call.record else [])
        ],
    }
