"""The call runtime with a second provider's dialect: no TwiML, no aiohttp, no web layer.

A provider that answers in JSON (``JsonDialect``, written here as a second adapter would be)
drives the order line through ``CallService`` against a real SQLite store and real prompt
synthesis: its responses are what the runtime stores and replays, its URLs are what the
runtime hands to the provider, and nothing of Twilio's shows up anywhere.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.calls.dialect import CallDialect
from ivr.calls.live_prompts import LIVE_PROMPTS
from ivr.calls.service import CallService
from ivr.calls.services import Services
from ivr.config import Settings
from ivr.dialplan.loader import load_plans_or_raise
from ivr.dialplan.vocabulary import (
    HangUp,
    Listen,
    Lookup,
    LookupFinished,
    Output,
    Play,
    Say,
    Transfer,
)
from ivr.speech.prompts import PromptCache
from ivr.store import Store
from ivr.telephony.provider import CallInfo, MessageInfo, ProviderError
from tests.conftest import DIALPLANS

SHOP_LINE = "+15550100"
CALLER = "+12025550142"
BASE = "https://ivr.example/other"


class JsonDialect:
    """A made-up provider that takes JSON instructions and calls back at ``/other/...``."""

    def __init__(self, *, streaming: bool = False) -> None:
        self._streaming = streaming

    @property
    def streaming(self) -> bool:
        return self._streaming

    def turn(
        self,
        ref: str,
        turn: int,
        outputs: Sequence[Output],
        audio: Mapping[Say | Play, str],
        *,
        speech: bool,
    ) -> str:
        steps: list[dict[str, Any]] = []
        for output in outputs:
            if isinstance(output, Say | Play):
                steps.append({"play": audio.get(output), "text": str(output)})
            elif isinstance(output, Listen):
                steps.append({"listen": output.state, "speech": speech, "turn": turn, "call": ref})
            elif isinstance(output, Transfer):
                steps.append({"transfer": output.number})
            elif isinstance(output, HangUp):
                steps.append({"hangup": True})
        return json.dumps(steps)

    def more_digits(
        self, ref: str, turn: int, listen: Listen, keys: str, *, speech: bool
    ) -> str | None:
        del ref, turn, listen, keys, speech  # every key press is a whole answer here
        return None

    def say_and_hang_up(self, text: str, language: str) -> str:
        return json.dumps([{"say": text, "language": language}, {"hangup": True}])

    def wait(self, ref: str, turn: int, recording_url: str, recording_sid: str, waits: int) -> str:
        del ref, turn, recording_url
        return json.dumps([{"wait": waits, "recording": recording_sid}])

    def connect_stream(self, ref: str, turn: int) -> str:
        return json.dumps([{"stream": f"wss://ivr.example/other/stream/{ref}", "turn": turn}])

    def after_streamed(self, outputs: Sequence[Output]) -> str:
        del outputs
        return json.dumps([{"hangup": True}])

    def gone(self) -> str:
        return json.dumps([{"hangup": True}])

    def answer_url(self, ref: str) -> str:
        return f"{BASE}/answer/{ref}"

    def status_url(self, ref: str) -> str:
        return f"{BASE}/status/{ref}"

    def sms_status_url(self, sms_ref: str) -> str:
        return f"{BASE}/sms/{sms_ref}"


@dataclass
class RecordingProvider:
    """A provider that records what it is asked and places every call (no network)."""

    placed: list[dict[str, Any]] = field(default_factory=list)

    async def place_call(self, **request: Any) -> CallInfo:
        self.placed.append(request)
        sid = f"XC{len(self.placed):032d}"
        return CallInfo(sid, "queued", request["to"], request["from_number"], "outbound-api")

    async def send_sms(
        self, *, to: str, from_number: str, body: str, status_url: str | None = None
    ) -> MessageInfo:
        del to, from_number, body, status_url
        raise ProviderError("no SMS in these calls", retryable=False)

    async def get_call(self, call_sid: str) -> CallInfo:
        raise ProviderError(f"{call_sid}: not asked in these calls", retryable=False)

    async def find_calls(self, to: str, since: datetime) -> list[CallInfo]:
        del to, since
        return []

    async def fetch_recording(self, recording_url: str) -> bytes:
        raise ProviderError(f"{recording_url}: no recordings in these calls", retryable=False)

    async def delete_recording(self, recording_sid: str) -> None:
        del recording_sid


async def order_lookup(action: Lookup) -> LookupFinished:
    """The shop's order API, in process: every order is delivered."""
    return LookupFinished("ok", {"status": "delivered", "url": action.url})


@dataclass
class Rig:
    calls: CallService
    provider: RecordingProvider
    store: Store


async def rig_for(tmp_path: Path, dialect: CallDialect) -> Rig:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS,
        audio_dir=tmp_path / "audio",
        var_dir=tmp_path / "var",
    )
    store = Store.open(settings.database_url)
    await store.upgrade()
    provider = RecordingProvider()
    services = Services(
        settings=settings,
        base_url=BASE,
        plans=load_plans_or_raise([DIALPLANS], settings.audio_dir),
        store=store,
        provider=provider,
        lookup=order_lookup,
        prompts=PromptCache(settings.audio_dir / "cache"),
        secret=b"s" * 32,
    )
    return Rig(CallService(services, dialect), provider, store)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = await rig_for(tmp_path, JsonDialect())
    yield rig
    await rig.calls.drain()
    await rig.store.close()


async def test_an_inbound_call_runs_on_a_second_dialect(rig: Rig) -> None:
    first = await rig.calls.start_inbound("XC1", CALLER, SHOP_LINE)
    steps = json.loads(first)
    assert steps[-1] == {"listen": "menu", "speech": False, "turn": 1, "call": steps[-1]["call"]}
    ref = steps[-1]["call"]
    greeting = steps[0]
    assert "Thank you for calling" in greeting["text"]
    assert greeting["play"].startswith("/audio/cache/")  # synthesized before the answer left
    # The provider repeats its request: the stored answer, not a second turn.
    assert await rig.calls.start_inbound("XC1", CALLER, SHOP_LINE) == first

    await rig.calls.check_webhook(ref, "XC1", 1)
    ask = json.loads(await rig.calls.on_keys(ref, 1, "1", first=True))
    assert ask[-1]["listen"] == "ask_number"
    assert ask[-1]["turn"] == 2
    told = await rig.calls.on_keys(ref, 2, "4207", first=True)
    texts = [step.get("text", "") for step in json.loads(told)]
    assert any("is delivered" in text for text in texts)  # the lookup ran inside the turn
    # A late repeat of turn 2 gets what turn 2 answered; the plan does not advance twice.
    assert await rig.calls.on_keys(ref, 2, "4207", first=True) == told

    transfer = json.loads(await rig.calls.on_keys(ref, 3, "0", first=True))
    assert transfer[-1] == {"transfer": "+12025550123"}
    async with rig.store.read() as tx:
        call = await tx.calls.get(ref)
        kinds = [event.kind for event in await tx.events.list(ref)]
    assert call is not None
    assert call.turn == 4
    assert json.loads(call.last_response or "") == transfer
    assert "KeysPressed" in kinds
    assert "LookupFinished" in kinds
    assert await rig.calls.on_keys(ref, 4, "1", first=True) == rig.calls.dialect.gone()


async def test_a_number_no_plan_answers_is_refused_in_the_dialect(rig: Rig) -> None:
    refused = json.loads(await rig.calls.start_inbound("XC2", CALLER, "+15559999"))
    assert refused[-1] == {"hangup": True}
    assert "not in service" in refused[0]["say"]


async def test_outbound_calls_give_the_provider_the_dialect_urls(rig: Rig) -> None:
    placed = await rig.calls.place_call(
        "+12025550123",
        "appointment_reminder",
        {"name": "Ann", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"},
    )
    [request] = rig.provider.placed
    assert request["answer_url"] == f"{BASE}/answer/{placed.id}"
    assert request["status_url"] == f"{BASE}/status/{placed.id}"
    answered = json.loads(await rig.calls.answer_outbound(placed.id, placed.provider_sid, "human"))
    assert any("Ann" in step.get("text", "") for step in answered)


async def test_a_streaming_dialect_gets_its_stream_and_the_prompts_logged(tmp_path: Path) -> None:
    rig = await rig_for(tmp_path, JsonDialect(streaming=True))
    try:
        answer = json.loads(await rig.calls.start_inbound("XC3", CALLER, SHOP_LINE))
        [stream] = answer
        ref = stream["stream"].rsplit("/", 1)[1]
        assert stream["turn"] == 1
        async with rig.store.read() as tx:
            events = await tx.events.list(ref)
        [prompts] = [e.data for e in events if e.kind == LIVE_PROMPTS]
        assert prompts["turn"] == 1
        assert "Thank you for calling" in prompts["prompts"][0]["say"]
    finally:
        await rig.calls.drain()
        await rig.store.close()
