"""A recording that cannot be used is no answer, logged — never a 500, never a stuck call."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ivr.speech.audio import write_wav
from tests.telephony.fake_twilio_api import ACCOUNT, PREFIX, Planned
from tests.web.conftest import Server
from tests.web.test_twilio_webhooks import CALL_SID, action, path_of, twiml, voice_form

RECORDING_SID = "RE" + "5" * 32


async def answer_with_recording(server: Server) -> tuple[str, ET.Element]:
    """Start the inbound menu and post a recording of the caller's answer: (call ref, TwiML)."""
    doc = await twiml(await server.post("/twilio/voice", voice_form()))
    path = path_of(action(doc, "Record"), server)
    form = {
        "CallSid": CALL_SID,
        "AccountSid": ACCOUNT,
        "RecordingUrl": f"{server.twilio.base_url}{PREFIX}/Recordings/{RECORDING_SID}",
        "RecordingSid": RECORDING_SID,
        "RecordingDuration": "2",
    }
    answer = await twiml(await server.post(path, form))
    await server.calls.drain()
    return path.split("call=")[1].split("&")[0], answer


async def events_of(server: Server, ref: str) -> list[tuple[str, dict[str, object]]]:
    async with server.store.read() as tx:
        return [(e.kind, e.data) for e in await tx.events.list(ref)]


async def test_a_corrupt_recording_counts_as_no_input(server: Server) -> None:
    server.twilio.recordings[RECORDING_SID] = b"RIFF\x10\x00\x00\x00WAVEnot really audio"
    ref, answer = await answer_with_recording(server)
    assert answer.find("Record") is not None  # asked again, the call goes on
    events = await events_of(server, ref)
    [problem] = [data for kind, data in events if kind == "error"]
    assert "recording" in str(problem["problem"])
    assert ("NoInput", {}) in events
    assert ("Say", {"text": "Sorry, I did not hear you.", "language": "en-US"}) in events
    # Even a recording that could not be used is deleted at the provider.
    assert len(server.twilio.requests("DELETE", f"{RECORDING_SID}.json")) == 1


async def test_a_recording_the_provider_refuses_counts_as_no_input(server: Server) -> None:
    server.twilio.recordings[RECORDING_SID] = b"unused"
    server.twilio.plan("recording", Planned(403))
    ref, answer = await answer_with_recording(server)
    assert answer.find("Record") is not None
    events = await events_of(server, ref)
    [problem] = [data for kind, data in events if kind == "error"]
    assert problem["recording"] == f"{server.twilio.base_url}{PREFIX}/Recordings/{RECORDING_SID}"
    assert "403" in str(problem["problem"])
    assert ("NoInput", {}) in events


async def test_an_empty_recording_is_no_input_without_an_error(server: Server) -> None:
    server.twilio.recordings[RECORDING_SID] = write_wav(None, bytes(2 * 400), 8000)  # 50 ms
    ref, answer = await answer_with_recording(server)
    assert answer.find("Record") is not None
    events = await events_of(server, ref)
    assert [kind for kind, _ in events if kind == "error"] == []
    assert ("NoInput", {}) in events
    assert len(server.twilio.requests("DELETE", f"{RECORDING_SID}.json")) == 1
