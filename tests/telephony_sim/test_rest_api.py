"""The simulator's REST API: authentication, validation errors, Twilio's JSON shapes."""

from __future__ import annotations

import re
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web

from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import Persona, Simulator
from tests.telephony_sim.conftest import (
    ACCOUNT_SID,
    AUTH_HEADERS,
    PERSON,
    ROBOT,
    FakeIvr,
    RestClient,
    ServerFactory,
    twiml,
)


async def test_requests_without_the_right_credentials_get_401(simulator: Simulator) -> None:
    url = f"{simulator.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    fields = {"To": PERSON, "From": ROBOT, "Url": "http://127.0.0.1:9/voice"}
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, "wrong")}):
            async with session.post(url, data=fields, headers=headers) as response:
                assert response.status == 401
                assert "Basic" in response.headers["WWW-Authenticate"]
                body = await response.json()
        assert body["code"] == 20003
        assert body["status"] == 401
        assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert simulator.calls == {}


async def test_another_account_in_the_path_is_not_found(simulator: Simulator) -> None:
    url = f"{simulator.api_base}/2010-04-01/Accounts/AC{'0' * 32}/Calls.json"
    async with (
        aiohttp.ClientSession(headers=AUTH_HEADERS) as session,
        session.post(url, data={"To": PERSON}) as response,
    ):
        assert response.status == 404
        assert (await response.json())["code"] == 20404


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"To": ""}, 21201),
        ({"To": "12025550123"}, 21211),
        ({"To": "+1202"}, 21211),
        ({"From": ""}, 21213),
        ({"From": "robot"}, 21212),
        ({"Url": ""}, 21205),
        ({"Url": "ftp://example.com/voice"}, 21205),
        ({"StatusCallback": "not a url"}, 21609),
        ({"MachineDetection": "Sometimes"}, 20001),
        ({"Method": "PUT"}, 20001),
        ({"Timeout": "soon"}, 20001),
        ({"StatusCallbackEvent": "picked-up"}, 20001),
    ],
)
async def test_invalid_call_requests_get_twilio_error_codes(
    rest: RestClient, simulator: Simulator, change: dict[str, str], code: int
) -> None:
    fields = {"To": PERSON, "From": ROBOT, "Url": "http://127.0.0.1:9/voice", **change}
    status, body = await rest.post("Calls.json", fields)
    assert (status, body["code"], body["status"]) == (400, code, 400)
    assert body["message"]
    assert simulator.calls == {}


async def test_a_placed_call_is_queued_with_twilio_fields(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    ivr.routes["/voice"] = twiml("<Hangup/>")
    events = ["initiated", "ringing answered", "completed"]  # repeated and space-separated
    sid = await rest.call(ivr, StatusCallbackEvent=events, MachineDetection="Enable")
    assert re.fullmatch(r"CA[0-9a-f]{32}", sid)
    call = simulator.calls[sid]
    assert ("StatusCallbackEvent", "ringing answered") in call.form
    assert call.status_callback_events == {"initiated", "ringing", "answered", "completed"}
    await simulator.wait_for_call(sid)
    status, body = await rest.get(f"Calls/{sid}.json")
    assert status == 200
    assert body["sid"] == sid
    assert body["status"] == "completed"
    assert body["direction"] == "outbound-api"
    assert (body["to"], body["from"]) == (PERSON, ROBOT)
    assert body["answered_by"] == "human"
    assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"
    status, body = await rest.get(f"Calls/CA{'0' * 32}.json")
    assert (status, body["code"]) == (404, 20404)


async def test_the_response_to_create_is_queued(rest: RestClient, ivr: FakeIvr) -> None:
    ivr.routes["/voice"] = twiml("<Hangup/>")
    fields = {"To": PERSON, "From": ROBOT, "Url": ivr.url("/voice")}
    status, body = await rest.post("Calls.json", fields)
    assert (status, body["status"], body["api_version"]) == (201, "queued", "2010-04-01")
    assert body["date_created"].endswith("+0000")


async def test_messages_are_validated_and_created(rest: RestClient, simulator: Simulator) -> None:
    status, body = await rest.post("Messages.json", {"To": PERSON, "From": ROBOT})
    assert (status, body["code"]) == (400, 21602)
    status, body = await rest.post("Messages.json", {"From": ROBOT, "Body": "hi"})
    assert (status, body["code"]) == (400, 21604)
    status, body = await rest.post(
        "Messages.json", {"To": PERSON, "From": ROBOT, "Body": "x" * 1601}
    )
    assert (status, body["code"]) == (400, 21617)
    status, body = await rest.post("Messages.json", {"To": PERSON, "From": ROBOT, "Body": "Hello"})
    assert status == 201
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert (body["status"], body["body"], body["direction"]) == ("queued", "Hello", "outbound-api")
    await simulator.wait_idle()
    status, fetched = await rest.get(f"Messages/{body['sid']}.json")
    assert (status, fetched["status"]) == (200, "delivered")


async def test_ringing_call_can_be_canceled(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    simulator.settings = replace(simulator.settings, pace=0.05)  # ring for real: 0.5 s
    simulator.expect(PERSON, Persona(ring_seconds=10))
    sid = await rest.call(ivr, StatusCallbackEvent=["ringing", "completed"])
    status, _body = await rest.post(f"Calls/{sid}.json", {"Status": "canceled"})
    assert status == 200
    call = await simulator.wait_for_call(sid)
    assert call.status == "canceled"
    assert ivr.requests_to("/voice") == []
    assert [p["CallStatus"] for p in ivr.requests_to("/status")] == ["ringing", "canceled"]


async def test_the_api_mounts_under_a_prefix(
    aiohttp_server: ServerFactory, simulator: Simulator, ivr: FakeIvr
) -> None:
    parent = web.Application()
    parent.add_subapp("/provider", simulator.rest_app())
    server = await aiohttp_server(parent)
    base = str(server.make_url("/provider"))
    simulator.api_base = None  # learn it from the request, as a mounted simulator does
    simulator.expect(PERSON, Persona.person(Turn(say="hello")))
    ivr.routes["/voice"] = twiml('<Record action="/recorded"/>')
    ivr.routes["/recorded"] = twiml("<Hangup/>")
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as session:
        client = RestClient(session, base)
        sid = await client.call(ivr)
        await simulator.wait_for_call(sid)
        (recorded,) = ivr.requests_to("/recorded")
        assert recorded["RecordingUrl"].startswith(base + "/2010-04-01/Accounts/")
        async with session.get(recorded["RecordingUrl"] + ".wav") as response:
            assert response.status == 200
