"""TwiML carried out like Twilio: Gather, Record, Redirect, Dial, Hangup, errors."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest

from ivr.simulation.scenario import Turn
from ivr.speech.audio import inspect_wav, read_wav, rms
from ivr.telephony.simulator import CallRecord, Persona, Simulator
from tests.conftest import FSDD
from tests.telephony_sim.conftest import (
    AUTH_HEADERS,
    PERSON,
    PROMPT_SECONDS,
    FakeIvr,
    RestClient,
    twiml,
)

MENU = twiml(
    '<Gather numDigits="1" action="/gathered" timeout="3">'
    "<Play>/audio/prompt.wav</Play><Say>Press 1 for sales.</Say></Gather>",
    "<Redirect>/no-input</Redirect>",
)
LISTEN = twiml(
    '<Play>/audio/prompt.wav</Play><Record action="/recorded" finishOnKey="123#" timeout="2"/>',
    "<Redirect>/no-input</Redirect>",
)
BYE = twiml("<Say>Goodbye.</Say>", "<Hangup/>")


async def run(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr, persona: Persona, voice: str
) -> CallRecord:
    ivr.routes["/voice"] = voice
    for path in ("/gathered", "/recorded", "/no-input"):
        ivr.routes.setdefault(path, BYE)
    simulator.expect(PERSON, persona)
    return await simulator.wait_for_call(await rest.call(ivr))


async def test_keys_interrupt_the_prompts_nested_in_gather(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    persona = Persona.person(Turn(press="2"), barge_in_after=0.5)
    call = await run(rest, simulator, ivr, persona, MENU)
    (gathered,) = ivr.requests_to("/gathered")
    assert (gathered["Digits"], gathered["CallStatus"]) == ("2", "in-progress")
    (play,) = call.entries("play")
    assert play.data["interrupted_at"] == pytest.approx(0.5)
    assert [e.text for e in call.entries("say")] == ["Goodbye."]  # "Press 1" was cut off
    assert call.unused_turns == 0
    assert ivr.requests_to("/no-input") == []
    assert call.end_reason == "hangup"


async def test_a_patient_caller_hears_every_nested_prompt_first(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    persona = Persona.person(Turn(press="1"), barge_in_after=None)
    call = await run(rest, simulator, ivr, persona, MENU)
    assert "interrupted_at" not in call.entries("play")[0].data
    assert [e.text for e in call.entries("say")] == ["Press 1 for sales.", "Goodbye."]
    assert ivr.requests_to("/gathered")[0]["Digits"] == "1"


async def test_digits_end_with_the_finish_key(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    voice = twiml('<Gather action="/gathered"><Say>Your order number?</Say></Gather>')
    await run(rest, simulator, ivr, Persona.person(Turn(press="4207#")), voice)
    (gathered,) = ivr.requests_to("/gathered")
    assert (gathered["Digits"], gathered["FinishedOnKey"]) == ("4207", "#")


async def test_a_gather_without_keys_falls_through_to_the_next_verb(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    persona = Persona.person(Turn(silence=True), Turn(say="too late"))
    call = await run(rest, simulator, ivr, persona, MENU)
    assert ivr.requests_to("/gathered") == []
    assert len(ivr.requests_to("/no-input")) == 1
    assert call.unused_turns == 1  # nobody recorded "too late"
    kinds = [e.kind for e in call.transcript]
    assert kinds[:5] == ["play", "say", "silence", "gather-timeout", "redirect"]
    # the prompt, four words said at 2.5 words/s and the 3 s timeout passed on the clock
    assert call.entries("redirect")[0].at == pytest.approx(PROMPT_SECONDS + 4 / 2.5 + 3.0)


async def test_action_on_empty_result_posts_empty_digits(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    voice = twiml('<Gather action="/gathered" actionOnEmptyResult="true"><Pause/></Gather>')
    await run(rest, simulator, ivr, Persona(when_script_ends="stay-silent"), voice)
    assert ivr.requests_to("/gathered")[0]["Digits"] == ""


async def test_speech_is_recorded_and_the_recording_can_be_fetched_then_deleted(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    persona = Persona.person(Turn(say="yes, I will be there"))
    call = await run(rest, simulator, ivr, persona, LISTEN)
    (recorded,) = ivr.requests_to("/recorded")
    assert "Digits" not in recorded
    assert recorded["RecordingSid"].startswith("RE")
    assert int(recorded["RecordingDuration"]) >= 1
    (speech,) = call.entries("speech")
    assert speech.data["text"] == "yes, I will be there"
    assert call.entries("recording")[0].data["sid"] == recorded["RecordingSid"]
    wav_url = recorded["RecordingUrl"] + ".wav"
    async with aiohttp.ClientSession() as anonymous, anonymous.get(wav_url) as response:
        assert response.status == 401
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as session:
        async with session.get(wav_url) as response:
            assert (response.status, response.content_type) == (200, "audio/x-wav")
            wav = await response.read()
        header = inspect_wav(wav)
        assert (header.sample_rate, header.channels, header.bits_per_sample) == (8000, 1, 16)
        pcm, _rate = read_wav(wav)
        assert rms(pcm) > 300  # speech, not silence
        assert header.duration == pytest.approx(speech.data["duration"], abs=0.01)
        async with session.delete(recorded["RecordingUrl"] + ".json") as response:
            assert response.status == 204
        async with session.get(wav_url) as response:
            assert response.status == 404
            assert (await response.json())["code"] == 20404
        async with session.delete(recorded["RecordingUrl"] + ".json") as response:
            assert response.status == 404


async def test_an_audio_file_is_recorded_as_is(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    call = await run(rest, simulator, ivr, Persona.person(Turn(audio="3_jackson_0.wav")), LISTEN)
    (recorded,) = ivr.requests_to("/recorded")
    recording = simulator.recordings.get(recorded["RecordingSid"])
    assert recording is not None
    original, _rate = read_wav(FSDD / "3_jackson_0.wav")
    assert recording.pcm == original  # already 8 kHz 16-bit: kept sample for sample
    assert call.entries("audio")[0].data["file"] == "3_jackson_0.wav"


async def test_silence_makes_an_empty_recording_and_no_action_request(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    call = await run(rest, simulator, ivr, Persona.person(Turn(silence=True)), LISTEN)
    assert ivr.requests_to("/recorded") == []
    assert len(ivr.requests_to("/no-input")) == 1
    assert call.entries("recording")[0].data["empty"] is True
    assert len(simulator.recordings) == 0


async def test_a_key_ends_the_recording_and_is_reported_as_digits(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    await run(rest, simulator, ivr, Persona.person(Turn(press="2")), LISTEN)
    (recorded,) = ivr.requests_to("/recorded")
    assert recorded["Digits"] == "2"
    assert simulator.recordings.get(recorded["RecordingSid"]) is not None


async def test_a_caller_hanging_up_ends_the_call(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    call = await run(rest, simulator, ivr, Persona.person(Turn(hangup=True)), MENU)
    assert (call.status, call.end_reason) == ("completed", "caller-hangup")
    assert ivr.requests_to("/gathered") == ivr.requests_to("/no-input") == []
    assert ivr.requests_to("/status")[-1]["CallStatus"] == "completed"


async def test_the_caller_hangs_up_when_the_script_runs_out(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    persona = Persona.person(Turn(press="1"))
    ivr.routes["/gathered"] = MENU  # asks again: the caller has nothing left to say
    call = await run(rest, simulator, ivr, persona, MENU)
    assert len(ivr.requests_to("/gathered")) == 1
    assert call.end_reason == "caller-hangup"
    assert "end of script" in call.entries("caller-hangup")[0].text


async def test_dial_transfers_and_completes_the_call(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    voice = twiml(
        "<Say>Connecting you.</Say>",
        '<Dial action="/dialed"><Number>+12025550199</Number></Dial>',
        "<Say>never reached</Say>",
    )
    call = await run(rest, simulator, ivr, Persona(transfer_talk_seconds=12), voice)
    assert (call.transfer_to, call.end_reason, call.status) == ("+12025550199", "dial", "completed")
    (dialed,) = ivr.requests_to("/dialed")
    assert (dialed["DialCallStatus"], dialed["DialCallDuration"]) == ("completed", "12")
    assert [e.text for e in call.entries("say")] == ["Connecting you."]
    assert call.duration is not None
    assert call.duration >= 12


async def test_hangup_stops_the_document(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    voice = twiml("<Say>Bye.</Say>", "<Hangup/>", "<Say>never said</Say>")
    call = await run(rest, simulator, ivr, Persona(), voice)
    assert [e.text for e in call.entries("say")] == ["Bye."]
    assert call.entries("hangup")[0].text == "the application hangs up"


async def test_a_redirect_loop_is_cut_off(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    simulator.settings = replace(simulator.settings, max_webhooks_per_call=10)
    ivr.routes["/loop"] = twiml("<Pause/>", "<Redirect>/loop</Redirect>")
    call = await run(rest, simulator, ivr, Persona(), twiml("<Redirect>/loop</Redirect>"))
    assert len(ivr.requests_to("/voice")) + len(ivr.requests_to("/loop")) == 10
    assert call.end_reason == "error"
    assert "redirect loop" in call.errors[0]
    assert call.status == "completed"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("status", "answered HTTP 500"),
        ("<Response><Say>unclosed</Response>", "invalid XML"),
        ("<html><body>hello</body></html>", "not <Response>"),
        ("<Response><Speak>hi</Speak></Response>", "not a TwiML voice verb"),
    ],
)
async def test_a_broken_webhook_answer_is_an_application_error(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr, answer: str, problem: str
) -> None:
    if answer == "status":
        ivr.statuses["/voice"] = 500
    call = await run(rest, simulator, ivr, Persona(), answer)
    assert call.end_reason == "error"
    assert problem in call.errors[0]


async def test_a_broken_play_is_logged_and_skipped(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    voice = twiml(
        "<Play>/audio/missing.wav</Play>",
        "<Play>/audio/not-audio.wav</Play>",
        "<Play>/audio/pcm.wav</Play>",
        "<Hangup/>",
    )
    call = await run(rest, simulator, ivr, Persona(), voice)
    assert "HTTP 404" in call.errors[0]
    assert "text/html, not audio/wav" in call.errors[1]
    (played,) = call.entries("play")
    assert (played.data["format"], played.data["duration"]) == ("16-bit 8000 Hz", 1.0)
    assert call.end_reason == "hangup"


async def test_get_requests_carry_the_parameters_in_a_signed_query(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    voice = twiml('<Gather numDigits="1" action="/gathered?turn=3" method="GET"><Pause/></Gather>')
    ivr.routes["/voice"] = voice
    ivr.routes["/gathered"] = BYE
    simulator.expect(PERSON, Persona.person(Turn(press="9")))
    sid = await rest.call(ivr, StatusCallbackMethod="GET")
    await simulator.wait_for_call(sid)
    (gathered,) = ivr.requests_to("/gathered")
    assert (gathered["turn"], gathered["Digits"], gathered["CallSid"]) == ("3", "9", sid)
    (status,) = ivr.requests_to("/status")
    assert status["CallStatus"] == "completed"
    assert {r.method for r in ivr.received if r.path in ("/gathered", "/status")} == {"GET"}
