"""The simulator's Media Streams: Twilio's side of ``<Connect><Stream>`` over real WebSockets.

The application here is :mod:`tests.telephony_sim.stream_server`, a small independent
implementation of the server side. Timing is asserted in frames (the simulator sends one
caller frame per 20 ms it plays), never in wall-clock seconds.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from xml.sax.saxutils import escape

import pytest
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from ivr.simulation.scenario import Turn
from ivr.speech.audio import mulaw_to_pcm16, rms
from ivr.telephony.simulator import CallRecord, Persona, Simulator, SimulatorSettings
from ivr.telephony.simulator.stream import FRAME_BYTES, REACTION_FRAMES
from tests.telephony_sim.conftest import ACCOUNT_SID, FakeIvr, RestClient, ServerFactory, twiml
from tests.telephony_sim.stream_server import StreamApp, StreamSession

PROMPT_FRAMES = 50  # the stream server's default prompt: 1 s


@pytest.fixture
def settings() -> SimulatorSettings:
    return SimulatorSettings(stream_time_scale=0.2)


@pytest.fixture
async def app(aiohttp_server: ServerFactory) -> AsyncIterator[StreamApp]:
    ivr = FakeIvr()
    streams = StreamApp(ivr)
    server: TestServer = await aiohttp_server(streams.app())
    ivr.base = str(server.make_url("")).rstrip("/")
    yield streams
    unsigned = [f"{r.method} {r.path}" for r in ivr.received if not r.signed]
    assert not unsigned, f"requests with a wrong X-Twilio-Signature: {unsigned}"


def connect(app: StreamApp, action: str | None = "/after", query: str = "?call=ref-1") -> str:
    attribute = f' action="{action}"' if action else ""
    return twiml(
        f'<Connect{attribute}><Stream url="{escape(app.stream_url(query))}">'
        '<Parameter name="call" value="ref-1"/><Parameter name="lang" value="en"/>'
        "</Stream></Connect>",
    )


async def place(
    rest: RestClient, simulator: Simulator, app: StreamApp, *turns: Turn, **persona: object
) -> CallRecord:
    simulator.expect("+12025550123", Persona.person(*turns, **persona))
    return await simulator.wait_for_call(await rest.call(app.ivr))


async def test_the_stream_opens_signed_with_twilios_framing(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.ivr.routes["/voice"] = connect(app)
    app.ivr.routes["/after"] = twiml("<Hangup/>")
    call = await place(rest, simulator, app, Turn(press="7"))
    (session,) = app.sessions
    assert session.signed
    assert session.path_qs == "/stream?call=ref-1"
    first, start = session.received[0].message, session.received[1].message
    assert first == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    sid = start["streamSid"]
    assert sid.startswith("MZ")
    assert len(sid) == 34
    assert start["sequenceNumber"] == "1"
    assert start["start"] == {
        "accountSid": ACCOUNT_SID,
        "streamSid": sid,
        "callSid": call.sid,
        "tracks": ["inbound"],
        "customParameters": {"call": "ref-1", "lang": "en"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    later = [r.message for r in session.received[1:]]
    assert [m["sequenceNumber"] for m in later] == [str(n) for n in range(1, len(later) + 1)]
    media = session.events("media")
    assert [m["media"]["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
    assert [m["media"]["timestamp"] for m in media[:3]] == ["0", "20", "40"]
    assert {m["media"]["track"] for m in media} == {"inbound"}
    assert {len(base64.b64decode(m["media"]["payload"])) for m in media} == {FRAME_BYTES}
    assert all(m["streamSid"] == sid for m in later)
    (dtmf,) = session.events("dtmf")
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "7"}
    (after,) = app.ivr.requests_to("/after")
    assert after["CallSid"] == call.sid
    assert after["CallStatus"] == "in-progress"
    assert call.end_reason == "hangup"
    assert not call.errors


async def test_a_mark_is_echoed_once_its_audio_has_played(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.prompts = [1.0, 0.5]
    app.ivr.routes["/voice"] = connect(app)
    app.ivr.routes["/after"] = twiml("<Hangup/>")
    call = await place(rest, simulator, app, Turn(press="1"))
    (session,) = app.sessions
    names = [m["mark"]["name"] for m in session.events("mark")]
    assert names == ["prompt-1", "prompt-2"]
    sent = session.sent_at("media-1")
    # The caller's line carries one frame per 20 ms played: 50 frames for 1 s, 25 more.
    assert session.frames_when("mark", name="prompt-1") - sent >= PROMPT_FRAMES
    assert session.frames_when("mark", name="prompt-2") - sent >= PROMPT_FRAMES + 25
    # ... and the caller answers after hearing it all, a reaction time later.
    assert session.frames_when("dtmf") - sent >= PROMPT_FRAMES + 25 + REACTION_FRAMES
    heard = call.entries("heard")
    assert [(h.data["mark"], h.data["heard"], h.data["cut"]) for h in heard] == [
        ("prompt-1", 1.0, False),
        ("prompt-2", 0.5, False),
    ]
    (keys,) = call.entries("keys")
    assert keys.data["barge_in"] is False


async def test_speech_over_a_prompt_is_cleared_and_pending_marks_echoed(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.prompts = [3.0, 1.0]
    app.ivr.routes["/voice"] = connect(app)
    app.ivr.routes["/after"] = twiml("<Hangup/>")
    call = await place(rest, simulator, app, Turn(audio="1_jackson_0.wav", barge_in_ms=500))
    (session,) = app.sessions
    cleared = session.sent_at("clear")
    sent = session.sent_at("media-1")
    assert 25 <= cleared - sent < 150  # the caller spoke ~0.5 s into a 3 s prompt
    names = [m["mark"]["name"] for m in session.events("mark")]
    assert names == ["prompt-1", "prompt-2"]  # both echoed at once by the clear
    heard = call.entries("heard")
    assert [h.data["mark"] for h in heard] == ["prompt-1", "prompt-2"]
    assert heard[0].data["cut"]
    assert 0.5 <= heard[0].data["heard"] < 3.0
    assert heard[1].data == heard[1].data | {"cut": True, "heard": 0.0}
    (spoken,) = call.entries("audio")
    assert spoken.data["barge_in"] is True
    loud = [
        m
        for m in session.events("media")
        if rms(mulaw_to_pcm16(base64.b64decode(m["media"]["payload"]))) > 300
    ]
    assert len(loud) >= 10  # the recording went out as media frames
    assert app.ivr.requests_to("/after")


async def test_the_caller_hanging_up_sends_stop(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.ivr.routes["/voice"] = connect(app)
    call = await place(rest, simulator, app, Turn(hangup=True))
    (session,) = app.sessions
    (stop,) = session.events("stop")
    assert stop["stop"] == {"accountSid": ACCOUNT_SID, "callSid": call.sid}
    assert session.received[-1].message["event"] == "stop"
    assert call.end_reason == "caller-hangup"
    assert call.status == "completed"
    assert not app.ivr.requests_to("/after")  # the caller is gone: no action request


async def test_without_an_action_the_next_verb_runs(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.ivr.routes["/voice"] = connect(app, action=None)[: -len("</Response>")] + (
        "<Say>Goodbye</Say></Response>"
    )
    call = await place(rest, simulator, app, Turn(press="2"))
    assert [e.text for e in call.entries("say")] == ["Goodbye"]
    assert call.end_reason == "hangup"


async def test_a_dropped_socket_resumes_through_the_action_url(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.ivr.routes["/voice"] = connect(app)
    app.ivr.routes["/after"] = connect(app, action="/done", query="?call=ref-1&resumed=1")
    app.ivr.routes["/done"] = twiml("<Hangup/>")
    call = await place(rest, simulator, app, Turn(press="3"), drop_stream_after_marks=1)
    first, second = app.sessions
    assert first.closed_by_peer
    assert not first.events("stop")
    assert not first.events("dtmf")
    assert second.signed
    assert second.path_qs == "/stream?call=ref-1&resumed=1"
    assert second.events("start")[0]["streamSid"] != first.events("start")[0]["streamSid"]
    assert second.events("dtmf")[0]["dtmf"]["digit"] == "3"
    assert len(app.ivr.requests_to("/after")) == 1
    assert len(app.ivr.requests_to("/done")) == 1
    assert [e.data.get("dropped") for e in call.entries("stream")] == [None, True, None, None, None]


async def test_a_refused_upgrade_is_a_handshake_error(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.ivr.routes["/voice"] = connect(app)
    app.ivr.routes["/after"] = twiml("<Hangup/>")
    app.validator = RequestValidator("another-account-token")  # every upgrade is forged
    call = await place(rest, simulator, app, Turn(press="1"))
    (session,) = app.sessions
    assert not session.signed
    assert not session.received
    assert any(e.startswith("31920 ") and "403" in e for e in call.errors), call.errors
    assert app.ivr.requests_to("/after")  # Twilio goes on with the call's TwiML


@pytest.mark.parametrize("misbehave", ["binary", "garbage"])
async def test_a_protocol_error_closes_the_stream(
    rest: RestClient, simulator: Simulator, app: StreamApp, misbehave: str
) -> None:
    app.misbehave = misbehave
    app.ivr.routes["/voice"] = connect(app)
    app.ivr.routes["/after"] = twiml("<Hangup/>")
    call = await place(rest, simulator, app, Turn(press="1"))
    assert any(e.startswith("31950 ") for e in call.errors), call.errors
    (stream_end,) = [e for e in call.entries("stream") if "end" in e.data]
    assert stream_end.data["end"] == "failed"
    assert app.ivr.requests_to("/after")  # the call goes on with its TwiML


async def test_an_unknown_event_is_ignored(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.misbehave = "unknown"
    app.ivr.routes["/voice"] = connect(app)
    app.ivr.routes["/after"] = twiml("<Hangup/>")
    call = await place(rest, simulator, app, Turn(press="1"))
    assert not call.errors
    assert any("'dance'" in e.text for e in call.entries("note"))
    assert app.sessions[0].events("dtmf")  # the stream went on


def loud_frames(session: StreamSession) -> list[int]:
    """Positions (caller frame numbers) of the media frames that carry sound."""
    return [
        r.caller_frames
        for r in session.received
        if r.message.get("event") == "media"
        and rms(mulaw_to_pcm16(base64.b64decode(r.message["media"]["payload"]))) > 300
    ]


async def test_the_caller_answers_in_the_espeak_voice_after_hearing_the_prompt(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.ivr.routes["/voice"] = connect(app)
    app.ivr.routes["/after"] = twiml("<Hangup/>")
    call = await place(rest, simulator, app, Turn(say="yes"))
    (session,) = app.sessions
    echoed = session.frames_when("mark", name="prompt-1")
    speech = loud_frames(session)
    assert speech, "no speech reached the stream"
    assert speech[0] - echoed >= REACTION_FRAMES  # heard it all, then a reaction time
    assert "clear" not in [what for what, _ in session.sent]
    (spoken,) = call.entries("speech")
    assert spoken.data["barge_in"] is False
    assert len(speech) >= 10  # 200 ms of voice at least
    (heard,) = call.entries("heard")
    assert not heard.data["cut"]


async def test_ending_the_call_through_the_api_sends_stop(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.ivr.routes["/voice"] = connect(app)
    simulator.expect("+12025550123", Persona.person(when_script_ends="stay-silent"))
    sid = await rest.call(app.ivr)
    async with asyncio.timeout(30):
        while not (app.sessions and app.sessions[0].events("mark")):
            await asyncio.sleep(0.05)  # the caller heard the prompt and stays silent
    status, _ = await rest.post(f"Calls/{sid}.json", {"Status": "completed"})
    assert status == 200
    call = await simulator.wait_for_call(sid)
    (stop,) = app.sessions[0].events("stop")
    assert stop["stop"]["callSid"] == sid
    assert call.end_reason == "api"
    assert not app.ivr.requests_to("/after")


async def test_connect_to_another_service_is_skipped_with_an_error(
    rest: RestClient, simulator: Simulator, app: StreamApp
) -> None:
    app.ivr.routes["/voice"] = twiml("<Connect><Room>sales</Room></Connect>", "<Say>Bye</Say>")
    call = await place(rest, simulator, app)
    assert call.errors == ["<Connect> with <Room> is not simulated (only <Stream>); skipped"]
    assert [e.text for e in call.entries("say")] == ["Bye"]
    assert not app.sessions


def test_the_stream_clock_cannot_stop() -> None:
    with pytest.raises(ValueError, match="stream_time_scale must be in"):
        SimulatorSettings(stream_time_scale=0)
