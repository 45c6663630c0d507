"""The Twilio webhooks over real HTTP: signatures, idempotent turns, status order, SMS words."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
import pytest

from ivr.outbound import scheduler
from ivr.speech.audio import inspect_wav
from ivr.web.app import OUTBOUND
from ivr.web.signing import signed_path
from tests.telephony.fake_twilio_api import ACCOUNT
from tests.web.conftest import CALLER, SHOP_LINE, Server

CALL_SID = "CA" + "1" * 32


def voice_form(call_sid: str = CALL_SID, to: str = SHOP_LINE, **more: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT,
        "From": CALLER,
        "To": to,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        **more,
    }


async def twiml(response: aiohttp.ClientResponse) -> ET.Element:
    assert response.status == 200, await response.text()
    assert response.content_type == "application/xml"
    return ET.fromstring(await response.text())


def action(doc: ET.Element, verb: str) -> str:
    element = doc.find(f".//{verb}")
    assert element is not None, ET.tostring(doc)
    return element.get("action") or (element.text or "")


def path_of(url: str, server: Server) -> str:
    assert url.startswith(server.url)
    return url[len(server.url) :]


async def test_inbound_call_plays_the_menu_and_keys_move_it_once(server: Server) -> None:
    doc = await twiml(await server.post("/twilio/voice", voice_form()))
    gather = doc.find("Gather")
    assert gather is not None
    assert gather.get("input") == "dtmf"
    play = gather.find("Play")
    assert play is not None
    assert play.text
    async with server.http.get(play.text) as audio:
        assert audio.status == 200
        wav = inspect_wav(await audio.read())
    assert (wav.format_tag, wav.sample_rate, wav.channels) == (7, 8000, 1)
    assert wav.duration > 3.0  # "Thank you for calling Northwind Shop. To check an order..."

    gather_path = path_of(action(doc, "Gather"), server)
    assert re.fullmatch(r"/twilio/gather\?call=[\w-]+&turn=1", gather_path)
    first = await server.post(
        gather_path, {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "Digits": "1"}
    )
    first_body = await first.text()
    again = await server.post(
        gather_path, {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "Digits": "1"}
    )
    assert await again.text() == first_body  # a repeated webhook gets the same TwiML
    assert "turn=2" in first_body
    ref = gather_path.split("call=")[1].split("&")[0]
    async with server.store.transaction() as tx:
        call = await tx.calls.get(ref)
        events = await tx.events.list(ref)
    assert call is not None
    assert call.turn == 2
    understood = [e.data for e in events if e.kind == "Understood"]
    assert understood == [
        {"state": "menu", "intent": "order", "digits": None, "heard": "1", "confidence": 1.0}
    ]


async def test_bad_signature_is_403_and_changes_nothing(server: Server) -> None:
    forged = await server.post("/twilio/voice", voice_form(), signature="bm90IGEgc2lnbmF0dXJl")
    assert forged.status == 403
    async with server.http.post(server.url + "/twilio/voice", data=voice_form()) as unsigned:
        assert unsigned.status == 403
    async with server.store.transaction() as tx:
        assert await tx.calls.get_by_sid(CALL_SID) is None


async def test_malformed_and_unknown_webhooks(server: Server) -> None:
    missing = await server.post("/twilio/voice", {"AccountSid": ACCOUNT, "To": SHOP_LINE})
    assert missing.status == 400
    bad_turn = await server.post(
        "/twilio/gather?call=x&turn=two", {"CallSid": CALL_SID, "AccountSid": ACCOUNT}
    )
    assert bad_turn.status == 400
    unknown = await server.post(
        "/twilio/gather?call=nope&turn=1", {"CallSid": CALL_SID, "AccountSid": ACCOUNT}
    )
    assert unknown.status == 404
    huge = await server.post("/twilio/voice", voice_form(Padding="x" * 300_000))
    assert huge.status == 413


async def test_unknown_number_gets_a_polite_goodbye(server: Server) -> None:
    doc = await twiml(await server.post("/twilio/voice", voice_form(to="+12025550199")))
    assert [child.tag for child in doc] == ["Say", "Hangup"]
    assert "not in service" in (doc.find("Say").text or "")  # type: ignore[union-attr]


async def test_no_input_twice_then_failed_path_transfers(server: Server) -> None:
    doc = await twiml(await server.post("/twilio/voice", voice_form()))
    for _ in range(3):
        redirect = doc.find("Redirect")
        assert redirect is not None
        assert redirect.text
        doc = await twiml(
            await server.post(
                path_of(redirect.text, server), {"CallSid": CALL_SID, "AccountSid": ACCOUNT}
            )
        )
    dial = doc.find("Dial")
    assert dial is not None
    assert dial.text == "+12025550123"


async def test_audio_urls_are_signed(server: Server) -> None:
    doc = await twiml(await server.post("/twilio/voice", voice_form()))
    url = doc.find(".//Play").text  # type: ignore[union-attr]
    assert url is not None
    async with server.http.get(url.replace("sig=", "sig=0")) as tampered:
        assert tampered.status == 403
    async with server.http.get(url.split("?")[0]) as unsigned:
        assert unsigned.status == 403


async def test_status_callbacks_never_go_back(server: Server) -> None:
    await twiml(await server.post("/twilio/voice", voice_form()))
    base = {"CallSid": CALL_SID, "AccountSid": ACCOUNT}
    for status in ("completed", "ringing", "in-progress", "completed"):
        response = await server.post(
            "/twilio/status", {**base, "CallStatus": status, "CallDuration": "12"}
        )
        assert response.status == 204
    async with server.store.transaction() as tx:
        call = await tx.calls.get_by_sid(CALL_SID)
        assert call is not None
        events = [e.data for e in await tx.events.list(call.id) if e.kind == "status"]
    assert call.status == "completed"
    assert call.duration_seconds == 12
    assert [e["moved"] for e in events] == [True, False, False, False]
    unknown = await server.post(
        "/twilio/status",
        {"CallSid": "CA" + "9" * 32, "AccountSid": ACCOUNT, "CallStatus": "ringing"},
    )
    assert unknown.status == 204  # acknowledged (Twilio logs any other answer as an error)


async def sms(server: Server, body: str, sid: str) -> str:
    form = {"MessageSid": sid, "AccountSid": ACCOUNT, "From": CALLER, "To": SHOP_LINE, "Body": body}
    doc = await twiml(await server.post("/twilio/sms", form))
    message = doc.find("Message")
    return "" if message is None else message.text or ""


async def test_sms_stop_start_help(server: Server) -> None:
    assert "Reply START" in await sms(server, " stop ", "SM" + "1" * 32)
    assert "Reply START" in await sms(server, "STOP", "SM" + "1" * 32)  # repeated delivery
    async with server.store.transaction() as tx:
        assert await tx.opt_outs.is_opted_out(CALLER, "marketing")
        assert len(await tx.opt_outs.list(CALLER)) == 1
    assert "Reply STOP" in await sms(server, "Yes!", "SM" + "2" * 32)
    async with server.store.transaction() as tx:
        assert not await tx.opt_outs.is_opted_out(CALLER, "marketing")
    assert await sms(server, "help", "SM" + "3" * 32) == server.calls.s.settings.sms_help_text
    assert await sms(server, "what is this", "SM" + "4" * 32) == ""


async def test_outbound_call_answered_by_a_machine_leaves_voicemail(server: Server) -> None:
    variables = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"}
    call = await server.calls.place_call("+12025550143", "appointment_reminder", variables)
    [placed] = server.twilio.requests("POST", "/Calls.json")
    assert placed.form["To"] == "+12025550143"
    assert placed.form["Url"] == f"{server.url}/twilio/voice?call={call.id}"
    assert placed.form.getall("StatusCallbackEvent") == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    assert call.provider_sid is not None
    form = {
        "CallSid": call.provider_sid,
        "AccountSid": ACCOUNT,
        "From": "+12025550100",
        "To": "+12025550143",
        "CallStatus": "in-progress",
        "AnsweredBy": "machine_end_beep",
    }
    doc = await twiml(await server.post(f"/twilio/voice?call={call.id}", form))
    assert [child.tag for child in doc] == ["Play", "Hangup"]
    async with server.store.transaction() as tx:
        stored = await tx.calls.get(call.id)
    assert stored is not None
    assert (stored.outcome, stored.answered_by, stored.status) == (
        "voicemail",
        "machine",
        "in-progress",
    )


async def test_plan_sms_is_recorded_then_sent(server: Server) -> None:
    variables = {
        "name": "Sam",
        "company": "Parcelly",
        "order": "58213",
        "slot_start": "2026-11-25T14:00",
        "slot_end": "2026-11-25T16:00",
    }
    call = await server.calls.place_call("+12025550144", "delivery_notice", variables)
    form = {
        "CallSid": call.provider_sid or "",
        "AccountSid": ACCOUNT,
        "From": "+12025550100",
        "To": "+12025550144",
        "CallStatus": "in-progress",
    }
    doc = await twiml(await server.post(f"/twilio/voice?call={call.id}", form))
    await twiml(await server.post(path_of(action(doc, "Gather"), server), {**form, "Digits": "2"}))
    await server.calls.drain()
    [sent] = server.twilio.requests("POST", "/Messages.json")
    assert (
        sent.form["Body"]
        == "Parcelly: choose a new delivery day for order 58213 by replying with a date."
    )
    assert sent.form["To"] == "+12025550144"
    async with server.store.transaction() as tx:
        [message] = await tx.sms.list_for(call_ref=call.id)
    assert message.provider_sid is not None
    assert message.status == "queued"


async def test_plan_sms_lost_to_a_crash_is_sent_once_by_reconcile(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = {"name": "Sam", "company": "Parcelly", "order": "58213",
                 "slot_start": "2026-11-25T14:00", "slot_end": "2026-11-25T16:00"}  # fmt: skip
    call = await server.calls.place_call("+12025550145", "delivery_notice", variables)
    form = {"CallSid": call.provider_sid or "", "AccountSid": ACCOUNT, "From": "+12025550100",
            "To": "+12025550145", "CallStatus": "in-progress"}  # fmt: skip
    doc = await twiml(await server.post(f"/twilio/voice?call={call.id}", form))
    # The process dies right after the turn's commit: the SMS is recorded, never handed over.
    monkeypatch.setattr(server.calls, "in_background", lambda work: work.close())
    await twiml(await server.post(path_of(action(doc, "Gather"), server), {**form, "Digits": "2"}))
    async with server.store.read() as tx:
        [message] = await tx.sms.list_for(call_ref=call.id)
    assert message.status == "scheduled"
    assert server.twilio.requests("POST", "/Messages.json") == []

    monkeypatch.setattr(scheduler, "UNSENT_SMS_GRACE", 0.0)
    outbound = server.app_server.app[OUTBOUND]
    await outbound.scheduler.reconcile()
    await outbound.scheduler.reconcile()
    [sent] = server.twilio.requests("POST", "/Messages.json")
    assert sent.form["To"] == "+12025550145"
    async with server.store.read() as tx:
        [message] = await tx.sms.list_for(call_ref=call.id)
    assert message.provider_sid is not None


async def test_a_synthesized_prompt_is_served_from_memory_and_a_recorded_one_from_disk(
    server: Server, tmp_path: Path
) -> None:
    doc = await twiml(await server.post("/twilio/voice", voice_form()))
    url = doc.find(".//Play").text  # type: ignore[union-attr]
    assert url is not None
    assert "/audio/cache/" in url
    async with server.http.get(url) as first:
        assert first.status == 200
        assert first.content_type == "audio/wav"
        wav = await first.read()
    for file in (tmp_path / "audio" / "cache").rglob("*.wav"):
        file.unlink()  # audio/cache/ may be deleted at any time: its files never change
    async with server.http.get(url) as again:
        assert again.status == 200
        assert await again.read() == wav
    # A recorded prompt may be replaced on disk: it is read each time.
    recorded = tmp_path / "audio" / "hold_music.wav"
    secret, ttl = server.calls.s.secret, 60
    signed = server.url + signed_path(secret, "/audio/hold_music.wav", int(time.time() + ttl))
    for content in (b"RIFF first", b"RIFF second"):
        recorded.write_bytes(content)
        async with server.http.get(signed) as response:
            assert response.status == 200
            assert await response.read() == content
