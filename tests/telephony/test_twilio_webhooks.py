"""Twilio webhook parsing and the signature check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import MultiDict

from ivr.telephony.twilio import (
    CallStatusCallback,
    GatherResult,
    IncomingSms,
    RecordResult,
    SmsStatusCallback,
    VoiceWebhook,
    WebhookError,
    engine_answered_by,
    parse_call_status,
    parse_gather,
    parse_incoming_sms,
    parse_record,
    parse_sms_status,
    parse_voice,
    sign,
    verify_signature,
)

ACCOUNT = "AC" + "0f" * 16
CALL = "CA" + "1e" * 16
MESSAGE = "SM" + "2d" * 16
RECORDING = "RE" + "3c" * 16
RECORDING_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"
TOKEN = "a-secret-auth-token"
URL = "https://ivr.example.com/twilio/gather?call=c-1&turn=3"

VOICE = {
    "CallSid": CALL,
    "AccountSid": ACCOUNT,
    "From": "+12025550143",
    "To": "+12025550100",
    "CallStatus": "ringing",
    "Direction": "inbound",
    "ApiVersion": "2010-04-01",
    "Caller": "+12025550143",
    "CallerCountry": "US",
}


def without(form: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != name}


def changed(form: dict[str, str], **values: str) -> dict[str, str]:
    return {**form, **values}


def test_voice_webhook_of_an_incoming_call() -> None:
    call = parse_voice(VOICE)
    assert call == VoiceWebhook(CALL, ACCOUNT, "+12025550143", "+12025550100", "ringing", "inbound")
    assert call.caller_number == "+12025550143"
    assert engine_answered_by(call.answered_by) == "human"


def test_voice_webhook_of_an_answered_outbound_call_names_who_answered() -> None:
    form = changed(VOICE, Direction="outbound-api", CallStatus="in-progress")
    form["AnsweredBy"] = "machine_end_beep"
    call = parse_voice(form)
    assert call.answered_by == "machine_end_beep"
    assert engine_answered_by(call.answered_by) == "machine"


def test_a_caller_without_a_phone_number_is_not_an_error() -> None:
    call = parse_voice(changed(VOICE, From="client:alice"))
    assert call.from_number == "client:alice"
    assert call.caller_number is None


@pytest.mark.parametrize("field", ["CallSid", "AccountSid", "From", "To", "CallStatus"])
def test_voice_webhook_without_a_required_field(field: str) -> None:
    with pytest.raises(WebhookError, match=f"^{field}: missing") as caught:
        parse_voice(without(VOICE, field))
    assert caught.value.field == field
    with pytest.raises(WebhookError, match=f"^{field}: missing"):
        parse_voice(changed(VOICE, **{field: ""}))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("To", "2025550100", "not an E.164"),
        ("To", "+1 202 555 0100", "not an E.164"),
        ("To", "sip:robot@example.com", "not an E.164"),
        ("CallStatus", "answered", "unknown status"),
        ("CallSid", "CA 123", "not an identifier"),
        ("AccountSid", "x" * 200, "not an identifier"),
    ],
)
def test_voice_webhook_with_a_malformed_field(field: str, value: str, problem: str) -> None:
    with pytest.raises(WebhookError, match=f"^{field}: .*{problem}"):
        parse_voice(changed(VOICE, **{field: value}))


def test_a_field_that_is_not_text_is_malformed() -> None:
    form: dict[str, object] = {**VOICE, "To": b"+12025550100"}
    with pytest.raises(WebhookError, match=r"^To: is not text"):
        parse_voice(form)


def test_other_providers_identifiers_are_accepted() -> None:
    call = parse_voice(changed(VOICE, CallSid="b3877c40-da60-4998-90ad-b792e98472ca"))
    assert call.call_sid == "b3877c40-da60-4998-90ad-b792e98472ca"


@pytest.mark.parametrize(
    ("answered_by", "engine"),
    [
        (None, "human"),
        ("human", "human"),
        ("unknown", "unknown"),
        ("machine_start", "machine"),
        ("machine_end_beep", "machine"),
        ("machine_end_silence", "machine"),
        ("machine_end_other", "machine"),
        ("fax", "machine"),
    ],
)
def test_answered_by_as_the_engine_knows_it(answered_by: str | None, engine: str) -> None:
    assert engine_answered_by(answered_by) == engine


def test_status_callback_with_duration_sequence_and_timestamp() -> None:
    form = {
        "CallSid": CALL,
        "AccountSid": ACCOUNT,
        "CallStatus": "completed",
        "CallDuration": "42",
        "SequenceNumber": "3",
        "Timestamp": "Mon, 23 Nov 2026 11:34:44 +0000",
        "CallbackSource": "call-progress-events",
    }
    status = parse_call_status(form)
    assert status == CallStatusCallback(
        CALL,
        ACCOUNT,
        "completed",
        duration=42,
        sequence_number=3,
        timestamp=datetime(2026, 11, 23, 11, 34, 44, tzinfo=UTC),
    )
    assert parse_call_status(status.form()) == status
    minimal = parse_call_status({"CallSid": CALL, "AccountSid": ACCOUNT, "CallStatus": "busy"})
    assert (minimal.duration, minimal.sequence_number, minimal.timestamp) == (None, None, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("CallDuration", "4.5"),
        ("CallDuration", "-1"),
        ("SequenceNumber", "three"),
        ("Timestamp", "yesterday"),
        ("CallStatus", "hung-up"),
    ],
)
def test_status_callback_with_a_malformed_field(field: str, value: str) -> None:
    form = {"CallSid": CALL, "AccountSid": ACCOUNT, "CallStatus": "completed", field: value}
    with pytest.raises(WebhookError, match=f"^{field}: "):
        parse_call_status(form)


def test_gather_result_keys() -> None:
    assert parse_gather({"CallSid": CALL, "AccountSid": ACCOUNT, "Digits": "12*#"}).digits == "12*#"
    assert parse_gather({"CallSid": CALL, "AccountSid": ACCOUNT}).digits == ""
    with pytest.raises(WebhookError, match=r"^Digits: '12a' is not keypad keys"):
        parse_gather({"CallSid": CALL, "AccountSid": ACCOUNT, "Digits": "12a"})
    with pytest.raises(WebhookError, match=r"^CallSid: missing"):
        parse_gather({"AccountSid": ACCOUNT, "Digits": "1"})


RECORD = {
    "CallSid": CALL,
    "AccountSid": ACCOUNT,
    "RecordingUrl": RECORDING_URL,
    "RecordingSid": RECORDING,
    "RecordingDuration": "3",
}


def test_record_result_of_speech() -> None:
    result = parse_record(RECORD)
    assert result == RecordResult(CALL, ACCOUNT, RECORDING_URL, RECORDING, duration=3)
    assert (result.key, result.hung_up) == (None, False)
    assert parse_record(result.form()) == result


def test_record_result_ended_by_a_key_or_a_hang_up() -> None:
    keyed = parse_record({**RECORD, "Digits": "2"})
    assert (keyed.key, keyed.hung_up) == ("2", False)
    hung_up = parse_record({**RECORD, "Digits": "hangup"})
    assert (hung_up.key, hung_up.hung_up) == (None, True)


def test_record_result_takes_the_recording_sid_from_its_url_when_absent() -> None:
    assert parse_record(without(RECORD, "RecordingSid")).recording_sid == RECORDING


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (without(RECORD, "RecordingUrl"), "RecordingUrl"),
        (changed(RECORD, RecordingUrl="ftp://example.com/RE1"), "RecordingUrl"),
        (changed(RECORD, RecordingUrl="/Recordings/RE1"), "RecordingUrl"),
        (
            changed(without(RECORD, "RecordingSid"), RecordingUrl="https://api.example.com/"),
            "RecordingSid",
        ),
        (changed(RECORD, RecordingDuration="long"), "RecordingDuration"),
        (changed(RECORD, Digits="hang up"), "Digits"),
        (without(RECORD, "CallSid"), "CallSid"),
    ],
)
def test_record_result_with_a_missing_or_malformed_field(form: dict[str, str], field: str) -> None:
    with pytest.raises(WebhookError) as caught:
        parse_record(form)
    assert caught.value.field == field


SMS = {
    "MessageSid": MESSAGE,
    "SmsSid": MESSAGE,
    "AccountSid": ACCOUNT,
    "From": "+12025550143",
    "To": "+12025550100",
    "Body": "STOP",
    "NumMedia": "0",
}


def test_incoming_sms() -> None:
    sms = parse_incoming_sms(SMS)
    assert sms == IncomingSms(MESSAGE, ACCOUNT, "+12025550143", "+12025550100", "STOP")
    assert parse_incoming_sms(sms.form()) == sms
    assert parse_incoming_sms(without(SMS, "MessageSid")).message_sid == MESSAGE
    assert parse_incoming_sms(changed(SMS, Body="")).body == ""
    assert parse_incoming_sms(changed(SMS, To="55555")).to == "55555"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (without(SMS, "Body"), "Body"),
        (without(without(SMS, "MessageSid"), "SmsSid"), "MessageSid"),
        (changed(SMS, From="55555"), "From"),
        (changed(SMS, From="whatsapp:+12025550143"), "From"),
        (changed(SMS, To="+0123"), "To"),
        (without(SMS, "AccountSid"), "AccountSid"),
    ],
)
def test_incoming_sms_with_a_missing_or_malformed_field(form: dict[str, str], field: str) -> None:
    with pytest.raises(WebhookError) as caught:
        parse_incoming_sms(form)
    assert caught.value.field == field


def test_sms_status_callback() -> None:
    form = {
        "MessageSid": MESSAGE,
        "AccountSid": ACCOUNT,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
    }
    status = parse_sms_status(form)
    assert status == SmsStatusCallback(MESSAGE, ACCOUNT, "undelivered", 30003)
    assert parse_sms_status(status.form()) == status
    legacy = {"SmsSid": MESSAGE, "AccountSid": ACCOUNT, "SmsStatus": "delivered"}
    assert parse_sms_status(legacy) == SmsStatusCallback(MESSAGE, ACCOUNT, "delivered")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"MessageStatus": "lost"}, "MessageStatus"),
        ({"MessageStatus": ""}, "MessageStatus"),
        ({"ErrorCode": "E30003"}, "ErrorCode"),
        ({"MessageSid": ""}, "MessageSid"),
    ],
)
def test_sms_status_with_a_malformed_field(changes: dict[str, str], field: str) -> None:
    form = {"MessageSid": MESSAGE, "AccountSid": ACCOUNT, "MessageStatus": "sent", **changes}
    with pytest.raises(WebhookError) as caught:
        parse_sms_status(form)
    assert caught.value.field == field


def test_voice_webhook_form_round_trip() -> None:
    call = VoiceWebhook(
        CALL, ACCOUNT, "+12025550100", "+12025550143", "in-progress", "outbound-api", "human"
    )
    assert parse_voice(call.form()) == call
    assert parse_gather(GatherResult(CALL, ACCOUNT, "5").form()) == GatherResult(CALL, ACCOUNT, "5")


# -- signatures -------------------------------------------------------------------------------


def test_signature_round_trip() -> None:
    signature = sign(TOKEN, URL, VOICE)
    assert verify_signature(TOKEN, URL, VOICE, signature)


def test_signature_with_the_wrong_token_url_or_params_fails() -> None:
    signature = sign(TOKEN, URL, VOICE)
    assert not verify_signature("another-token", URL, VOICE, signature)
    assert not verify_signature(TOKEN, URL.replace("turn=3", "turn=4"), VOICE, signature)
    assert not verify_signature(TOKEN, URL.replace("https:", "http:"), VOICE, signature)
    assert not verify_signature(TOKEN, URL, changed(VOICE, From="+12025550199"), signature)
    assert not verify_signature(TOKEN, URL, {**VOICE, "Digits": "1"}, signature)
    assert not verify_signature(TOKEN, URL, without(VOICE, "Caller"), signature)


@pytest.mark.parametrize("signature", [None, "", "not-a-signature"])
def test_a_missing_or_garbled_signature_fails(signature: str | None) -> None:
    assert not verify_signature(TOKEN, URL, VOICE, signature)


def test_an_empty_token_never_verifies() -> None:
    assert not verify_signature("", URL, VOICE, sign("", URL, VOICE))


def test_the_default_port_may_or_may_not_be_in_the_url() -> None:
    signature = sign(TOKEN, "https://ivr.example.com/twilio/voice", VOICE)
    assert verify_signature(TOKEN, "https://ivr.example.com:443/twilio/voice", VOICE, signature)


def test_repeated_parameters_are_all_signed() -> None:
    params = MultiDict([("Name", "a"), ("Name", "b"), ("Other", "c")])
    signature = sign(TOKEN, URL, params)
    assert verify_signature(TOKEN, URL, params, signature)
    assert not verify_signature(TOKEN, URL, MultiDict([("Name", "a"), ("Other", "c")]), signature)


def test_non_text_parameters_never_verify() -> None:
    signature = sign(TOKEN, URL, VOICE)
    assert not verify_signature(TOKEN, URL, {**VOICE, "Upload": b"bytes"}, signature)
    with pytest.raises(ValueError, match="only text"):
        sign(TOKEN, URL, {"Upload": b"bytes"})
