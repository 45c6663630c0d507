"""Every shipped scenario, run through the real server by the simulator over real HTTP.

The simulator plays the callee (outbound plans) or the caller (inbound plans) from the same
scenario files ``ivr simulate`` uses; what the call did is then read back from the store.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer

from ivr.calls.recognition import OfflineRecognizer
from ivr.calls.service import CallService
from ivr.config import Settings
from ivr.dialplan.loader import load_plans_or_raise
from ivr.simulation.runner import CallFacts, check_expectations
from ivr.simulation.scenario import Scenario, load_scenario, scenario_files
from ivr.telephony.simulator import Persona, Simulator
from ivr.web.app import SIMULATOR, AppParts, create_app
from ivr.web.call_report import call_facts
from ivr.web.keys import CALLS
from tests.conftest import DIALPLANS, FSDD, SCENARIOS
from tests.simulation.recognition_gaps import RECOGNITION_GAPS, gap_marks

PLANS = load_plans_or_raise([DIALPLANS])
RECOGNIZER = OfflineRecognizer()


def _speaks(path: Path) -> bool:
    return any(t.say is not None or t.audio is not None for t in load_scenario(path).turns)


def _language(path: Path) -> str:
    return PLANS.plans[load_scenario(path).plan].language


# A language without a recognizer here (Russian: no Vosk model can be installed on this
# machine) is served keypad-only; its speech scenarios cannot run over HTTP.
UNRECOGNIZED = [
    p for p in scenario_files(SCENARIOS) if _speaks(p) and not RECOGNIZER.supports(_language(p))
]
OVER_HTTP = [
    pytest.param(p, marks=gap_marks(p.stem))
    for p in scenario_files(SCENARIOS)
    if p not in UNRECOGNIZED and not load_scenario(p).text_only
]  # fmt: skip


@dataclass
class Running:
    url: str
    server: TestServer
    lookups: deque[tuple[int, dict[str, object]]]

    @property
    def calls(self) -> CallService:
        return self.server.app[CALLS]

    @property
    def simulator(self) -> Simulator:
        return self.server.app[SIMULATOR]


@pytest.fixture
async def running(tmp_path: Path, aiohttp_server: AiohttpServer) -> Running:
    lookups: deque[tuple[int, dict[str, object]]] = deque()

    async def order(_: web.Request) -> web.Response:
        status, body = lookups.popleft() if lookups else (500, {})
        return web.json_response(body, status=status)

    orders = web.Application()
    orders.router.add_get("/orders/{number}", order)
    orders_server = await aiohttp_server(orders)
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="simulator",
        public_url=url,
        database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS,
        audio_dir=tmp_path / "audio",
        var_dir=tmp_path / "var",
        plan_variables={
            "order_status_line": {"orders_api": str(orders_server.make_url("")).rstrip("/")}
        },
    )
    server = await aiohttp_server(
        create_app(settings, url, AppParts(simulator_audio=[FSDD])), port=port
    )
    return Running(url, server, lookups)


async def run_over_http(running: Running, scenario: Scenario) -> tuple[CallFacts, list[str]]:
    plan = running.calls.s.plans.plans[scenario.plan]
    persona = Persona.from_scenario(scenario, language=plan.language)
    for answer in scenario.lookups or []:
        running.lookups.append(
            ({"ok": 200, "not_found": 404, "error": 503}[answer.status], answer.data)
        )
    if plan.direction == "outbound":
        number = scenario.caller or "+12025550111"
        running.simulator.expect(number, persona)
        placed = await running.calls.place_call(number, plan.id, scenario.variables)
        assert placed.provider_sid is not None
        record = await running.simulator.wait_for_call(placed.provider_sid)
    else:
        caller = scenario.caller or "+12025550111"
        voice_url, status_url = f"{running.url}/twilio/voice", f"{running.url}/twilio/status"
        record = await running.simulator.incoming_call(
            caller, plan.numbers[0], persona, voice_url, status_callback=status_url
        )
    await running.calls.drain()
    assert record.errors == []
    async with running.calls.s.store.transaction() as tx:
        stored = await tx.calls.get_by_sid(record.sid)
        assert stored is not None
        facts = await call_facts(tx, stored.id)
    assert facts is not None
    failures = check_expectations(scenario.expect, facts)
    said = " ".join(facts.said.lower().split())
    failures += [f"expected the robot to say {text!r}" for turn in scenario.turns
                 for text in turn.expect if " ".join(text.lower().split()) not in said]  # fmt: skip
    return facts, failures


@pytest.mark.parametrize("path", OVER_HTTP, ids=lambda p: p.stem)
async def test_scenarios_over_http(running: Running, path: Path) -> None:
    """Keys, silence and hang-ups, and speech: synthesized by the simulator in a caller's
    voice, recorded, fetched by the server and recognized offline (PocketSphinx for English,
    Vosk with the Korean model for Korean; Russian has no model here, so keypad only)."""
    facts, failures = await run_over_http(running, load_scenario(path))
    if (gap := RECOGNITION_GAPS.get(path.stem)) is not None:
        gap.check(facts, failures)  # raises when the call went the known wrong way
    assert failures == []


async def test_a_language_without_a_recognizer_is_served_keypad_only(running: Running) -> None:
    assert [p.stem for p in UNRECOGNIZED] == [
        "appointment_ru_cancel_stop", "appointment_ru_repeat_confirm", "appointment_ru_stop",
    ]  # fmt: skip
    scenario = load_scenario(SCENARIOS / "appointment_ru_silence.yaml")
    await run_over_http(running, scenario)
    async with running.calls.s.store.read() as tx:
        [call] = list(running.simulator.calls.values())
        stored = await tx.calls.get_by_sid(call.sid)
        assert stored is not None
        listens = [e for e in await tx.events.list(stored.id) if e.kind == "Listen"]
    assert listens
    assert call.entries("record") == []  # no <Record>: keys only
    assert [e.kind for e in call.entries("keys")] == ["keys"]
