"""Twilio Media Streams frames: parse what Twilio sends, render what the server sends back.

Pure functions, no I/O. The protocol (Twilio's "Media Streams - WebSocket Messages"):

- From Twilio, JSON **text** frames with an ``event``:
  ``connected`` {protocol, version} (first, no sequence number);
  ``start`` {sequenceNumber, streamSid, start: {accountSid, callSid, streamSid, tracks,
  customParameters, mediaFormat: {encoding "audio/x-mulaw", sampleRate 8000, channels 1}}};
  ``media`` {sequenceNumber, streamSid, media: {track, chunk, timestamp, payload}} about every
  20 ms (160 bytes of base64 mu-law); ``dtmf`` {sequenceNumber, streamSid, dtmf: {track,
  digit}}; ``mark`` {sequenceNumber, streamSid, mark: {name}} (the echo of one of ours);
  ``stop`` {sequenceNumber, streamSid, stop: {accountSid, callSid}}. Numbers arrive as
  strings. Binary frames are a protocol error.
- To Twilio: ``media`` {streamSid, media: {payload}}, ``mark`` {streamSid, mark: {name}} and
  ``clear`` {streamSid}.

``parse_frame`` is strict: anything off (not JSON, not an object, an unknown event, a missing
or mistyped field, a number that is not a decimal string, bad base64, another media format) is
a :class:`FrameError` naming the field, for the route to log and drop or close on.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MULAW = "audio/x-mulaw"
SAMPLE_RATE = 8000
# Twilio sends (and plays) 20 ms frames: 160 mu-law bytes at 8 kHz.
FRAME_BYTES = 160
DTMF_DIGITS = frozenset("0123456789*#")
MAX_MARK_NAME = 200


class FrameError(ValueError):
    """A frame that is not Twilio's protocol; the message names what is wrong."""


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    sequence: int
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    parameters: dict[str, str]


@dataclass(frozen=True)
class Media:
    sequence: int
    stream_sid: str
    track: str
    chunk: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True)
class Dtmf:
    sequence: int
    stream_sid: str
    digit: str


@dataclass(frozen=True)
class Mark:
    sequence: int
    stream_sid: str
    name: str


@dataclass(frozen=True)
class Stop:
    sequence: int
    stream_sid: str
    account_sid: str
    call_sid: str


Frame = Connected | Start | Media | Dtmf | Mark | Stop


def parse_frame(text: str) -> Frame:
    """One text frame from Twilio; FrameError for anything else."""
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FrameError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise FrameError("not a JSON object")
    event = message.get("event")
    if event == "connected":
        return Connected(_text(message, "protocol"), _text(message, "version"))
    parser = _PARSERS.get(event) if isinstance(event, str) else None
    if parser is None:
        raise FrameError(f"event: unknown event {event!r}")
    return parser(message, _number(message, "sequenceNumber"), _text(message, "streamSid"))


def _start(message: dict[str, Any], sequence: int, stream_sid: str) -> Start:
    start = _object(message, "start")
    if _text(start, "streamSid", "start.") != stream_sid:
        raise FrameError("start.streamSid: differs from streamSid")
    media_format = _object(start, "mediaFormat", "start.")
    encoding = media_format.get("encoding")
    rate = media_format.get("sampleRate")
    channels = media_format.get("channels")
    if (encoding, str(rate), str(channels)) != (MULAW, str(SAMPLE_RATE), "1"):
        raise FrameError(
            f"start.mediaFormat: expected {MULAW} {SAMPLE_RATE} Hz mono, "
            f"got {encoding!r} {rate!r} Hz {channels!r} channel(s)"
        )
    tracks = start.get("tracks", [])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise FrameError("start.tracks: not a list of strings")
    parameters = start.get("customParameters", {})
    if not isinstance(parameters, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()
    ):
        raise FrameError("start.customParameters: not an object of strings")
    return Start(
        sequence,
        stream_sid,
        _text(start, "accountSid", "start."),
        _text(start, "callSid", "start."),
        tuple(tracks),
        dict(parameters),
    )


def _media(message: dict[str, Any], sequence: int, stream_sid: str) -> Media:
    media = _object(message, "media")
    encoded = _text(media, "payload", "media.")
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError("media.payload: not base64") from None
    return Media(
        sequence,
        stream_sid,
        str(media.get("track", "inbound")),
        _number(media, "chunk", "media."),
        _number(media, "timestamp", "media."),
        payload,
    )


def _dtmf(message: dict[str, Any], sequence: int, stream_sid: str) -> Dtmf:
    digit = _text(_object(message, "dtmf"), "digit", "dtmf.")
    if digit not in DTMF_DIGITS:
        raise FrameError(f"dtmf.digit: {digit!r} is not a key")
    return Dtmf(sequence, stream_sid, digit)


def _mark(message: dict[str, Any], sequence: int, stream_sid: str) -> Mark:
    return Mark(sequence, stream_sid, _text(_object(message, "mark"), "name", "mark."))


def _stop(message: dict[str, Any], sequence: int, stream_sid: str) -> Stop:
    stop = _object(message, "stop")
    return Stop(
        sequence, stream_sid, _text(stop, "accountSid", "stop."), _text(stop, "callSid", "stop.")
    )


_PARSERS: dict[str, Callable[[dict[str, Any], int, str], Frame]] = {
    "start": _start,
    "media": _media,
    "dtmf": _dtmf,
    "mark": _mark,
    "stop": _stop,
}


def _object(message: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = message.get(key)
    if not isinstance(value, dict):
        raise FrameError(f"{where}{key}: missing or not an object")
    return value


def _text(message: dict[str, Any], key: str, where: str = "") -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value:
        raise FrameError(f"{where}{key}: missing or not a string")
    return value


def _number(message: dict[str, Any], key: str, where: str = "") -> int:
    """Twilio sends numbers as decimal strings ("1"); a JSON number is accepted too."""
    value = message.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) < 19:
        return int(value)
    raise FrameError(f"{where}{key}: missing or not a number")


# -- frames to Twilio -------------------------------------------------------------------------


def render_media(stream_sid: str, mulaw: bytes) -> str:
    payload = base64.b64encode(mulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def render_mark(stream_sid: str, name: str) -> str:
    if not name or len(name) > MAX_MARK_NAME:
        raise ValueError(f"mark name {name!r}: 1 to {MAX_MARK_NAME} characters")
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def render_clear(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
