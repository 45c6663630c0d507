"""A recognition that outlasts its budget keeps the call alive instead of leaving it silent.

Real PocketSphinx decodes a real recording here; the budget is set far below what decoding
takes, so the record webhook must answer with a pause and a redirect, and the redirect
must deliver the result of that same decoding — once, whatever is delivered twice.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from ivr.calls.service import MAX_RECOGNITION_WAITS
from ivr.simulation.voice import CallerVoice
from ivr.speech.audio import write_wav
from ivr.telephony.twilio.urls import opaque
from tests.telephony.fake_twilio_api import ACCOUNT, PREFIX
from tests.web.conftest import Server, start_server
from tests.web.test_twilio_webhooks import CALL_SID, action, path_of, twiml, voice_form

RECORDING_SID = "RE" + "7" * 32


@pytest.fixture
async def slow_server(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Server]:
    async with aiohttp.ClientSession() as http:
        yield await start_server(tmp_path, aiohttp_server, http, recognition_budget=0.001)


async def caller_says(server: Server, text: str) -> dict[str, str]:
    """Put the caller's recording at the provider; the record webhook's form for it."""
    pcm = await CallerVoice([]).speak(text, "en-US")  # 8 kHz, in a caller's voice
    server.twilio.recordings[RECORDING_SID] = write_wav(None, pcm, 8000)
    return {
        "CallSid": CALL_SID,
        "AccountSid": ACCOUNT,
        "RecordingUrl": f"{server.twilio.base_url}{PREFIX}/Recordings/{RECORDING_SID}",
        "RecordingSid": RECORDING_SID,
        "RecordingDuration": "1",
    }


def is_wait(doc: ET.Element) -> bool:
    return [child.tag for child in doc] == ["Pause", "Redirect"]


async def record_path(server: Server) -> str:
    doc = await twiml(await server.post("/twilio/voice", voice_form()))
    return path_of(action(doc, "Record"), server)


async def test_slow_recognition_is_kept_alive_then_advances_once(slow_server: Server) -> None:
    server = slow_server
    path = await record_path(server)
    form = await caller_says(server, "order status")

    first = await twiml(await server.post(path, form))
    assert is_wait(first), ET.tostring(first)
    assert first.find("Pause").get("length") == "1"  # type: ignore[union-attr]
    again = await twiml(await server.post(path, form))  # the same webhook, delivered twice
    assert len(server.calls.recognitions) == 1  # ...waits on the same decoding

    doc = again
    if is_wait(doc):
        redirect = path_of(doc.find("Redirect").text or "", server)  # type: ignore[union-attr]
        assert "/twilio/recognizing?" in redirect
        assert "waits=" in redirect
        # While the provider plays the pause the decoding finishes, however long it takes on
        # this machine (a fixed sleep here raced with it): wait for it, then follow the redirect.
        await asyncio.wait(list(server.calls.recognitions._tasks.values()))
        doc = await twiml(await server.post(redirect, {"CallSid": CALL_SID, "AccountSid": ACCOUNT}))
    assert not is_wait(doc)  # the first request after the decoding gets its result
    gather = doc.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "10"

    await server.calls.drain()
    ref = path.split("call=")[1].split("&")[0]
    async with server.store.read() as tx:
        call = await tx.calls.get(ref)
        events = await tx.events.list(ref)
    assert call is not None
    assert call.turn == 2
    assert [e.data["intent"] for e in events if e.kind == "Understood"] == ["order"]
    assert [e for e in events if e.kind == "recognition_wait"]
    assert len(server.twilio.requests("DELETE", f"{RECORDING_SID}.json")) == 1
    assert len(server.calls.recognitions) == 0
    # A late redirect for the finished turn gets that turn's TwiML again, and moves nothing.
    late = await server.post(
        f"/twilio/recognizing?call={ref}&turn=1&waits=1&recording={opaque(form['RecordingUrl'])}"
        f"&sid={RECORDING_SID}",
        {"CallSid": CALL_SID, "AccountSid": ACCOUNT},
    )
    assert late.status == 200
    async with server.store.read() as tx:
        assert (await tx.calls.get(ref)).turn == 2  # type: ignore[union-attr]


async def test_recognition_that_never_ends_in_time_counts_as_no_input(slow_server: Server) -> None:
    server = slow_server
    path = await record_path(server)
    form = await caller_says(server, "order status")
    ref = path.split("call=")[1].split("&")[0]
    url = (
        f"/twilio/recognizing?call={ref}&turn=1&waits={MAX_RECOGNITION_WAITS}"
        f"&recording={opaque(form['RecordingUrl'])}&sid={RECORDING_SID}"
    )
    doc = await twiml(await server.post(url, {"CallSid": CALL_SID, "AccountSid": ACCOUNT}))
    assert not is_wait(doc)
    async with server.store.read() as tx:
        events = await tx.events.list(ref)
    kinds = [e.kind for e in events]
    gave_up = kinds.index("error")
    assert events[gave_up].data == {
        "recognition": "gave up waiting",
        "waits": MAX_RECOGNITION_WAITS,
    }
    assert kinds[gave_up + 1] == "NoInput"
    assert events[gave_up + 2].data["text"] == "Sorry, I did not hear you."
    assert "Understood" not in kinds


async def test_malformed_keep_alive_redirects_are_400(server: Server) -> None:
    path = await record_path(server)
    ref = path.split("call=")[1].split("&")[0]
    empty = {"CallSid": CALL_SID, "AccountSid": ACCOUNT}
    missing = await server.post(f"/twilio/recognizing?call={ref}&turn=1&waits=1", empty)
    assert (missing.status, await missing.text()) == (400, "recording, sid: missing")
    bad = await server.post(
        f"/twilio/recognizing?call={ref}&turn=1&waits=x&recording=aHR0cA&sid=RE1", empty
    )
    assert (bad.status, await bad.text()) == (400, "waits: missing or not a number")
    forged = await server.post(
        f"/twilio/recognizing?call={ref}&turn=1&waits=1&recording=%FF%FE&sid=RE1", empty
    )
    assert (forged.status, await forged.text()) == (
        400,
        "recording: not a reference this server wrote",
    )
