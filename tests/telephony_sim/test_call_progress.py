"""Who answers, and the status callbacks the application hears about it."""

from __future__ import annotations

import pytest

from ivr.telephony.simulator import Persona, Simulator
from tests.telephony_sim.conftest import PERSON, PROMPT_SECONDS, ROBOT, FakeIvr, RestClient, twiml

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


async def test_an_answered_call_reports_every_requested_event(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    ivr.routes["/voice"] = twiml("<Play>/audio/prompt.wav</Play>", "<Hangup/>")
    sid = await rest.call(ivr, StatusCallbackEvent=ALL_EVENTS)
    call = await simulator.wait_for_call(sid)
    statuses = ivr.requests_to("/status")
    assert [p["CallStatus"] for p in statuses] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [p["SequenceNumber"] for p in statuses] == ["0", "1", "2", "3"]
    for params in statuses:
        assert params["CallSid"] == sid
        assert (params["From"], params["To"]) == (ROBOT, PERSON)
        assert params["Direction"] == "outbound-api"
        assert params["CallbackSource"] == "call-progress-events"
        assert params["Timestamp"].endswith("+0000")
        assert "AnsweredBy" not in params  # no machine detection was asked for
    assert statuses[-1]["CallDuration"] == str(int(PROMPT_SECONDS))
    (voice,) = ivr.requests_to("/voice")
    assert (voice["CallStatus"], voice["Direction"], voice["ApiVersion"]) == (
        "in-progress",
        "outbound-api",
        "2010-04-01",
    )
    assert (voice["FromCountry"], voice["Called"]) == ("US", PERSON)
    assert (call.status, call.end_reason, call.duration) == ("completed", "hangup", 2)
    (play,) = call.entries("play")
    assert play.data["url"] == ivr.url("/audio/prompt.wav")
    assert play.data["duration"] == pytest.approx(PROMPT_SECONDS)
    assert play.data["format"] == "mu-law 8000 Hz"


async def test_only_completed_is_reported_by_default(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    ivr.routes["/voice"] = twiml("<Say>Hello</Say>")
    call = await simulator.wait_for_call(await rest.call(ivr))
    assert [p["CallStatus"] for p in ivr.requests_to("/status")] == ["completed"]
    assert call.end_reason == "hangup"  # the end of the document hangs up


@pytest.mark.parametrize(
    ("persona", "statuses", "sip"),
    [
        (Persona.nobody("no-answer"), ["initiated", "ringing", "no-answer"], "487"),
        (Persona(ring_seconds=30), ["initiated", "ringing", "no-answer"], "487"),
        (Persona.nobody("busy"), ["initiated", "busy"], "486"),
        (Persona.nobody("failed"), ["initiated", "failed"], "404"),
    ],
)
async def test_unanswered_calls_end_without_a_voice_webhook(
    rest: RestClient,
    simulator: Simulator,
    ivr: FakeIvr,
    persona: Persona,
    statuses: list[str],
    sip: str,
) -> None:
    simulator.expect(PERSON, persona)
    sid = await rest.call(ivr, StatusCallbackEvent=ALL_EVENTS, Timeout="20")
    call = await simulator.wait_for_call(sid)
    reported = ivr.requests_to("/status")
    assert [p["CallStatus"] for p in reported] == statuses
    assert (reported[-1]["CallDuration"], reported[-1]["SipResponseCode"]) == ("0", sip)
    assert ivr.requests_to("/voice") == []
    assert (call.status, call.duration) == (statuses[-1], 0)


async def test_personas_answer_in_order_then_the_default(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    ivr.routes["/voice"] = twiml("<Hangup/>")
    simulator.expect(PERSON, Persona.nobody("busy"), Persona.nobody("no-answer"))
    results = [await simulator.wait_for_call(await rest.call(ivr)) for _ in range(3)]
    assert [call.status for call in results] == ["busy", "no-answer", "completed"]


@pytest.mark.parametrize(
    ("detection", "persona", "answered_by"),
    [
        ("DetectMessageEnd", Persona.machine(), "machine_end_beep"),
        (
            "DetectMessageEnd",
            Persona.machine(machine_end="machine_end_silence"),
            "machine_end_silence",
        ),
        ("Enable", Persona.machine(), "machine_start"),
        ("Enable", Persona(), "human"),
        ("DetectMessageEnd", Persona(detected_as="unknown"), "unknown"),
    ],
)
async def test_machine_detection_reports_who_answered(
    rest: RestClient,
    simulator: Simulator,
    ivr: FakeIvr,
    detection: str,
    persona: Persona,
    answered_by: str,
) -> None:
    ivr.routes["/voice"] = twiml("<Say>Please call us back.</Say>", "<Hangup/>")
    simulator.expect(PERSON, persona)
    sid = await rest.call(ivr, MachineDetection=detection, StatusCallbackEvent=ALL_EVENTS)
    call = await simulator.wait_for_call(sid)
    (voice,) = ivr.requests_to("/voice")
    assert voice["AnsweredBy"] == answered_by
    assert int(voice["MachineDetectionDuration"]) > 0
    answered, completed = ivr.requests_to("/status")[2:]
    assert answered["AnsweredBy"] == completed["AnsweredBy"] == answered_by
    assert call.answered_by == answered_by
    assert [entry.text for entry in call.entries("say")] == ["Please call us back."]


async def test_an_answering_machine_stays_silent_through_a_gather(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    ivr.routes["/voice"] = twiml(
        '<Gather numDigits="1" action="/gathered"><Say>Press 1</Say></Gather>',
        "<Say>Goodbye</Say>",
    )
    simulator.expect(PERSON, Persona.machine())
    call = await simulator.wait_for_call(await rest.call(ivr, MachineDetection="DetectMessageEnd"))
    assert ivr.requests_to("/gathered") == []
    assert [e.kind for e in call.transcript] == ["say", "gather-timeout", "say", "hangup"]
