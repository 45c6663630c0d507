"""Webhooks that must be refused (or only acknowledged) and change nothing in the database."""

from __future__ import annotations

import json
import re
from pathlib import Path

from aiohttp.test_utils import unused_port
from pytest_aiohttp import AiohttpServer

from ivr.config import Settings
from ivr.store import Direction
from ivr.telephony.simulator import Persona
from ivr.telephony.twilio import SIGNATURE_HEADER, sign
from ivr.telephony.twilio.urls import opaque
from ivr.web.app import SIMULATOR, AppParts, create_app
from ivr.web.keys import CALLS
from tests.conftest import DIALPLANS
from tests.telephony.fake_twilio_api import ACCOUNT, TOKEN
from tests.web.conftest import CALLER, SHOP_LINE, Server
from tests.web.snapshot import snapshot
from tests.web.test_twilio_webhooks import CALL_SID, twiml, voice_form

OTHER_CALL = "CA" + "7" * 32
OTHER_ACCOUNT = "AC" + "f" * 32
FORM = "application/x-www-form-urlencoded"


async def started_call(server: Server) -> tuple[str, str]:
    """An inbound call at its first menu: (call reference, the gather path of turn 1)."""
    doc = await twiml(await server.post("/twilio/voice", voice_form()))
    action = doc.find(".//Gather").get("action")  # type: ignore[union-attr]
    assert action is not None
    path = action.removeprefix(server.url)
    match = re.search(r"call=([\w-]+)&turn=1$", path)
    assert match is not None, path
    return match.group(1), path


async def test_status_callbacks_of_a_declined_call_are_acknowledged(server: Server) -> None:
    """A call no plan answers is declined; its status callbacks still get a 2xx (no 11200)."""
    doc = await twiml(await server.post("/twilio/voice", voice_form(to="+12025550199")))
    assert [child.tag for child in doc] == ["Say", "Hangup"]
    before = await snapshot(server.store)
    base = {"CallSid": CALL_SID, "AccountSid": ACCOUNT}
    for status in ("in-progress", "completed"):
        answer = await server.post("/twilio/status", {**base, "CallStatus": status})
        assert answer.status == 204
    unknown_ref = await server.post("/twilio/status?call=nope", {**base, "CallStatus": "busy"})
    assert unknown_ref.status == 204
    sms = {"MessageSid": "SM" + "1" * 32, "AccountSid": ACCOUNT, "MessageStatus": "delivered"}
    assert (await server.post("/twilio/sms-status?sms=nope", sms)).status == 204
    assert (await server.post("/twilio/sms-status", sms)).status == 204
    assert await snapshot(server.store) == before


async def test_another_account_is_refused_even_when_signed(server: Server) -> None:
    foreign = await server.post("/twilio/voice", voice_form(AccountSid=OTHER_ACCOUNT))
    assert foreign.status == 403
    assert all(rows == [] for rows in (await snapshot(server.store)).values())
    _, gather = await started_call(server)
    before = await snapshot(server.store)
    keys = {"CallSid": CALL_SID, "AccountSid": OTHER_ACCOUNT, "Digits": "1"}
    assert (await server.post(gather, keys)).status == 403
    status = {"CallSid": CALL_SID, "AccountSid": OTHER_ACCOUNT, "CallStatus": "completed"}
    assert (await server.post("/twilio/status", status)).status == 403
    assert await snapshot(server.store) == before


async def test_a_callsid_of_another_call_is_refused(server: Server) -> None:
    ref, gather = await started_call(server)
    before = await snapshot(server.store)
    other = {"CallSid": OTHER_CALL, "AccountSid": ACCOUNT}
    keys = await server.post(gather, {**other, "Digits": "1"})
    assert keys.status == 400
    no_input = await server.post(f"/twilio/no-input?call={ref}&turn=1", other)
    assert no_input.status == 400
    record = {**other, "RecordingUrl": "https://api.twilio.com/rec/RE1", "RecordingSid": "RE1"}
    assert (await server.post(f"/twilio/record?call={ref}&turn=1", record)).status == 400
    ended = await server.post(f"/twilio/status?call={ref}", {**other, "CallStatus": "completed"})
    assert ended.status == 400
    answer = await server.post(f"/twilio/voice?call={ref}", voice_form(call_sid=OTHER_CALL))
    assert answer.status == 400
    assert await snapshot(server.store) == before


async def test_a_turn_from_the_future_is_refused(server: Server) -> None:
    ref, gather = await started_call(server)
    before = await snapshot(server.store)
    keys = {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "Digits": "1"}
    ahead = await server.post(gather.replace("turn=1", "turn=9"), keys)
    assert ahead.status == 400
    assert (await server.post(f"/twilio/no-input?call={ref}&turn=2", keys)).status == 400
    recording = {**keys, "RecordingUrl": "https://api.twilio.com/rec/RE1", "RecordingSid": "RE1"}
    assert (await server.post(f"/twilio/record?call={ref}&turn=2", recording)).status == 400
    wait = f"recording={opaque('https://api.twilio.com/rec/RE1')}&sid=RE1&waits=1"
    waiting = await server.post(f"/twilio/recognizing?call={ref}&turn=2&{wait}", keys)
    assert waiting.status == 400
    assert "ahead of call" in await waiting.text()
    other = await server.post(
        f"/twilio/recognizing?call={ref}&turn=1&{wait}", {**keys, "CallSid": OTHER_CALL}
    )
    assert other.status == 400
    assert await snapshot(server.store) == before
    assert (await server.post(gather, keys)).status == 200  # the real turn still works


async def test_a_json_body_is_a_400(server: Server) -> None:
    await started_call(server)
    before = await snapshot(server.store)
    url = server.url + "/twilio/voice"
    # Signed as Twilio would sign a request without form parameters, so only the type is wrong.
    headers = {SIGNATURE_HEADER: sign(TOKEN, url, {}), "Content-Type": "application/json"}
    body = json.dumps(voice_form(call_sid=OTHER_CALL))
    async with server.http.post(url, data=body, headers=headers) as response:
        assert response.status == 400
        assert "application/x-www-form-urlencoded" in await response.text()
    assert await snapshot(server.store) == before


async def test_a_malformed_sms_status_is_a_400(server: Server) -> None:
    good = {"MessageSid": "SM" + "2" * 32, "AccountSid": ACCOUNT, "MessageStatus": "delivered"}
    before = await snapshot(server.store)
    for form in (
        {k: v for k, v in good.items() if k != "MessageStatus"},
        {**good, "MessageStatus": "exploded"},
        {**good, "MessageSid": "not a sid!"},
        {**good, "ErrorCode": "thirty"},
        {k: v for k, v in good.items() if k != "MessageSid"},
    ):
        answer = await server.post("/twilio/sms-status", form)
        assert answer.status == 400, form
    assert await snapshot(server.store) == before


async def test_an_sms_status_for_another_message_is_refused(server: Server) -> None:
    """A delivery report whose MessageSid is not the message its URL names changes nothing."""
    async with server.store.transaction() as tx:
        message = await tx.sms.create(
            direction=Direction.OUTBOUND,
            from_number=SHOP_LINE,
            to_number="+12025550142",
            body="Hi",
            provider_sid="SM" + "3" * 32,
        )
    before = await snapshot(server.store)
    report = {"MessageSid": "SM" + "4" * 32, "AccountSid": ACCOUNT, "MessageStatus": "failed"}
    answer = await server.post(f"/twilio/sms-status?sms={message.id}", report)
    assert answer.status == 400
    assert await snapshot(server.store) == before


async def test_a_form_that_cannot_be_decoded_is_a_400(server: Server) -> None:
    """Each of these was a 500 (found by test_bad_input_properties.py)."""
    _, gather = await started_call(server)
    before = await snapshot(server.store)
    url = server.url + gather
    keys = {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "Digits": "1"}
    form = "&".join(f"{name}={value}" for name, value in keys.items())
    for body, content_type, says in (
        # A byte that is not UTF-8 (the charset a form has when it names none).
        ((form + "&Note=caf\xe9").encode("latin-1"), FORM, "can't decode byte 0xe9"),
        (form.encode(), f"{FORM}; charset=no-such-charset", "unknown encoding"),
        # Multipart is not read at all (no file is taken in before the signature is checked);
        # aiohttp raised on one without its boundary.
        (b"--zz\r\nnot multipart", "multipart/form-data; boundary=zz", FORM),
        (b"", "multipart/form-data", "CallSid: missing"),  # no body: no parameters at all
    ):
        # Signed over the parameters the body carries, as Twilio would have signed them.
        headers = {SIGNATURE_HEADER: sign(TOKEN, url, keys), "Content-Type": content_type}
        if content_type.startswith("multipart"):
            headers[SIGNATURE_HEADER] = sign(TOKEN, url, {})
        async with server.http.post(url, data=body, headers=headers) as response:
            assert response.status == 400, (content_type, await response.text())
            assert says in await response.text()
    assert await snapshot(server.store) == before
    assert (await server.post(gather, keys)).status == 200  # the same keys, as a form


async def test_a_signed_field_holding_nul_is_a_400(server: Server) -> None:
    """PostgreSQL stores no NUL: refused before anything is written, signature checked first."""
    _, gather = await started_call(server)
    before = await snapshot(server.store)
    keys = {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "Digits": "1\x00"}
    answer = await server.post(gather, keys)
    assert answer.status == 400
    assert "'Digits': holds a NUL character" in await answer.text()
    unsigned = await server.http.post(server.url + gather, data=keys)
    assert unsigned.status == 403
    assert await snapshot(server.store) == before


async def test_every_webhook_refuses_another_account_and_json(server: Server) -> None:
    """Not only the call webhooks: /twilio/sms and /twilio/sms-status too."""
    sms = {"MessageSid": "SM" + "5" * 32, "From": "+12025550142", "To": SHOP_LINE, "Body": "STOP"}
    report = {"MessageSid": "SM" + "5" * 32, "MessageStatus": "delivered"}
    for path, form in (("/twilio/sms", sms), ("/twilio/sms-status", report)):
        foreign = await server.post(path, {**form, "AccountSid": OTHER_ACCOUNT})
        assert foreign.status == 403, path
        url = server.url + path
        headers = {SIGNATURE_HEADER: sign(TOKEN, url, {}), "Content-Type": "application/json"}
        body = json.dumps({**form, "AccountSid": ACCOUNT})
        async with server.http.post(url, data=body, headers=headers) as response:
            assert response.status == 400, path
    assert all(rows == [] for rows in (await snapshot(server.store)).values())  # no STOP taken


async def test_a_count_out_of_range_is_a_400(server: Server) -> None:
    """A 20-digit CallDuration was a 500 (the database's integer overflowed)."""
    ref, _ = await started_call(server)
    before = await snapshot(server.store)
    status = {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "CallStatus": "completed"}
    for duration in ("9" * 30, str(2**31), "1" * 5000):
        answer = await server.post(
            f"/twilio/status?call={ref}", {**status, "CallDuration": duration}
        )
        assert answer.status == 400
        text = await answer.text()
        assert text.startswith("CallDuration: ")
        assert "out of range" in text
        assert len(text) < 200  # the value is not echoed back whole
    report = {"MessageSid": "SM" + "2" * 32, "AccountSid": ACCOUNT, "MessageStatus": "failed"}
    answer = await server.post("/twilio/sms-status", {**report, "ErrorCode": "9" * 20})
    assert answer.status == 400
    assert await snapshot(server.store) == before
    longest = {**status, "CallDuration": str(2**31 - 1)}
    assert (await server.post(f"/twilio/status?call={ref}", longest)).status == 204


async def test_a_value_with_a_trailing_newline_is_refused(server: Server) -> None:
    """ "$" in the patterns matched before a final newline: "+12025550142\\n" was stored."""
    ref, gather = await started_call(server)
    before = await snapshot(server.store)
    sms = {"MessageSid": "SM" + "6" * 32, "AccountSid": ACCOUNT, "To": SHOP_LINE, "Body": "STOP"}
    for form in (
        {**sms, "From": "+12025550142\n"},
        {**sms, "From": "+12025550142", "MessageSid": "SM" + "6" * 32 + "\n"},
    ):
        assert (await server.post("/twilio/sms", form)).status == 400, form
    keys = {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "Digits": "1\n"}
    assert (await server.post(gather, keys)).status == 400
    assert await snapshot(server.store) == before
    assert ref


async def test_a_declined_call_leaves_no_debugger_alert(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    """End to end with the simulator, which logs error 11200 as Twilio's debugger would."""
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="simulator",
        public_url=url,
        database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS,
        audio_dir=tmp_path / "audio",
        var_dir=tmp_path / "var",
    )
    parts = AppParts(background=False, warm_up=False, recognizer=None)
    server = await aiohttp_server(create_app(settings, url, parts), port=port)
    simulator = server.app[SIMULATOR]
    events = {"initiated", "ringing", "answered", "completed"}
    call = await simulator.incoming_call(
        CALLER,
        "+12025550199",  # no plan answers it
        Persona(),
        f"{url}/twilio/voice",
        status_callback=f"{url}/twilio/status",
        status_callback_events=events,
    )
    assert call.status == "completed"
    assert [entry.kind for entry in call.entries("say", "hangup")] == ["say", "hangup"]
    assert call.status_callbacks_sent >= 2
    assert call.errors == []
    assert all(rows == [] for rows in (await snapshot(server.app[CALLS].s.store)).values())


async def test_a_read_or_partially_delivered_report_counts_as_delivered(server: Server) -> None:
    """Twilio's "read" (WhatsApp, RCS) and "partially_delivered" were a 500 (no such stored
    status). A read message was delivered; a partial delivery is delivered with a note."""
    sids = ["SM" + "8" * 32, "SM" + "9" * 32]
    async with server.store.transaction() as tx:
        for sid in sids:
            await tx.sms.create(
                direction=Direction.OUTBOUND,
                from_number=SHOP_LINE,
                to_number="+12025550142",
                body="Hi",
                provider_sid=sid,
            )
    for sid, status in zip(sids, ("read", "partially_delivered"), strict=True):
        report = {"MessageSid": sid, "AccountSid": ACCOUNT, "MessageStatus": status}
        assert (await server.post("/twilio/sms-status", report)).status == 204
    async with server.store.read() as tx:
        read, partial = [await tx.sms.get_by_sid(sid) for sid in sids]
    assert read is not None
    assert partial is not None
    assert (read.status, read.error) == ("delivered", None)
    assert (partial.status, partial.error) == ("delivered", "partially delivered")
