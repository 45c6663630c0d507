"""REST clients pointed at the simulator: Twilio's own Python library and the product's."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from ivr.simulation.scenario import Turn
from ivr.speech.audio import inspect_wav
from ivr.telephony.simulator import Persona, Simulator
from ivr.telephony.twilio import TwilioRestClient
from tests.telephony_sim.conftest import ACCOUNT_SID, AUTH_TOKEN, PERSON, ROBOT, FakeIvr, twiml


async def test_the_twilio_client_places_calls_and_sends_sms(
    simulator: Simulator, ivr: FakeIvr
) -> None:
    ivr.routes["/voice"] = twiml("<Say>Hello from the official client.</Say>")
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    assert simulator.api_base is not None
    client.api.base_url = simulator.api_base
    # The client is synchronous (requests): keep it off the event loop the simulator runs on.
    call = await asyncio.to_thread(
        client.calls.create,
        to=PERSON,
        from_=ROBOT,
        url=ivr.url("/voice"),
        status_callback=ivr.url("/status"),
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="DetectMessageEnd",
    )
    assert (call.status, call.direction, call.to) == ("queued", "outbound-api", PERSON)
    message = await asyncio.to_thread(client.messages.create, to=PERSON, from_=ROBOT, body="Hi")
    assert (message.status, message.body) == ("queued", "Hi")
    await simulator.wait_idle()
    fetched = await asyncio.to_thread(client.calls(call.sid).fetch)
    assert (fetched.status, fetched.answered_by) == ("completed", "human")
    assert len(ivr.requests_to("/status")) == 4
    with pytest.raises(TwilioRestException) as refused:
        await asyncio.to_thread(client.calls.create, to="+1", from_=ROBOT, url=ivr.url("/voice"))
    assert (refused.value.status, refused.value.code) == (400, 21211)


async def test_the_products_rest_client_drives_a_call_and_its_recording(
    simulator: Simulator, ivr: FakeIvr
) -> None:
    ivr.routes["/voice"] = twiml('<Record action="/recorded" finishOnKey="#"/>')
    ivr.routes["/recorded"] = twiml("<Hangup/>")
    simulator.expect(PERSON, Persona.person(Turn(audio="7_george_2.wav")))
    assert simulator.api_base is not None
    async with aiohttp.ClientSession() as session:
        client = TwilioRestClient(session, ACCOUNT_SID, AUTH_TOKEN, simulator.api_base)
        placed = await client.place_call(
            to=PERSON,
            from_number=ROBOT,
            answer_url=ivr.url("/voice"),
            status_url=ivr.url("/status"),
        )
        assert (placed.status, placed.to) == ("queued", PERSON)
        await simulator.wait_for_call(placed.sid)
        (recorded,) = ivr.requests_to("/recorded")
        wav = await client.fetch_recording(recorded["RecordingUrl"])
        assert inspect_wav(wav).sample_rate == 8000
        await client.delete_recording(recorded["RecordingSid"])
        assert simulator.recordings.get(recorded["RecordingSid"]) is None
        fetched = await client.get_call(placed.sid)
        assert (fetched.status, fetched.answered_by) == ("completed", "human")
        message = await client.send_sms(to=PERSON, from_number=ROBOT, body="See you")
        assert message.status == "queued"
    statuses = [p["CallStatus"] for p in ivr.requests_to("/status")]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
