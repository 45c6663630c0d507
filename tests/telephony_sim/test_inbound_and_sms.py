"""Inbound calls and SMS, and the delivery reports of outbound SMS."""

from __future__ import annotations

import pytest

from ivr.simulation.scenario import Scenario, Turn
from ivr.telephony.simulator import Persona, Simulator, WebhookError
from tests.telephony_sim.conftest import PERSON, ROBOT, FakeIvr, RestClient, twiml


async def test_an_inbound_call_rings_then_runs_the_menu(simulator: Simulator, ivr: FakeIvr) -> None:
    ivr.routes["/voice"] = twiml(
        '<Gather numDigits="1" action="/menu"><Say>Press 1 for your order.</Say></Gather>'
    )
    ivr.routes["/menu"] = twiml("<Say>Your order is on its way.</Say>", "<Hangup/>")
    scenario = Scenario(
        plan="shop", name="presses 1", turns=[Turn(expect="order"), Turn(press="1")]
    )
    call = await simulator.incoming_call(
        PERSON,
        ROBOT,
        Persona.from_scenario(scenario),
        ivr.url("/voice"),
        status_callback=ivr.url("/status"),
        status_callback_events=["answered", "completed"],
    )
    (voice,) = ivr.requests_to("/voice")
    assert (voice["Direction"], voice["CallStatus"]) == ("inbound", "ringing")
    assert (voice["From"], voice["To"]) == (PERSON, ROBOT)
    (menu,) = ivr.requests_to("/menu")
    assert (menu["Digits"], menu["CallStatus"]) == ("1", "in-progress")
    assert [p["CallStatus"] for p in ivr.requests_to("/status")] == ["in-progress", "completed"]
    assert (call.status, call.direction, call.end_reason) == ("completed", "inbound", "hangup")


@pytest.mark.parametrize(("reason", "status"), [("busy", "busy"), ("rejected", "no-answer")])
async def test_a_rejected_inbound_call_is_never_answered(
    simulator: Simulator, ivr: FakeIvr, reason: str, status: str
) -> None:
    ivr.routes["/voice"] = twiml(f'<Reject reason="{reason}"/>', "<Say>unreachable</Say>")
    call = await simulator.incoming_call(PERSON, ROBOT, Persona(), ivr.url("/voice"))
    assert (call.status, call.end_reason, call.duration) == (status, "reject", 0)
    assert call.entries("say") == []


async def test_an_inbound_sms_gets_the_message_replies(simulator: Simulator, ivr: FakeIvr) -> None:
    ivr.routes["/sms"] = lambda params: twiml(
        f"<Message>You said {params['Body']}.</Message>",
        "<Message><Body>Reply HELP for help.</Body></Message>",
    )
    replies = await simulator.incoming_sms(PERSON, ROBOT, "STOP", ivr.url("/sms"))
    assert replies == ["You said STOP.", "Reply HELP for help."]
    (received,) = ivr.requests_to("/sms")
    assert received["MessageSid"].startswith("SM")
    assert (received["Body"], received["NumMedia"], received["SmsStatus"]) == (
        "STOP",
        "0",
        "received",
    )
    replies_sent = [m for m in simulator.messages.values() if m.direction == "outbound-reply"]
    assert [(m.from_, m.to) for m in replies_sent] == [(ROBOT, PERSON), (ROBOT, PERSON)]


async def test_an_sms_the_app_cannot_take_raises(simulator: Simulator, ivr: FakeIvr) -> None:
    ivr.statuses["/sms"] = 403
    with pytest.raises(WebhookError, match="HTTP 403") as caught:
        await simulator.incoming_sms(PERSON, ROBOT, "hello", ivr.url("/sms"))
    assert caught.value.exchange.status == 403
    ivr.routes["/empty"] = twiml()
    assert await simulator.incoming_sms(PERSON, ROBOT, "hello", ivr.url("/empty")) == []


async def test_outbound_sms_delivery_reports(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    unreachable = "+12025550177"
    simulator.sms_fails(unreachable)
    for to in (PERSON, unreachable):
        fields = {
            "To": to,
            "From": ROBOT,
            "Body": "Reminder",
            "StatusCallback": ivr.url("/sms-status"),
        }
        status, _body = await rest.post("Messages.json", fields)
        assert status == 201
    await simulator.wait_idle()
    reports = ivr.requests_to("/sms-status")
    by_number = {
        to: [p["MessageStatus"] for p in reports if p["To"] == to] for to in (PERSON, unreachable)
    }
    assert by_number == {
        PERSON: ["queued", "sent", "delivered"],
        unreachable: ["queued", "sent", "undelivered"],
    }
    assert reports[-1]["ErrorCode"] == "30003"
    assert all(p["SmsSid"] == p["MessageSid"] for p in reports)


async def test_a_status_callback_answered_with_an_error_is_a_debugger_alert(
    simulator: Simulator, ivr: FakeIvr
) -> None:
    """Twilio logs a non-2xx answer to a status callback as error 11200; so does the call."""
    ivr.routes["/voice"] = twiml("<Say>Sorry, not in service.</Say>", "<Hangup/>")
    ivr.statuses["/status"] = 404
    call = await simulator.incoming_call(
        PERSON, ROBOT, Persona(), ivr.url("/voice"), status_callback=ivr.url("/status")
    )
    assert call.status == "completed"
    assert call.errors == ["11200 HTTP retrieval failure: status callback answered HTTP 404"]
    del ivr.statuses["/status"]
    answered = await simulator.incoming_call(
        PERSON, ROBOT, Persona(), ivr.url("/voice"), status_callback=ivr.url("/status")
    )
    assert answered.errors == []


async def test_an_sms_status_callback_answered_with_an_error_is_a_debugger_alert(
    rest: RestClient, simulator: Simulator, ivr: FakeIvr
) -> None:
    ivr.statuses["/sms-status"] = 500
    fields = {"To": PERSON, "From": ROBOT, "Body": "Hi", "StatusCallback": ivr.url("/sms-status")}
    status, body = await rest.post("Messages.json", fields)
    assert status == 201
    await simulator.wait_idle()
    message = simulator.messages[body["sid"]]
    assert message.status == "delivered"  # the answer changes nothing at the carrier
    assert message.errors == [
        f"11200 HTTP retrieval failure: {step} callback answered HTTP 500"
        for step in ("queued", "sent", "delivered")
    ]
    del ivr.statuses["/sms-status"]
    status, body = await rest.post("Messages.json", fields)
    await simulator.wait_idle()
    assert simulator.messages[body["sid"]].errors == []
