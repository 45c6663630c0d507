"""The Twilio dialect in one import: webhook codecs, the signature check and the REST client.

The code lives in ``twilio_webhooks`` (pure parsing and signatures) and ``twilio_rest``
(the HTTP client); TwiML rendering, shared by every provider speaking this dialect, is in
``twiml``. SignalWire and Telnyx TeXML accept the same requests and send the same webhooks.
"""

from __future__ import annotations

from ivr.telephony.twilio_rest import (
    API_VERSION,
    CALL_EVENTS,
    DEFAULT_API_BASE,
    RetryPolicy,
    TwilioRestClient,
)
from ivr.telephony.twilio_webhooks import (
    HANGUP_DIGITS,
    SIGNATURE_HEADER,
    CallStatusCallback,
    GatherResult,
    IncomingSms,
    RecordResult,
    SmsStatusCallback,
    VoiceWebhook,
    WebhookError,
    body_type_problem,
    engine_answered_by,
    foreign_account,
    is_e164,
    parse_call_sid,
    parse_call_status,
    parse_gather,
    parse_incoming_sms,
    parse_record,
    parse_sms_status,
    parse_voice,
    sign,
    verify_signature,
)

__all__ = [
    "API_VERSION",
    "CALL_EVENTS",
    "DEFAULT_API_BASE",
    "HANGUP_DIGITS",
    "SIGNATURE_HEADER",
    "CallStatusCallback",
    "GatherResult",
    "IncomingSms",
    "RecordResult",
    "RetryPolicy",
    "SmsStatusCallback",
    "TwilioRestClient",
    "VoiceWebhook",
    "WebhookError",
    "body_type_problem",
    "engine_answered_by",
    "foreign_account",
    "is_e164",
    "parse_call_sid",
    "parse_call_status",
    "parse_gather",
    "parse_incoming_sms",
    "parse_record",
    "parse_sms_status",
    "parse_voice",
    "sign",
    "verify_signature",
]
