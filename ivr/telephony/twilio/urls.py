"""The URLs this server puts in TwiML: ``/twilio/...`` action URLs with the call's turn, and
signed URLs of prompt audio."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from ivr.dialplan.vocabulary import Play, Say
from ivr.web.signing import signed_path

STREAM_PATH = "/twilio/stream"
# The <Connect> action URL: Twilio asks it when a media stream ends.
ENDED_ROUTE = "stream-ended"


def call_url(base_url: str, route: str, ref: str, **more: object) -> str:
    """``{base}/twilio/{route}?call=REF&...``: the opaque reference picks the call."""
    query = urlencode({"call": ref, **{k: v for k, v in more.items() if v not in (None, "")}})
    return f"{base_url}/twilio/{route}?{query}"


def opaque(text: str) -> str:
    """``text`` as unpadded URL-safe base64: a query value no HTTP client re-quotes.

    A URL inside a query (a recording's) would be percent-encoded, and clients differ in
    how they normalize that; the provider signs the URL exactly as we wrote it.
    """
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def from_opaque(value: str) -> str:
    """The inverse of :func:`opaque`; ValueError for anything it did not produce."""
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"not an opaque value: {exc}") from exc


@dataclass
class CallUrls:
    """``TurnUrls`` for one call and turn (see ivr.telephony.twilio.twiml)."""

    base_url: str
    ref: str
    turn: int
    secret: bytes
    ttl: float
    audio: dict[Say | Play, str] = field(default_factory=dict)

    def gather_url(self, typed: str = "") -> str:
        return call_url(self.base_url, "gather", self.ref, turn=self.turn, typed=typed)

    def record_url(self) -> str:
        return call_url(self.base_url, "record", self.ref, turn=self.turn)

    def no_input_url(self) -> str:
        return call_url(self.base_url, "no-input", self.ref, turn=self.turn)

    def audio_url(self, prompt: Say | Play) -> str | None:
        path = self.audio.get(prompt)
        if path is None:
            return None
        return self.base_url + signed_path(self.secret, path, int(time.time() + self.ttl))
