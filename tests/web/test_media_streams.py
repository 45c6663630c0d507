"""Calls over Twilio Media Streams: real WebSockets, a real server, real audio.

The far end is ``tests/web/stream_client.py``, Twilio's side of the protocol written from
its documentation (not the server's codec). Caller speech is espeak-ng through the TTS
service in a caller voice (``CallerVoice``); recognition is PocketSphinx with the state's
grammar. No assertion is about how fast anything happened.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from ivr.dialplan.session import Session
from ivr.simulation.voice import CallerVoice, read_telephone_audio
from tests.conftest import FSDD
from tests.telephony.fake_twilio_api import ACCOUNT
from tests.web.conftest import CALLER, SHOP_LINE, Server, start_server
from tests.web.stream_client import Heard, StreamCall

CALL_SID = "CA" + "5" * 32
# The far end plays and speaks TIME_SCALE real seconds per second of audio, and the server
# paces its prompts to match (stream_pace): the calls take less than their audio would.
# Listening timeouts stay in real seconds (only more lenient with a caller who is sooner).
TIME_SCALE = 0.5
NOTICE_LINE = "+15550177"
NOTICE_PLAN = """
id: notice_line
direction: inbound
language: en-US
numbers: ["+15550177"]
start: notice
states:
  notice:
    say: This call is recorded.
    barge_in: false
    next: menu
  menu:
    say: For sales, say sales or press 1.
    listen:
      intents: {sales: {say: [sales], press: "1"}}
      timeout: 3s
      end_silence: 400ms
    on: {sales: bye, failed: bye}
  bye:
    say: Goodbye.
    hangup: true
"""
PIN_LINE = "+15550178"
PIN_PLAN = """
id: pin_line
direction: inbound
language: en-US
numbers: ["+15550178"]
start: pin
states:
  pin:
    say: Type your PIN.
    listen:
      digits: {min: 4, max: 8, finish_on: "#", confirm: never}
      into: pin
      timeout: 2s
      no_match: A PIN has 4 to 8 digits.
    next: thanks
    on: {failed: thanks}
  thanks:
    say: Thank you.
    hangup: true
"""


@pytest.fixture(autouse=True)
def no_session_failures(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A session that fails closes its stream and the call resumes: tests would still pass,
    so every failure logged by the stream route fails the test instead."""
    yield
    failures = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("ivr.") and r.levelname == "ERROR"
    ]
    assert not failures


@pytest.fixture
async def orders(aiohttp_server: AiohttpServer) -> str:
    async def order(request: web.Request) -> web.Response:
        return web.json_response({"status": "shipped", "number": request.match_info["number"]})

    app = web.Application()
    app.router.add_get("/orders/{number}", order)
    return str((await aiohttp_server(app)).make_url("")).rstrip("/")


@pytest.fixture
async def server(
    tmp_path: Path, aiohttp_server: AiohttpServer, orders: str
) -> AsyncIterator[Server]:
    plans = tmp_path / "plans"
    plans.mkdir()
    shipped = Path(__file__).resolve().parents[2] / "dialplans"
    for name in ("order_status_line", "appointment_reminder"):
        (plans / f"{name}.yaml").write_text((shipped / f"{name}.yaml").read_text())
    (plans / "notice_line.yaml").write_text(NOTICE_PLAN)
    (plans / "pin_line.yaml").write_text(PIN_PLAN)
    async with aiohttp.ClientSession() as http:
        yield await start_server(
            tmp_path,
            aiohttp_server,
            http,
            twilio_media="stream",
            stream_pace=TIME_SCALE,
            dialplans=plans,
            plan_variables={"order_status_line": {"orders_api": orders}},
        )


def voice_form(to: str = SHOP_LINE, call_sid: str = CALL_SID) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT,
        "From": CALLER,
        "To": to,
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }


async def webhook(server: Server, url: str, form: dict[str, str]) -> str:
    assert url.startswith(server.url), url
    response = await server.post(url[len(server.url) :], form)
    assert response.status == 200
    return await response.text()


async def answer(server: Server, to: str = SHOP_LINE, call_sid: str = CALL_SID) -> StreamCall:
    """Ring the line; the server answers with <Connect><Stream>; open the stream."""
    twiml = await webhook(server, server.url + "/twilio/voice", voice_form(to, call_sid))
    call = StreamCall(server.http, twiml, call_sid, time_scale=TIME_SCALE)
    await call.open()
    return call


async def after_stream(server: Server, call: StreamCall) -> ET.Element:
    """What Twilio does when <Connect> ends: request its action URL."""
    form = {"CallSid": call.call_sid, "AccountSid": ACCOUNT, "CallStatus": "in-progress"}
    return ET.fromstring(await webhook(server, call.action, form))


async def stored(server: Server, call_sid: str = CALL_SID) -> Session:
    async with server.store.read() as tx:
        record = await tx.calls.get_by_sid(call_sid)
    assert record is not None
    return Session.from_json(record.session_json)


async def live_heard(server: Server, call_sid: str = CALL_SID) -> list[dict[str, Any]]:
    """The ``live_heard`` entries of the call's event log: how each turn's prompts went."""
    async with server.store.read() as tx:
        record = await tx.calls.get_by_sid(call_sid)
        assert record is not None
        return [e.data for e in await tx.events.list(record.id) if e.kind == "live_heard"]


def played(seconds: float, after: int = 0) -> Any:
    """Predicate: at least ``seconds`` of audio arrived after log entry ``after``."""
    return lambda heard: sum(len(v) for k, v in heard.log[after:] if k == "media") >= 8000 * seconds


def has(kind: str, value: Any = None, after: int = 0) -> Any:
    return lambda heard: any(
        k == kind and (value is None or v == value) for k, v in heard.log[after:]
    )


def index(heard: Heard, kind: str, value: Any = None) -> int:
    return next(
        i for i, (k, v) in enumerate(heard.log) if k == kind and (value is None or v == value)
    )


async def speak(text: str) -> bytes:
    return await CallerVoice([FSDD]).speak(text, "en-US")


async def test_the_answer_webhook_connects_a_stream_with_a_signed_call_reference(
    server: Server,
) -> None:
    twiml = await webhook(server, server.url + "/twilio/voice", voice_form())
    doc = ET.fromstring(twiml)
    assert [child.tag for child in doc] == ["Connect"]
    call = StreamCall(server.http, twiml, CALL_SID, time_scale=TIME_SCALE)
    port = server.url.rsplit(":", 1)[1]
    assert call.url == f"wss://127.0.0.1:{port}/twilio/stream"
    assert "/twilio/stream-ended?" in call.action
    assert set(call.parameters) == {"call"}


async def test_menu_answered_by_keys_over_the_stream(server: Server) -> None:
    call = await answer(server)
    await call.wait(played(1.0))  # the menu is playing
    await call.press("1")
    await call.wait(has("clear"))  # the key cut the menu
    await call.wait(has("mark", "t2p0"))  # "Please say or type your order number" was sent
    start = len(call.heard.log)
    for key in "4207#":
        await call.press(key)
    # The lookup answers; "Order 4207 is shipped" and the next menu play; 2 is goodbye.
    await call.wait(has("mark", "t3p0", after=start))
    await call.wait(played(0.5, after=index(call.heard, "mark", "t3p0")))
    await call.press("2")
    await call.wait_closed()  # goodbye heard: the server closes the stream
    assert call.heard.log[-1] == ("echo", "t4p0")
    doc = await after_stream(server, call)
    assert [child.tag for child in doc] == ["Hangup"]
    session = await stored(server)
    assert session.ended
    assert session.variables["order_number"] == "4207"
    assert session.outcome == "status_told"
    await call.close()


async def test_menu_answered_by_voice_while_it_plays(server: Server) -> None:
    order = await speak("order")
    call = await answer(server)
    await call.wait(played(1.5))
    await call.say(order)
    await call.wait(has("mark", "t2p0"))  # the next turn's prompt: the voice was understood
    heard = call.heard
    # Barge-in: the server cleared the menu before the caller had heard it all (its mark,
    # if it was sent at all, comes back only with the clear).
    cleared = index(heard, "clear")
    assert ("echo", "t1p0") not in heard.log[:cleared]
    session = await stored(server)
    assert session.state == "ask_number"
    assert (await live_heard(server))[0] == {
        "turn": 1, "prompts": 1, "heard": 0, "barge_in": "speech"}  # fmt: skip
    await call.hang_up()


def fsdd_number(digits: str, speaker: str = "jackson", take: int = 1) -> bytes:
    """A number spoken digit by digit by a real voice (FSDD recordings, 150 ms apart).

    PocketSphinx decodes this speaker's take 1 of 4-2-0-7 as "four two zero seven" with a
    high confidence; espeak's digits are not recognized reliably (see RECOGNITION_GAPS)."""
    gap = b"\x00\x00" * 1200
    return gap.join(read_telephone_audio(FSDD / f"{d}_{speaker}_{take}.wav") for d in digits)


async def test_order_number_spoken_over_the_stream(server: Server) -> None:
    number = fsdd_number("4207")
    call = await answer(server)
    await call.wait(played(0.5))
    await call.press("1")
    await call.wait(has("echo", "t2p0"))  # "Please say or type your order number" heard
    await call.say(number)
    # Spoken digits go to the engine: a confident 4207 goes to the lookup; an unsure one is
    # read back ("I heard ...") and confirmed with 1.
    await call.wait(lambda h: any(k == "mark" and v.startswith("t3") for k, v in h.log))
    session = await stored(server)
    if session.confirming is not None:
        assert session.confirming == "4207"
        await call.press("1")
        await call.wait(lambda h: any(k == "mark" and v.startswith("t4") for k, v in h.log))
        session = await stored(server)
    assert session.variables["order_number"] == "4207"
    assert session.state == "anything_else"
    await call.hang_up()


async def test_outbound_reminder_confirmed_by_voice(server: Server) -> None:
    yes = await speak("yes")
    variables = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"}
    placed = await server.calls.place_call("+12025550143", "appointment_reminder", variables)
    assert placed.provider_sid is not None
    form = {
        "CallSid": placed.provider_sid,
        "AccountSid": ACCOUNT,
        "From": "+12025550100",
        "To": "+12025550143",
        "CallStatus": "in-progress",
        "AnsweredBy": "human",
    }
    twiml = await webhook(server, f"{server.url}/twilio/voice?call={placed.id}", form)
    call = StreamCall(server.http, twiml, placed.provider_sid, time_scale=TIME_SCALE)
    await call.open()
    await call.wait(has("mark", "t1p0"))  # the greeting was sent; the question follows
    await call.wait(played(1.0, after=index(call.heard, "mark", "t1p0")))
    await call.say(yes)  # while the question plays
    await call.wait_closed()  # "... confirmed. Goodbye." heard, the stream ends
    assert "clear" in call.heard.kinds()
    doc = await after_stream(server, call)
    assert [child.tag for child in doc] == ["Hangup"]
    async with server.store.read() as tx:
        record = await tx.calls.get(placed.id)
    assert record is not None
    assert record.outcome == "confirmed"
    await call.close()


async def test_a_notice_with_barge_in_false_is_heard_whole(server: Server) -> None:
    call = await answer(server, NOTICE_LINE)
    await call.wait(played(0.3))
    await call.press("1")  # during the notice: ignored, nothing cleared
    await call.wait(has("echo", "t1p0"))  # the notice played to its end
    await call.wait(played(0.3, after=index(call.heard, "echo", "t1p0")))
    await call.press("1")  # during the menu: taken
    await call.wait_closed()
    heard = call.heard
    assert index(heard, "clear") > index(heard, "echo", "t1p0")
    # The notice was heard whole, the menu after it was cut by the key.
    assert (await live_heard(server))[0] == {
        "turn": 1, "prompts": 2, "heard": 1, "barge_in": "key"}  # fmt: skip
    assert ("mark", "t2p0") in heard.log  # goodbye, then the stream ends
    doc = await after_stream(server, call)
    assert [child.tag for child in doc] == ["Hangup"]
    assert (await stored(server)).ended
    await call.close()


async def test_silence_runs_the_no_input_retry_from_the_marks_echo(server: Server) -> None:
    call = await answer(server, NOTICE_LINE)
    # Nothing said: 3 s after the menu was heard, "Sorry..." is skipped (no no_input text),
    # the menu is asked again (turn 2), then once more, then failed -> goodbye.
    await call.wait(has("mark", "t2p0"), timeout=90)
    session = await stored(server)
    assert session.state == "menu"
    assert session.retries == 1
    await call.hang_up()


async def test_a_dropped_websocket_resumes_through_the_action_url(server: Server) -> None:
    call = await answer(server)
    await call.wait(played(0.5))
    await call.press("1")
    await call.wait(has("mark", "t2p0"))
    await call.close()  # the network fails mid-call: no stop frame
    doc = await after_stream(server, call)
    resumed = StreamCall(
        server.http, ET.tostring(doc, encoding="unicode"), CALL_SID, time_scale=TIME_SCALE
    )
    assert resumed.parameters == call.parameters
    await resumed.open()
    # The stored turn plays again: the number question, then keys carry on.
    await resumed.wait(has("mark", "t2p0"))
    for key in "4207#":
        await resumed.press(key)
    await resumed.wait(has("mark", "t3p0"))
    assert (await stored(server)).variables["order_number"] == "4207"
    await resumed.hang_up()


async def test_a_forged_upgrade_is_refused_before_upgrading(server: Server) -> None:
    twiml = await webhook(server, server.url + "/twilio/voice", voice_form())
    call = StreamCall(server.http, twiml, CALL_SID, time_scale=TIME_SCALE)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await call.open(signature="forged")
    assert refused.value.status == 403
    # Signed over the http:// URL instead of the wss:// one Twilio requests: refused too.
    from ivr.telephony.twilio import sign
    from tests.telephony.fake_twilio_api import TOKEN

    http_url = "http://" + call.url.removeprefix("wss://")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await call.open(signature=sign(TOKEN, http_url, {}))
    assert refused.value.status == 403


async def test_garbage_frames_are_ignored_and_the_call_goes_on(server: Server) -> None:
    call = await answer(server)
    await call.wait(played(0.3))
    await call.send_raw("this is not json")
    await call.send_raw(b"\x00\x01binary")
    await call.send_raw(
        '{"event": "media", "sequenceNumber": "9999", "streamSid": "'
        + call.stream_sid
        + '", "media": {"payload": "%%%not base64"}}'
    )
    await call.send_raw(
        '{"event": "dtmf", "sequenceNumber": "99999", "streamSid": "MZother",'
        ' "dtmf": {"track": "inbound_track", "digit": "0"}}'
    )
    await call.send_raw(
        '{"event": "dtmf", "sequenceNumber": "1", "streamSid": "'
        + call.stream_sid
        + '", "dtmf": {"track": "inbound_track", "digit": "0"}}'
    )
    await call.send_raw('{"event": "surprise"}')
    await call.send_raw("[1, 2, 3]")
    await call.press("1")  # a good key still works: order, not the forged 0 (operator)
    await call.wait(has("mark", "t2p0"))
    assert (await stored(server)).state == "ask_number"
    await call.hang_up()


async def test_a_stream_for_an_unknown_or_ended_call_is_closed(server: Server) -> None:
    twiml = await webhook(server, server.url + "/twilio/voice", voice_form())
    # A parameter this server never signed.
    forged = StreamCall(server.http, twiml, CALL_SID, time_scale=TIME_SCALE)
    forged.parameters = {"call": "nosuchcall.0123456789abcdef0123456789abcdef"}
    await forged.open()
    await forged.wait_closed(timeout=10)
    assert forged.heard.audio_bytes() == 0
    await forged.close()
    # The right reference with another CallSid.
    other = StreamCall(server.http, twiml, "CA" + "6" * 32, time_scale=TIME_SCALE)
    await other.open()
    await other.wait_closed(timeout=10)
    assert other.heard.audio_bytes() == 0
    await other.close()
    # The call ended (the caller hung up): a late stream gets nothing either.
    status = {**voice_form(), "CallStatus": "completed", "CallDuration": "3"}
    response = await server.post("/twilio/status", status)
    assert response.status == 204
    late = StreamCall(server.http, twiml, CALL_SID, time_scale=TIME_SCALE)
    await late.open()
    await late.wait_closed(timeout=10)
    assert late.heard.audio_bytes() == 0
    await late.close()
    assert [c.tag for c in await after_stream(server, late)] == ["Hangup"]


async def test_a_new_stream_for_the_call_replaces_one_left_open(server: Server) -> None:
    first = await answer(server)
    await first.wait(played(0.3))
    # Twilio has given up on the first socket (the server never noticed) and connects again.
    second = StreamCall(server.http, ET.tostring(await after_stream(server, first), "unicode"),
                        CALL_SID, time_scale=TIME_SCALE)  # fmt: skip
    await second.open()
    await first.wait_closed(timeout=10)
    await second.wait(played(0.3))
    await second.press("1")
    await second.wait(has("mark", "t2p0"))
    assert (await stored(server)).state == "ask_number"
    await second.hang_up()
    await first.close()


async def test_digits_end_on_a_pause_between_keys(server: Server) -> None:
    call = await answer(server, PIN_LINE)
    await call.wait(has("echo", "t1p0"))
    await call.press("4")
    await call.press("2")  # then nothing: the pause ends the number, too short
    await call.wait(has("mark", "t2p1"))  # "A PIN has 4 to 8 digits." and the question again
    assert (await stored(server)).retries == 1
    for key in "4207":
        await call.press(key)
    await call.wait_closed()  # no finish key: the pause after the fourth key ends it
    session = await stored(server)
    assert session.variables["pin"] == "4207"
    assert session.ended
    await call.close()


async def test_marks_that_never_come_back_do_not_stall_the_call(server: Server) -> None:
    twiml = await webhook(server, server.url + "/twilio/voice", voice_form(NOTICE_LINE))
    call = StreamCall(server.http, twiml, CALL_SID, echo_marks=False, time_scale=TIME_SCALE)
    await call.open()
    # No echo ever: once the audio's expected end plus a grace has passed the prompts count as
    # heard, the listening timeout runs, and the silence gets the menu again (turn 2).
    await call.wait(has("mark", "t2p0"), timeout=90)
    assert call.echoes() == 0
    assert (await stored(server)).retries == 1
    await call.hang_up()


async def test_a_transfer_closes_the_stream_and_the_action_url_dials(server: Server) -> None:
    call = await answer(server)
    await call.wait(played(0.5))
    await call.press("0")  # operator
    await call.wait_closed()  # "Connecting you now. Please hold." heard, then the stream ends
    assert call.heard.log[-1] == ("echo", "t2p0")
    doc = await after_stream(server, call)
    assert [(child.tag, child.text) for child in doc] == [("Dial", "+12025550123")]
    # A repeated delivery of the action URL answers the same.
    again = await after_stream(server, call)
    assert ET.tostring(again) == ET.tostring(doc)
    await call.close()


async def test_a_peer_that_only_sends_garbage_is_closed_and_the_call_resumes(
    server: Server,
) -> None:
    call = await answer(server)
    await call.wait(played(0.2))
    for _ in range(60):
        await call.send_raw("{not json")
    await call.wait_closed(timeout=20)
    doc = await after_stream(server, call)
    assert [child.tag for child in doc] == ["Connect"]  # the stored turn goes on
    await call.close()


def test_stream_urls_and_signed_call_references() -> None:
    from ivr.telephony.twilio.dialect import sign_call_ref, stream_url, verify_call_ref

    assert stream_url("https://ivr.example") == "wss://ivr.example/twilio/stream"
    assert (
        stream_url("https://ivr.example:8443/voice/")
        == "wss://ivr.example:8443/voice/twilio/stream"
    )
    secret = b"k" * 32
    signed = sign_call_ref(secret, "abc")
    assert verify_call_ref(secret, signed) == "abc"
    assert verify_call_ref(b"other" * 8, signed) is None
    assert verify_call_ref(secret, "abd" + signed[3:]) is None
    assert verify_call_ref(secret, "abc") is None
    assert verify_call_ref(secret, "") is None
