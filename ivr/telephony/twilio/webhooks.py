"""Twilio webhooks: typed parsing of the form posts and the signature check.

Pure functions. Each ``parse_*`` takes the POST form (any mapping of names to values, such
as aiohttp's ``await request.post()``) and returns a frozen dataclass, or raises
``WebhookError`` naming the first missing or malformed field (the routes answer 400).
Each dataclass has ``form()``, the parameters Twilio sends for it, so that the simulator and
the tests produce exactly what the parsers accept.

SIDs are checked for shape, not for Twilio's ``CA`` + 32 hex digits: SignalWire and Telnyx
speak this dialect with identifiers of their own (UUIDs, ``v3:...``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import cast
from urllib.parse import urlsplit

from multidict import MultiDict
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped, unused-ignore]

from ivr.dialplan.vocabulary import AnsweredBy
from ivr.telephony.provider import (
    CALL_STATUSES,
    MESSAGE_STATUSES,
    CallStatus,
    MessageStatus,
)

SIGNATURE_HEADER = "X-Twilio-Signature"
HANGUP_DIGITS = "hangup"
# Twilio posts every webhook form-encoded; a JSON body is not a Twilio webhook.
FORM_TYPE = "application/x-www-form-urlencoded"

# \Z, not $: "$" also matches before a trailing newline, and "+12025550142\n" is not a number
# (it would be stored, and never match the caller's opt-out).
_E164 = re.compile(r"^\+[1-9][0-9]{4,14}\Z")
_SHORT_CODE = re.compile(r"^[0-9]{3,8}\Z")
_SID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}\Z")
_KEYS = re.compile(r"^[0-9*#]*\Z")
# Counts (durations in seconds, sequence numbers, error codes) are stored in 32-bit integer
# columns (PostgreSQL INTEGER); a larger one is no real value, and the database would refuse it.
MAX_COUNT = 2**31 - 1

Form = Mapping[str, object]


class WebhookError(ValueError):
    """A webhook lacks a field or carries a malformed one."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def is_e164(number: str) -> bool:
    return bool(_E164.match(number))


def engine_answered_by(answered_by: str | None) -> AnsweredBy:
    """Twilio's ``AnsweredBy`` as the engine knows it.

    No value (no detection asked for, or an inbound call) means a person. Twilio reports
    ``machine_start``, ``machine_end_beep``, ``machine_end_silence``, ``machine_end_other``
    and ``fax``: nobody to talk to in each case.
    """
    if answered_by is None or answered_by == "human":
        return "human"
    if answered_by.startswith("machine") or answered_by == "fax":
        return "machine"
    return "unknown"


@dataclass(frozen=True)
class VoiceWebhook:
    """``POST /twilio/voice``: an incoming call, or the answer of an outbound one."""

    call_sid: str
    account_sid: str
    from_number: str
    to: str
    status: CallStatus
    direction: str = ""
    answered_by: str | None = None

    @property
    def caller_number(self) -> str | None:
        """``From`` when it is a phone number (E.164); None for SIP, clients and the like."""
        return self.from_number if is_e164(self.from_number) else None

    def form(self) -> dict[str, str]:
        form = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.from_number,
            "To": self.to,
            "CallStatus": self.status,
            "Direction": self.direction,
            "ApiVersion": "2010-04-01",
        }
        return _with(form, AnsweredBy=self.answered_by)


@dataclass(frozen=True)
class CallStatusCallback:
    """``POST /twilio/status``: a call changed status (callbacks repeat and reorder)."""

    call_sid: str
    account_sid: str
    status: CallStatus
    duration: int | None = None
    answered_by: str | None = None
    sequence_number: int | None = None
    timestamp: datetime | None = None

    def form(self) -> dict[str, str]:
        form = {"CallSid": self.call_sid, "AccountSid": self.account_sid}
        return _with(
            form,
            CallStatus=self.status,
            CallDuration=self.duration,
            AnsweredBy=self.answered_by,
            SequenceNumber=self.sequence_number,
            Timestamp=format_datetime(self.timestamp) if self.timestamp else None,
        )


@dataclass(frozen=True)
class GatherResult:
    """A ``<Gather>`` action request: the keys pressed (``""`` when there were none)."""

    call_sid: str
    account_sid: str
    digits: str = ""

    def form(self) -> dict[str, str]:
        return {"CallSid": self.call_sid, "AccountSid": self.account_sid, "Digits": self.digits}


@dataclass(frozen=True)
class RecordResult:
    """A ``<Record>`` action request: a recording, maybe ended by a key or a hang-up."""

    call_sid: str
    account_sid: str
    recording_url: str
    recording_sid: str
    duration: int | None = None
    digits: str = ""

    @property
    def hung_up(self) -> bool:
        return self.digits == HANGUP_DIGITS

    @property
    def key(self) -> str | None:
        """The key that ended the recording, if one did."""
        return self.digits if self.digits and not self.hung_up else None

    def form(self) -> dict[str, str]:
        form = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "RecordingUrl": self.recording_url,
            "RecordingSid": self.recording_sid,
            "Digits": self.digits,
        }
        return _with(form, RecordingDuration=self.duration)


@dataclass(frozen=True)
class IncomingSms:
    """``POST /twilio/sms``: a text message to one of our numbers."""

    message_sid: str
    account_sid: str
    from_number: str
    to: str
    body: str

    def form(self) -> dict[str, str]:
        return {
            "MessageSid": self.message_sid,
            "SmsSid": self.message_sid,
            "AccountSid": self.account_sid,
            "From": self.from_number,
            "To": self.to,
            "Body": self.body,
        }


@dataclass(frozen=True)
class SmsStatusCallback:
    """``POST /twilio/sms-status``: delivery progress of a message we sent."""

    message_sid: str
    account_sid: str
    status: MessageStatus
    error_code: int | None = None

    def form(self) -> dict[str, str]:
        form = {
            "MessageSid": self.message_sid,
            "AccountSid": self.account_sid,
            "MessageStatus": self.status,
        }
        return _with(form, ErrorCode=self.error_code)


def parse_voice(form: Form) -> VoiceWebhook:
    return VoiceWebhook(
        call_sid=_sid(form, "CallSid"),
        account_sid=_sid(form, "AccountSid"),
        from_number=_required(form, "From"),
        to=_number(form, "To"),
        status=_call_status(form),
        direction=_optional(form, "Direction") or "",
        answered_by=_optional(form, "AnsweredBy"),
    )


def parse_call_status(form: Form) -> CallStatusCallback:
    return CallStatusCallback(
        call_sid=_sid(form, "CallSid"),
        account_sid=_sid(form, "AccountSid"),
        status=_call_status(form),
        duration=_count(form, "CallDuration"),
        answered_by=_optional(form, "AnsweredBy"),
        sequence_number=_count(form, "SequenceNumber"),
        timestamp=_timestamp(form, "Timestamp"),
    )


def parse_gather(form: Form) -> GatherResult:
    return GatherResult(
        call_sid=_sid(form, "CallSid"),
        account_sid=_sid(form, "AccountSid"),
        digits=_keys(form, "Digits"),
    )


def parse_record(form: Form) -> RecordResult:
    url = _required(form, "RecordingUrl")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WebhookError("RecordingUrl", f"{url[:80]!r} is not an http(s) URL")
    # Twilio sends RecordingSid too; the URL ends with it, which covers providers that don't.
    recording_sid = _optional(form, "RecordingSid") or parts.path.rsplit("/", 1)[-1]
    if not _SID.match(recording_sid):
        raise WebhookError("RecordingSid", "missing, and RecordingUrl does not end with one")
    digits = _optional(form, "Digits") or ""
    if digits != HANGUP_DIGITS and not _KEYS.match(digits):
        raise WebhookError("Digits", f"{digits[:40]!r} is neither keys nor {HANGUP_DIGITS!r}")
    return RecordResult(
        call_sid=_sid(form, "CallSid"),
        account_sid=_sid(form, "AccountSid"),
        recording_url=url,
        recording_sid=recording_sid,
        duration=_count(form, "RecordingDuration"),
        digits=digits,
    )


def parse_incoming_sms(form: Form) -> IncomingSms:
    body = form.get("Body")
    if not isinstance(body, str):
        raise WebhookError("Body", "missing")
    return IncomingSms(
        message_sid=_sid(form, "MessageSid", fallback="SmsSid"),
        account_sid=_sid(form, "AccountSid"),
        from_number=_number(form, "From"),
        to=_number(form, "To", short_code=True),
        body=body,
    )


def parse_sms_status(form: Form) -> SmsStatusCallback:
    name = "MessageStatus" if "MessageStatus" in form else "SmsStatus"
    status = _required(form, name).lower()
    if status not in MESSAGE_STATUSES:
        raise WebhookError("MessageStatus", f"unknown status {status[:40]!r}")
    return SmsStatusCallback(
        message_sid=_sid(form, "MessageSid", fallback="SmsSid"),
        account_sid=_sid(form, "AccountSid"),
        status=cast(MessageStatus, status),
        error_code=_count(form, "ErrorCode"),
    )


def parse_call_sid(form: Form) -> str:
    """The ``CallSid`` of any call webhook (a ``<Redirect>`` request carries no more we need)."""
    return _sid(form, "CallSid")


def body_type_problem(content_type: str, has_body: bool) -> str | None:
    """Why a webhook body of this ``Content-Type`` cannot be read, or None when it can."""
    if not has_body or content_type == FORM_TYPE:
        return None
    return f"the body is {content_type or 'untyped'}: Twilio webhooks are posted as {FORM_TYPE}"


def foreign_account(form: Form, account_sid: str | None) -> str | None:
    """The form's ``AccountSid`` when it names an account other than ours, else None.

    A correctly signed request for another account is a misconfiguration (two accounts
    sharing an auth token, or a number moved between subaccounts): it is not ours to act on.
    A form without ``AccountSid`` is left to the parsers, which name it as missing.
    """
    given = form.get("AccountSid")
    if not account_sid or not isinstance(given, str) or not given or given == account_sid:
        return None
    return given


def verify_signature(auth_token: str, url: str, params: Form, signature: str | None) -> bool:
    """True when ``signature`` (the ``X-Twilio-Signature`` header) signs this request.

    ``url`` is the full public URL the provider requested (the configured public base URL,
    the path and the query string exactly as received); ``params`` the POST form. A missing
    signature, an empty token or a form with non-text values never verifies.
    """
    pairs = _text_pairs(params)
    if not signature or not auth_token or pairs is None:
        return False
    return bool(RequestValidator(auth_token).validate(url, pairs, signature))


def sign(auth_token: str, url: str, params: Form) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for this request."""
    pairs = _text_pairs(params)
    if pairs is None:
        raise ValueError("only text parameters can be signed")
    return str(RequestValidator(auth_token).compute_signature(url, pairs))


def _text_pairs(params: Form) -> MultiDict[str] | None:
    # items() of a multidict yields every value of a repeated name; the validator reads
    # them back with getall(), so repeated parameters are signed the way Twilio signs them.
    pairs: MultiDict[str] = MultiDict()
    for name, value in params.items():
        if not isinstance(value, str):
            return None
        pairs.add(name, value)
    return pairs


def _with(form: dict[str, str], **optional: object) -> dict[str, str]:
    form.update({name: str(value) for name, value in optional.items() if value is not None})
    return form


def _optional(form: Form, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WebhookError(name, "is not text")
    return value or None


def _required(form: Form, name: str) -> str:
    value = _optional(form, name)
    if value is None:
        raise WebhookError(name, "missing")
    return value


def _sid(form: Form, name: str, fallback: str | None = None) -> str:
    if fallback is not None and name not in form and fallback in form:
        name = fallback
    value = _required(form, name)
    if not _SID.match(value):
        raise WebhookError(name, f"{value[:40]!r} is not an identifier")
    return value


def _number(form: Form, name: str, *, short_code: bool = False) -> str:
    value = _required(form, name)
    if is_e164(value) or (short_code and _SHORT_CODE.match(value)):
        return value
    raise WebhookError(name, f"{value[:40]!r} is not an E.164 phone number")


def _call_status(form: Form) -> CallStatus:
    value = _required(form, "CallStatus")
    if value not in CALL_STATUSES:
        raise WebhookError("CallStatus", f"unknown status {value[:40]!r}")
    return cast(CallStatus, value)


def _count(form: Form, name: str) -> int | None:
    value = _optional(form, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdecimal():
        raise WebhookError(name, f"{value[:40]!r} is not a whole number")
    if len(value) > len(str(MAX_COUNT)) or int(value) > MAX_COUNT:
        raise WebhookError(name, f"{value[:40]!r} is out of range (at most {MAX_COUNT})")
    return int(value)


def _keys(form: Form, name: str) -> str:
    value = _optional(form, name) or ""
    if not _KEYS.match(value):
        raise WebhookError(name, f"{value[:40]!r} is not keypad keys")
    return value


def _timestamp(form: Form, name: str) -> datetime | None:
    value = _optional(form, name)
    if value is None:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise WebhookError(name, f"{value[:40]!r} is not an RFC 2822 date") from exc
