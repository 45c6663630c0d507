"""The Twilio REST client against a local server speaking Twilio's REST API."""

from __future__ import annotations

import base64
import random
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest

from ivr.telephony.provider import AmbiguousCreate, CallInfo, MessageInfo, Provider, ProviderError
from ivr.telephony.twilio import CALL_EVENTS, RetryPolicy, TwilioRestClient
from tests.telephony.conftest import FAST_RETRIES, MakeClient, Sleeps
from tests.telephony.fake_twilio_api import ACCOUNT, PREFIX, TOKEN, FakeTwilioApi, Planned

CALLEE = "+12025550143"
ROBOT = "+12025550100"
ANSWER_URL = "https://ivr.example.com/twilio/voice?call=c-1"
STATUS_URL = "https://ivr.example.com/twilio/status?call=c-1"


async def place(client: TwilioRestClient, to: str = CALLEE, **options: Any) -> CallInfo:
    return await client.place_call(
        to=to, from_number=ROBOT, answer_url=ANSWER_URL, status_url=STATUS_URL, **options
    )


def test_the_client_is_a_provider(make_client: MakeClient) -> None:
    provider: Provider = make_client()
    assert provider is not None


async def test_place_call_posts_twilio_form_fields_with_basic_auth(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    call = await place(make_client(), ring_timeout=25)
    assert call.status == "queued"
    assert (call.to, call.from_number, call.direction) == (CALLEE, ROBOT, "outbound-api")
    assert list(fake_api.calls) == [call.sid]
    (seen,) = fake_api.seen
    assert (seen.method, seen.path) == ("POST", f"{PREFIX}/Calls.json")
    credentials = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert seen.authorization == f"Basic {credentials}"
    assert seen.content_type == "application/x-www-form-urlencoded"
    form = seen.form
    assert form.getall("StatusCallbackEvent") == ["initiated", "ringing", "answered", "completed"]
    assert list(CALL_EVENTS) == form.getall("StatusCallbackEvent")
    single = {name: form.getone(name) for name in form if name != "StatusCallbackEvent"}
    assert single == {
        "To": CALLEE,
        "From": ROBOT,
        "Url": ANSWER_URL,
        "Method": "POST",
        "StatusCallback": STATUS_URL,
        "StatusCallbackMethod": "POST",
        "Timeout": "25",
        "MachineDetection": "DetectMessageEnd",
    }
    assert sleeps.delays == []


async def test_machine_detection_can_be_left_out(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    await place(make_client(), detect_machine=False)
    assert "MachineDetection" not in fake_api.seen[0].form


async def test_wrong_credentials_are_a_final_error(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    with pytest.raises(ProviderError) as caught:
        await place(make_client(auth_token="wrong"))
    error = caught.value
    assert (error.status, error.code, error.retryable) == (401, 20003, False)
    assert len(fake_api.seen) == 1


async def test_twilio_rejection_is_final_and_names_code_and_message(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    with pytest.raises(ProviderError) as caught:
        await place(make_client(), to="+1202")
    error = caught.value
    assert not isinstance(error, AmbiguousCreate)
    assert (error.status, error.code, error.retryable) == (400, 21211, False)
    assert error.more_info == "https://www.twilio.com/docs/errors/21211"
    assert "21211" in str(error)
    assert "is not a valid phone number" in str(error)
    assert len(fake_api.seen) == 1
    assert sleeps.delays == []


async def test_server_errors_are_retried_and_exactly_one_call_is_created(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    fake_api.plan("calls", Planned(500), Planned(503))
    call = await place(make_client())
    assert list(fake_api.calls) == [call.sid]
    assert len(fake_api.requests("POST", "/Calls.json")) == 3
    assert len(sleeps.delays) == 2
    assert 0.005 <= sleeps.delays[0] <= 0.01
    assert 0.01 <= sleeps.delays[1] <= 0.02


async def test_429_waits_as_long_as_retry_after_says(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    fake_api.plan("calls", Planned(429, headers={"Retry-After": "7"}))
    await place(make_client())
    assert sleeps.delays == [7.0]
    assert len(fake_api.calls) == 1


async def test_retry_after_as_an_http_date(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=1), usegmt=True)
    fake_api.plan("messages", Planned(503, headers={"Retry-After": past}))
    await make_client().send_sms(to=CALLEE, from_number=ROBOT, body="Hi")
    assert sleeps.delays == [0.0]


async def test_a_retry_after_beyond_the_limit_gives_up_at_once(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    fake_api.plan("calls", Planned(429, headers={"Retry-After": "120"}))
    with pytest.raises(ProviderError) as caught:
        await place(make_client())
    error = caught.value
    assert (error.status, error.retryable, error.retry_after) == (429, True, 120.0)
    assert sleeps.delays == []
    assert fake_api.calls == {}


async def test_persistent_server_errors_give_up_after_the_attempts(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    proxy_page = Planned(502, body="<html>Bad gateway</html>")
    fake_api.plan("calls", Planned(503), Planned(500), proxy_page)
    with pytest.raises(ProviderError, match=r"HTTP 502 \(gave up after 3 attempts\)") as caught:
        await place(make_client())
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (502, None, True)
    assert len(fake_api.seen) == 3
    assert len(sleeps.delays) == 2
    assert fake_api.calls == {}


async def test_a_create_that_times_out_after_being_received_is_ambiguous(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    fake_api.plan("calls", Planned(stall=True, created=True))
    with pytest.raises(AmbiguousCreate, match="the call may exist") as caught:
        await place(make_client())
    assert (caught.value.resource, caught.value.retryable) == ("call", False)
    assert len(fake_api.requests("POST", "/Calls.json")) == 1
    assert len(fake_api.calls) == 1
    assert sleeps.delays == []


async def test_a_gateway_timeout_to_a_create_is_ambiguous(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    fake_api.plan("messages", Planned(504, created=True))
    with pytest.raises(AmbiguousCreate) as caught:
        await make_client().send_sms(to=CALLEE, from_number=ROBOT, body="Hi")
    assert (caught.value.resource, caught.value.status) == ("message", 504)
    assert len(fake_api.messages) == 1
    assert len(fake_api.seen) == 1


async def test_a_create_answered_with_garbage_is_ambiguous(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    fake_api.plan("calls", Planned(201, body="<html>proxy</html>", created=True))
    with pytest.raises(AmbiguousCreate, match="unreadable"):
        await place(make_client())
    assert len(fake_api.calls) == 1


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_a_connection_that_cannot_be_made_is_retried_even_for_a_create(
    make_client: MakeClient, sleeps: Sleeps
) -> None:
    with pytest.raises(ProviderError, match="cannot connect") as caught:
        await place(make_client(api_base=closed_port_url()))
    assert not isinstance(caught.value, AmbiguousCreate)
    assert caught.value.retryable
    assert len(sleeps.delays) == FAST_RETRIES.attempts - 1


async def test_send_sms_posts_to_from_body_and_status_callback(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    message = await make_client().send_sms(
        to=CALLEE,
        from_number=ROBOT,
        body="Reply C & X — ok",
        status_url="https://ivr.example.com/twilio/sms-status",
    )
    assert message == MessageInfo(message.sid, "queued", CALLEE, ROBOT)
    (seen,) = fake_api.seen
    assert seen.path == f"{PREFIX}/Messages.json"
    assert dict(seen.form) == {
        "To": CALLEE,
        "From": ROBOT,
        "Body": "Reply C & X — ok",
        "StatusCallback": "https://ivr.example.com/twilio/sms-status",
    }


async def test_send_sms_that_times_out_is_ambiguous(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    fake_api.plan("messages", Planned(stall=True, created=True))
    with pytest.raises(AmbiguousCreate, match="the message may exist"):
        await make_client().send_sms(to=CALLEE, from_number=ROBOT, body="Hi")
    assert len(fake_api.messages) == 1
    assert len(fake_api.seen) == 1


async def test_get_call_reads_the_call(fake_api: FakeTwilioApi, make_client: MakeClient) -> None:
    client = make_client()
    placed = await place(client)
    fake_api.calls[placed.sid].update(
        status="completed", duration="42", answered_by="machine_end_beep"
    )
    call = await client.get_call(placed.sid)
    assert call == CallInfo(
        placed.sid, "completed", CALLEE, ROBOT, "outbound-api", 42, "machine_end_beep"
    )


async def test_get_call_is_retried_after_a_timeout(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    client = make_client()
    placed = await place(client)
    fake_api.plan("call", Planned(stall=True))
    assert (await client.get_call(placed.sid)).sid == placed.sid
    assert len(fake_api.requests("GET", f"/Calls/{placed.sid}.json")) == 2
    assert len(sleeps.delays) == 1


async def test_get_call_of_an_unknown_call_is_a_final_error(make_client: MakeClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await make_client().get_call("CA" + "0" * 32)
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (404, 20404, False)


def recording_url(fake_api: FakeTwilioApi, sid: str) -> str:
    return f"{fake_api.base_url}{PREFIX}/Recordings/{sid}"


async def test_fetch_recording_appends_wav_and_authenticates(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    fake_api.recordings["RE1"] = b"RIFF....WAVEfmt "
    audio = await make_client().fetch_recording(recording_url(fake_api, "RE1"))
    assert audio == b"RIFF....WAVEfmt "
    (seen,) = fake_api.seen
    assert (seen.method, seen.path) == ("GET", f"{PREFIX}/Recordings/RE1.wav")
    assert seen.authorization is not None
    assert seen.authorization.startswith("Basic ")


async def test_fetch_recording_keeps_an_explicit_wav_url(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    fake_api.recordings["RE6"] = b"RIFF"
    assert await make_client().fetch_recording(recording_url(fake_api, "RE6") + ".wav") == b"RIFF"
    assert fake_api.seen[0].path == f"{PREFIX}/Recordings/RE6.wav"


async def test_fetch_recording_waits_for_a_recording_not_there_yet(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    fake_api.recordings["RE2"] = b"RIFF"
    fake_api.plan("recording", Planned(404))
    assert await make_client().fetch_recording(recording_url(fake_api, "RE2")) == b"RIFF"
    assert len(sleeps.delays) == 1


async def test_fetch_recording_refuses_a_recording_over_the_limit(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    fake_api.recordings["RE3"] = b"x" * 5000
    with pytest.raises(ProviderError, match="over 4096") as caught:
        await make_client(max_recording_bytes=4096).fetch_recording(recording_url(fake_api, "RE3"))
    assert not caught.value.retryable
    assert len(fake_api.seen) == 1


async def test_fetch_recording_never_sends_credentials_elsewhere(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    for url in ("https://evil.example.com/Recordings/RE1", "not a url"):
        with pytest.raises(ProviderError, match="not sending credentials"):
            await make_client().fetch_recording(url)
    assert fake_api.seen == []


async def test_delete_recording_and_deleting_it_again(
    fake_api: FakeTwilioApi, make_client: MakeClient
) -> None:
    fake_api.recordings["RE4"] = b"RIFF"
    client = make_client()
    await client.delete_recording("RE4")
    await client.delete_recording("RE4")
    assert fake_api.recordings == {}
    paths = [(s.method, s.path) for s in fake_api.seen]
    assert paths == [("DELETE", f"{PREFIX}/Recordings/RE4.json")] * 2


async def test_delete_recording_is_retried_after_a_server_error(
    fake_api: FakeTwilioApi, make_client: MakeClient, sleeps: Sleeps
) -> None:
    fake_api.recordings["RE5"] = b"RIFF"
    fake_api.plan("delete", Planned(500))
    await make_client().delete_recording("RE5")
    assert fake_api.recordings == {}
    assert len(sleeps.delays) == 1


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=5.0)
    rng = random.Random(1)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (5, 5.0)]:
        delays = {policy.backoff(retry, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


@pytest.mark.parametrize(
    "options",
    [{"attempts": 0}, {"base_delay": -1.0}, {"base_delay": 2.0, "max_delay": 1.0}],
)
def test_retry_policy_rejects_nonsense(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"attempts|delays"):
        RetryPolicy(**options)


def test_the_client_needs_credentials(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="auth token"):
        TwilioRestClient(session, ACCOUNT, "")
