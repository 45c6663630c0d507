"""What the simulated telephone network remembers: calls, messages, recordings, webhooks.

Everything here is plain data with the JSON shapes of Twilio's REST API (``2010-04-01``), so
that a client written against the real API reads the simulator's answers unchanged. The
records double as the inspectable log tests and ``ivr demo`` read after a call.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

import phonenumbers

from ivr.speech.audio import TELEPHONY_RATE, duration_seconds, write_wav
from ivr.telephony.provider import FINAL_CALL_STATUSES, CallStatus, MessageStatus
from ivr.telephony.twilio import API_VERSION

EntryKind = Literal[
    "play",
    "say",
    "pause",
    "beep",
    "keys",
    "speech",
    "audio",
    "silence",
    "recording",
    "gather-timeout",
    "redirect",
    "dial",
    "hangup",
    "caller-hangup",
    "reject",
    "note",
    "error",
    "stream",  # a Media Stream opened, closed or dropped
    "heard",  # a prompt played over a Media Stream: how much of it the caller heard
]


@dataclass(frozen=True)
class SimulatorSettings:
    """How the simulated network behaves; the defaults suit tests (no real waiting)."""

    # Real seconds slept per simulated second of prompts, pauses and timeouts: 0 runs calls
    # as fast as the application answers, 1 in real time (``ivr demo``).
    pace: float = 0.0
    # Voice, action and redirect requests allowed per call before it is ended as a loop.
    max_webhooks_per_call: int = 50
    webhook_timeout: float = 15.0  # Twilio's own limit for an answer to a webhook
    keep_prompt_audio: bool = False  # keep decoded <Play> audio in the transcript entries
    # Media Streams run on their own clock (a frame every 20 ms of call time): real seconds
    # per call second. 1.0 is a real phone line; 0.2 runs five times faster. Never 0: the
    # application paces its own timeouts by the frames it receives.
    stream_time_scale: float = 1.0
    # False: a wss:// stream URL is reached over plain ws:// (local servers have no
    # certificate); the signature still covers the wss:// URL exactly as the TwiML wrote it.
    stream_tls: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.stream_time_scale <= 10:
            raise ValueError(f"stream_time_scale must be in (0, 10], not {self.stream_time_scale}")


def new_sid(prefix: str) -> str:
    """A Twilio-shaped resource id: two letters and 32 hex digits (``CA...``, ``RE...``)."""
    return prefix + secrets.token_hex(16)


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's REST and webhook timestamps: ``Tue, 24 Nov 2026 10:00:00 +0000``."""
    return None if moment is None else format_datetime(moment.astimezone(UTC))


@dataclass(frozen=True)
class TranscriptEntry:
    """One thing that happened on a call, as the caller experienced it.

    ``at`` is the simulated time in seconds since the call was answered; ``data`` holds the
    details (URL, duration, keys, recording sid ...). ``audio`` keeps decoded prompt audio
    (8 kHz 16-bit PCM) only when the simulator was asked to keep it.
    """

    kind: EntryKind
    text: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)
    audio: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "at": round(self.at, 3), **self.data}


@dataclass
class WebhookExchange:
    """One HTTP request the simulator sent to the application, and what came back."""

    purpose: str  # voice, action, redirect, play, status, recording-status, sms, sms-status
    method: str
    url: str
    params: dict[str, str]
    signature: str
    sid: str | None  # the call or message it belongs to
    status: int | None = None  # None: no HTTP answer (connection refused, timeout)
    content_type: str = ""
    body: str = ""  # text responses only; audio is summarised by its length
    error: str | None = None
    elapsed: float = 0.0  # wall-clock seconds for the round trip


@dataclass(frozen=True)
class ApiRequest:
    """One request the application made to the simulator's REST API, and the answer's status."""

    method: str
    path: str  # e.g. /2010-04-01/Accounts/AC.../Calls/CA....json
    status: int


@dataclass
class Recording:
    """A caller's recording, served as 8 kHz 16-bit PCM WAV until it is deleted."""

    sid: str
    account_sid: str
    call_sid: str
    pcm: bytes = field(repr=False)
    created: datetime
    source: str  # what the caller did: the said text, the audio file, the keys
    deleted: bool = False

    @property
    def duration(self) -> float:
        return duration_seconds(self.pcm, TELEPHONY_RATE)

    def wav(self) -> bytes:
        return write_wav(None, self.pcm, TELEPHONY_RATE)

    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{self.sid}"

    def to_json(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "call_sid": self.call_sid,
            "channels": 1,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.created),
            "duration": str(whole_seconds(self.duration)),
            "sid": self.sid,
            "source": "RecordVerb",
            "start_time": rfc2822(self.created),
            "status": "completed",
            "uri": self.uri() + ".json",
        }


def whole_seconds(seconds: float) -> int:
    """Twilio reports durations as whole seconds, rounding a started second up."""
    whole = int(seconds)
    return whole + 1 if seconds > whole else whole


@dataclass
class CallRecord:
    """One simulated call: what was asked for, how it went, and its transcript.

    This is also the result object tests await: ``status`` and ``duration`` are final once
    ``done`` is set; ``end_reason`` says who or what ended it.
    """

    sid: str
    account_sid: str
    direction: Literal["outbound-api", "inbound"]
    from_: str
    to: str
    url: str
    api_base: str  # where this call's recordings are served (RecordingUrl)
    method: str = "POST"
    form: list[tuple[str, str]] = field(default_factory=list)  # the REST request, verbatim
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: frozenset[str] = frozenset({"completed"})
    machine_detection: str | None = None
    timeout: int = 60
    status: CallStatus = "queued"
    answered_by: str | None = None
    created: datetime = field(default_factory=utcnow)
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None  # whole seconds of talk time, set when the call ends
    end_reason: str | None = None  # hangup, caller-hangup, dial, reject, error, canceled ...
    transfer_to: str | None = None
    transcript: list[TranscriptEntry] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    unused_turns: int = 0  # scripted caller turns the call ended before
    webhook_requests: int = 0  # voice/action/redirect requests: the redirect-loop guard counts
    status_callbacks_sent: int = 0
    elapsed: float = 0.0  # simulated seconds since the answer
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    end_requested: str | None = None  # set by a REST update (Status=completed / canceled)

    @property
    def final(self) -> bool:
        return self.status in FINAL_CALL_STATUSES

    @property
    def errors(self) -> list[str]:
        return [entry.text for entry in self.transcript if entry.kind == "error"]

    def entries(self, *kinds: EntryKind) -> list[TranscriptEntry]:
        return [entry for entry in self.transcript if entry.kind in kinds]

    def log(
        self, kind: EntryKind, text: str, /, *, audio: bytes | None = None, **data: Any
    ) -> TranscriptEntry:
        entry = TranscriptEntry(kind, text, self.elapsed, data, audio)
        self.transcript.append(entry)
        return entry

    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        base = self.uri().removesuffix(".json")
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.end_time or self.start_time or self.created),
            "direction": self.direction,
            "duration": None if self.duration is None else str(self.duration),
            "end_time": rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {
                "notifications": base + "/Notifications.json",
                "recordings": base + "/Recordings.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": self.uri(),
        }


@dataclass
class MessageRecord:
    """One SMS: sent through ``Messages.json``, received by the app, or its TwiML reply."""

    sid: str
    account_sid: str
    direction: Literal["outbound-api", "outbound-reply", "inbound"]
    from_: str
    to: str
    body: str
    status: MessageStatus = "queued"
    status_callback: str | None = None
    error_code: int | None = None
    form: list[tuple[str, str]] = field(default_factory=list)
    created: datetime = field(default_factory=utcnow)
    sent: datetime | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # Debugger alerts, as Twilio logs them: a status callback answered other than 2xx (11200).
    errors: list[str] = field(default_factory=list)

    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.created),
            "date_sent": rfc2822(self.sent),
            "date_updated": rfc2822(self.sent or self.created),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(self.body) // 153)) if len(self.body) > 160 else 1),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri().removesuffix(".json") + "/Media.json"},
            "to": self.to,
            "uri": self.uri(),
        }


class RecordingStore:
    """The recordings of every call, by sid; deleted ones are remembered as deleted (404)."""

    def __init__(self) -> None:
        self._by_sid: dict[str, Recording] = {}

    def create(self, call: CallRecord, pcm: bytes, source: str) -> Recording:
        recording = Recording(new_sid("RE"), call.account_sid, call.sid, pcm, utcnow(), source)
        self._by_sid[recording.sid] = recording
        call.recordings.append(recording.sid)
        return recording

    def get(self, sid: str) -> Recording | None:
        recording = self._by_sid.get(sid)
        return None if recording is None or recording.deleted else recording

    def delete(self, sid: str) -> bool:
        recording = self.get(sid)
        if recording is None:
            return False
        recording.deleted = True
        recording.pcm = b""  # the audio is gone, as at the provider
        return True

    def __iter__(self) -> Iterator[Recording]:
        return iter(self._by_sid.values())

    def __len__(self) -> int:
        return len(self._by_sid)


def country_of(number: str) -> str:
    """ISO country of an E.164 number (``US``), or empty when it cannot be told."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return ""
    return region if region and region != "ZZ" else ""


def voice_params(call: CallRecord, status: str) -> dict[str, str]:
    """The parameters Twilio sends with every voice request and status callback of a call."""
    return {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": status,
        "Called": call.to,
        "Caller": call.from_,
        "Direction": call.direction,
        "From": call.from_,
        "FromCountry": country_of(call.from_),
        "To": call.to,
        "ToCountry": country_of(call.to),
    }
