"""Streaming calls end to end: the real app (IVR_TWILIO_MEDIA=stream) against the simulator.

The simulator is Twilio here: it follows the app's TwiML over HTTP, opens the Media Stream
the app answers with, plays its prompts into the caller's ear and speaks the caller's turns
(espeak-ng caller voice, FSDD recordings) into the stream. What the call did is read back
from the app's store; what the caller heard from the simulator's transcript.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer

from ivr.calls.service import CallService
from ivr.config import Settings
from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import CallRecord, Persona, Simulator, SimulatorSettings
from ivr.web.app import SIMULATOR, AppParts, create_app
from ivr.web.call_report import CallFacts, call_facts
from ivr.web.keys import CALLS
from tests.conftest import DIALPLANS, FSDD

SHOP = "+15550100"
CALLER = "+12025550142"
# Faster than real time: the simulator sleeps TIME_SCALE real seconds per second of the call,
# and the app paces its prompts to match (stream_pace), or the simulator's earpiece would run
# dry between frames and hear prompts end early. The app's own timeouts stay in real seconds,
# so they are only more lenient with a caller who answers sooner.
TIME_SCALE = 0.25


@dataclass
class Running:
    url: str
    server: TestServer

    @property
    def calls(self) -> CallService:
        return self.server.app[CALLS]

    @property
    def simulator(self) -> Simulator:
        return self.server.app[SIMULATOR]

    async def facts(self, record: CallRecord) -> CallFacts:
        await self.calls.drain()
        async with self.calls.s.store.transaction() as tx:
            stored = await tx.calls.get_by_sid(record.sid)
            assert stored is not None
            facts = await call_facts(tx, stored.id)
        assert facts is not None
        return facts

    async def ring(self, *turns: Turn, **persona: object) -> CallRecord:
        return await self.simulator.incoming_call(
            CALLER,
            SHOP,
            Persona.person(*turns, **persona),
            f"{self.url}/twilio/voice",
            status_callback=f"{self.url}/twilio/status",
        )


@pytest.fixture
async def running(tmp_path: Path, aiohttp_server: AiohttpServer) -> Running:
    async def order(_: web.Request) -> web.Response:
        return web.json_response({"status": "out for delivery"})

    orders = web.Application()
    orders.router.add_get("/orders/{number}", order)
    orders_server = await aiohttp_server(orders)
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="simulator",
        twilio_media="stream",
        stream_pace=TIME_SCALE,
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
    running = Running(url, server)
    running.simulator.settings = SimulatorSettings(stream_time_scale=TIME_SCALE)
    return running


def streamed(call: CallRecord) -> None:
    """The call really ran over a Media Stream, and nothing went wrong on the wire."""
    for entry in call.transcript:  # pytest shows it with a failure
        print(f"{entry.at:7.2f} {entry.kind:13} {entry.text}")
    assert call.errors == []
    assert call.entries("stream"), "no Media Stream was opened"
    assert not call.entries("recording"), "the call fell back to <Record>"


async def test_the_menu_answered_by_voice_while_it_plays(running: Running) -> None:
    call = await running.ring(
        Turn(say="order", barge_in_ms=2500),
        Turn(press="4207#"),
        Turn(say="goodbye"),
    )
    streamed(call)
    menu = call.entries("heard")[0]
    assert menu.data["cut"], "the menu was not cleared when the caller spoke"
    assert menu.data["heard"] < menu.data["duration"]
    assert call.entries("speech")[0].data["barge_in"] is True
    facts = await running.facts(call)
    assert facts.outcome == "status_told"
    assert "out for delivery" in facts.said


async def test_the_menu_answered_by_keys_over_the_stream(running: Running) -> None:
    call = await running.ring(Turn(press="1"), Turn(press="4207#"), Turn(press="0"))
    streamed(call)
    facts = await running.facts(call)
    assert facts.outcome == "status_told"
    assert call.transfer_to == "+12025550123"  # 0 at "anything else": the operator


async def test_a_dropped_stream_resumes_the_call(running: Running) -> None:
    call = await running.ring(
        Turn(press="1"), Turn(press="4207#"), Turn(say="goodbye"), drop_stream_after_marks=1
    )
    streamed(call)
    assert [e.data.get("dropped") for e in call.entries("stream")].count(True) == 1
    opened = [e for e in call.entries("stream") if "parameters" in e.data]
    assert len(opened) >= 2  # the action URL answered with a new stream
    facts = await running.facts(call)
    assert facts.outcome == "status_told"


async def test_an_outbound_reminder_confirmed_by_voice(running: Running) -> None:
    number = "+12025550111"
    running.simulator.expect(number, Persona.person(Turn(say="yes, I'll be there")))
    placed = await running.calls.place_call(
        number,
        "appointment_reminder",
        {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"},
    )
    assert placed.provider_sid is not None
    call = await running.simulator.wait_for_call(placed.provider_sid, timeout=120)
    streamed(call)
    facts = await running.facts(call)
    assert facts.outcome == "confirmed"
