"""The call runtime's :class:`~ivr.calls.dialect.CallDialect` in TwiML, with Twilio's URLs.

Action URLs are ``/twilio/{route}?call=REF&turn=N`` (``urls.call_url``); prompt audio is a
signed, expiring URL of the file the runtime prepared. With ``streaming`` a turn that waits
for the caller is ``<Connect action=/twilio/stream-ended><Stream url=wss://PUBLIC/twilio/stream>``,
carrying a signed call reference as a ``<Parameter>`` (checked when the stream starts).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from ivr.dialplan.vocabulary import Listen, Output, Play, Say
from ivr.telephony.twilio.twiml import (
    needs_more_digits,
    render,
    render_after_prompts,
    render_connect,
    render_more_digits,
    render_say_hangup,
    render_wait,
)
from ivr.telephony.twilio.urls import ENDED_ROUTE, STREAM_PATH, CallUrls, call_url, opaque

# What a call that is over is answered (a repeated webhook of its last turn gets that turn's).
GONE = "<?xml version='1.0' encoding='utf-8'?>\n<Response><Hangup /></Response>"
# The <Parameter> of <Stream> that names the call (signed: see sign_call_ref).
CALL_PARAMETER = "call"


def stream_url(base_url: str) -> str:
    """The ``wss://`` URL of the stream route behind the public base URL (Twilio only
    connects over TLS; a proxy in front terminates it)."""
    parts = urlsplit(base_url)
    return f"wss://{parts.netloc}{parts.path.rstrip('/')}{STREAM_PATH}"


def _digest(secret: bytes, ref: str) -> str:
    return hmac.new(secret, f"stream|{ref}".encode(), hashlib.sha256).hexdigest()[:32]


def sign_call_ref(secret: bytes, ref: str) -> str:
    return f"{ref}.{_digest(secret, ref)}"


def verify_call_ref(secret: bytes, value: str) -> str | None:
    """The call reference in a signed stream parameter, or None if it is not ours."""
    ref, _, digest = value.rpartition(".")
    if not ref or not hmac.compare_digest(_digest(secret, ref), digest):
        return None
    return ref


class TwilioDialect:
    """TwiML responses and ``/twilio/...`` callback URLs behind ``base_url``."""

    def __init__(
        self, base_url: str, secret: bytes, audio_url_ttl: float, *, streaming: bool = False
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.audio_url_ttl = audio_url_ttl
        self._streaming = streaming

    @property
    def streaming(self) -> bool:
        return self._streaming

    def _urls(self, ref: str, turn: int, audio: Mapping[Say | Play, str]) -> CallUrls:
        return CallUrls(self.base_url, ref, turn, self.secret, self.audio_url_ttl, dict(audio))

    def turn(
        self,
        ref: str,
        turn: int,
        outputs: Sequence[Output],
        audio: Mapping[Say | Play, str],
        *,
        speech: bool,
    ) -> str:
        return render(outputs, self._urls(ref, turn, audio), speech=speech)

    def more_digits(
        self, ref: str, turn: int, listen: Listen, keys: str, *, speech: bool
    ) -> str | None:
        if not needs_more_digits(listen, keys, speech=speech):
            return None
        return render_more_digits(listen, keys, self._urls(ref, turn, {}))

    def say_and_hang_up(self, text: str, language: str) -> str:
        return render_say_hangup(text, language)

    def wait(self, ref: str, turn: int, recording_url: str, recording_sid: str, waits: int) -> str:
        more = {"waits": waits, "recording": opaque(recording_url), "sid": recording_sid}
        return render_wait(call_url(self.base_url, "recognizing", ref, turn=turn, **more), 1)

    def connect_stream(self, ref: str, turn: int) -> str:
        action = call_url(self.base_url, ENDED_ROUTE, ref, turn=turn)
        parameters = {CALL_PARAMETER: sign_call_ref(self.secret, ref)}
        return render_connect(stream_url(self.base_url), action, parameters)

    def after_streamed(self, outputs: Sequence[Output]) -> str:
        return render_after_prompts(outputs)

    def gone(self) -> str:
        return GONE

    def answer_url(self, ref: str) -> str:
        return call_url(self.base_url, "voice", ref)

    def status_url(self, ref: str) -> str:
        return call_url(self.base_url, "status", ref)

    def sms_status_url(self, sms_ref: str) -> str:
        return f"{self.base_url}/twilio/sms-status?sms={sms_ref}"
