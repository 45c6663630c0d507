"""The Twilio adapter: Twilio's dialect of calls, in one package.

This module re-exports the webhook codecs, the signature check and the REST client. The code
lives in ``webhooks`` (pure parsing and signatures), ``rest`` (the HTTP client), ``twiml``
(pure TwiML rendering), ``media`` (Media Streams frames), ``urls`` (the ``/twilio/...`` action
URLs), ``dialect`` (the call runtime's ``CallDialect``, in TwiML) and the aiohttp routes
``routes`` (webhooks) and ``stream`` (the Media Streams WebSocket). SignalWire and Telnyx
TeXML accept the same requests and send the same webhooks.
"""

from __future__ import annotations

from ivr.telephony.twilio.rest import (
    API_VERSION,
    CALL_EVENTS,
    DEFAULT_API_BASE,
    RetryPolicy,
    TwilioRestClient,
)
from ivr.telephony.twilio.webhooks import (
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
