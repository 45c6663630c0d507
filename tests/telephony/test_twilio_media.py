"""Twilio Media Streams frames, TwiML for <Connect><Stream>, and the live fields of plans."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from textwrap import dedent
from typing import Any

import pytest

from ivr.calls.media_session import keys_complete
from ivr.calls.playback import mark_name, parse_mark
from ivr.dialplan.loader import PlanLoadError, load_plan_text
from ivr.dialplan.schema import ListenSpec
from ivr.dialplan.vocabulary import HangUp, Listen, Say, Transfer
from ivr.telephony.twilio.media import (
    Connected,
    Dtmf,
    FrameError,
    Mark,
    Media,
    Start,
    Stop,
    parse_frame,
    render_clear,
    render_mark,
    render_media,
)
from ivr.telephony.twilio.twiml import render_after_prompts, render_connect

SID = "MZ" + "1" * 32
CALL = "CA" + "2" * 32
ACCOUNT = "AC" + "3" * 32


def start_frame(**changes: Any) -> dict[str, Any]:
    start = {
        "accountSid": ACCOUNT,
        "streamSid": SID,
        "callSid": CALL,
        "tracks": ["inbound"],
        "customParameters": {"call": "ref.sig"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    start.update(changes)
    return {"event": "start", "sequenceNumber": "1", "streamSid": SID, "start": start}


def media_frame(payload: str, sequence: str = "2") -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": sequence,
        "streamSid": SID,
        "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": payload},
    }


def test_every_frame_twilio_documents_parses() -> None:
    assert parse_frame('{"event": "connected", "protocol": "Call", "version": "1.0.0"}') == (
        Connected("Call", "1.0.0")
    )
    start = parse_frame(json.dumps(start_frame()))
    assert start == Start(1, SID, ACCOUNT, CALL, ("inbound",), {"call": "ref.sig"})
    audio = b"\xff\x7f" * 80
    media = parse_frame(json.dumps(media_frame(base64.b64encode(audio).decode())))
    assert media == Media(2, SID, "inbound", 1, 5, audio)
    dtmf = {"event": "dtmf", "sequenceNumber": "3", "streamSid": SID,
            "dtmf": {"track": "inbound_track", "digit": "#"}}  # fmt: skip
    assert parse_frame(json.dumps(dtmf)) == Dtmf(3, SID, "#")
    mark = {"event": "mark", "sequenceNumber": "4", "streamSid": SID, "mark": {"name": "t1p0"}}
    assert parse_frame(json.dumps(mark)) == Mark(4, SID, "t1p0")
    stop = {"event": "stop", "sequenceNumber": "5", "streamSid": SID,
            "stop": {"accountSid": ACCOUNT, "callSid": CALL}}  # fmt: skip
    assert parse_frame(json.dumps(stop)) == Stop(5, SID, ACCOUNT, CALL)


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"event": "hello"}', "event: unknown event 'hello'"),
        ('{"event": 5}', "event: unknown event 5"),
        (json.dumps(media_frame("%%%")), "media.payload: not base64"),
        (json.dumps(media_frame("AAAA", sequence="two")), "sequenceNumber: missing or not"),
        (json.dumps(media_frame("AAAA", sequence="-1")), "sequenceNumber: missing or not"),
        (json.dumps({**media_frame("AAAA"), "streamSid": 7}), "streamSid: missing or not"),
        (json.dumps({**media_frame("AAAA"), "media": "x"}), "media: missing or not an object"),
        (
            json.dumps(
                start_frame(
                    mediaFormat={"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
                )
            ),
            "start.mediaFormat",
        ),
        (json.dumps(start_frame(streamSid="MZother")), "start.streamSid: differs"),
        (json.dumps(start_frame(customParameters={"call": 5})), "start.customParameters"),
        (
            json.dumps(
                {"event": "dtmf", "sequenceNumber": "3", "streamSid": SID, "dtmf": {"digit": "A"}}
            ),
            "dtmf.digit: 'A' is not a key",
        ),
        (
            json.dumps({"event": "mark", "sequenceNumber": "3", "streamSid": SID, "mark": {}}),
            "mark.name: missing",
        ),
    ],
)
def test_anything_else_is_a_frame_error_naming_the_field(frame: str, problem: str) -> None:
    with pytest.raises(FrameError, match=problem.replace("(", r"\(").replace("[", r"\[")):
        parse_frame(frame)


def test_frames_to_twilio() -> None:
    assert json.loads(render_media(SID, b"\x01\x02")) == {
        "event": "media", "streamSid": SID, "media": {"payload": "AQI="}}  # fmt: skip
    assert json.loads(render_mark(SID, "t1p0")) == {
        "event": "mark", "streamSid": SID, "mark": {"name": "t1p0"}}  # fmt: skip
    assert json.loads(render_clear(SID)) == {"event": "clear", "streamSid": SID}
    with pytest.raises(ValueError, match="mark name"):
        render_mark(SID, "")


def test_connect_stream_twiml() -> None:
    twiml = render_connect(
        "wss://ivr.example/twilio/stream",
        "https://ivr.example/twilio/stream-ended?call=abc&turn=2",
        {"call": "abc.sig"},
    )
    doc = ET.fromstring(twiml)
    connect = doc.find("Connect")
    assert connect is not None
    action = "https://ivr.example/twilio/stream-ended?call=abc&turn=2"
    assert connect.attrib == {"action": action, "method": "POST"}
    stream = connect.find("Stream")
    assert stream is not None
    assert stream.get("url") == "wss://ivr.example/twilio/stream"
    assert [p.attrib for p in stream] == [{"name": "call", "value": "abc.sig"}]
    with pytest.raises(ValueError, match="wss"):
        render_connect("https://ivr.example/twilio/stream", "https://x/", {})
    with pytest.raises(ValueError, match="query string"):
        render_connect("wss://ivr.example/twilio/stream?call=1", "https://x/", {})


def test_after_prompts_only_the_ending_remains() -> None:
    said = Say("Connecting you now.", "en-US")
    assert "<Dial>+12025550123</Dial>" in render_after_prompts([said, Transfer("+12025550123")])
    assert render_after_prompts([said, HangUp()]).endswith("<Response><Hangup /></Response>")
    assert "Connecting" not in render_after_prompts([said, HangUp()])


def test_marks_name_their_turn_and_prompt() -> None:
    assert parse_mark(mark_name(12, 3)) == (12, 3)
    assert parse_mark("t1") is None
    assert parse_mark("x1p2") is None
    assert parse_mark("tp") is None


def test_keys_complete_a_listen() -> None:
    intents = Listen("menu", ListenSpec(intents={"a": {"press": "1"}}), "en-US")
    assert keys_complete(intents, "1")
    digits = Listen("n", ListenSpec(digits={"min": 2, "max": 4, "finish_on": "#"}), "en-US")
    assert not keys_complete(digits, "12")
    assert keys_complete(digits, "12#")
    assert keys_complete(digits, "1234")
    no_finish = Listen("n", ListenSpec(digits={"max": 3, "finish_on": None}), "en-US")
    assert not keys_complete(no_finish, "1#")


PLAN = """
id: demo
direction: inbound
language: en-US
numbers: ["+15550100"]
start: s
states:
  s:
    say: Hello.
    barge_in: {barge_in}
    listen:
      intents: {{a: {{press: "1"}}}}
      end_silence: {end_silence}
    on: {{a: s, failed: s}}
"""


def test_barge_in_and_end_silence_in_plans() -> None:
    plan = load_plan_text(dedent(PLAN.format(barge_in="false", end_silence="300ms")))
    state = plan.states["s"]
    assert state.barge_in is False
    assert state.listen is not None
    assert state.listen.end_silence == pytest.approx(0.3)
    default = load_plan_text(dedent(PLAN.format(barge_in="true", end_silence="500ms")))
    assert default.states["s"].barge_in is True
    with pytest.raises(PlanLoadError, match="end_silence must be between 100ms and 5s"):
        load_plan_text(dedent(PLAN.format(barge_in="true", end_silence="20ms")))
    with pytest.raises(PlanLoadError, match="barge_in"):
        load_plan_text(dedent(PLAN.format(barge_in="maybe", end_silence="500ms")))
