"""A small Media-Streams-speaking application for the simulator's stream tests.

It implements just enough of the server side of Twilio's protocol, written from Twilio's
documentation independently of the product's own server: it checks the upgrade's
``X-Twilio-Signature`` against the ``wss://`` URL, plays a prompt as ``media`` frames followed
by a ``mark``, counts the caller's frames until the echo, sends ``clear`` when the caller's
audio carries energy while a prompt plays, and closes the socket once the caller has answered
(speech that ended, or a key). Every message is kept, with how many caller frames had arrived
when it came, so tests check order and frame counts rather than wall-clock time.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from twilio.request_validator import RequestValidator

from ivr.speech.audio import mulaw_to_pcm16, pcm16_to_mulaw, rms
from tests.telephony_sim.conftest import AUTH_TOKEN, FakeIvr, tone

FRAME = 160
SPEECH_RMS = 300.0  # a caller frame louder than this is speech (the simulator's silence is 0)
SPEECH_END_FRAMES = 15  # 300 ms of quiet after speech ends the caller's answer


def prompt_audio(seconds: float) -> bytes:
    return pcm16_to_mulaw(tone(seconds))


@dataclass
class Received:
    message: dict[str, Any]
    caller_frames: int  # caller media frames received before this message (this one included)


@dataclass
class StreamSession:
    """One WebSocket the simulator opened, as the application saw it."""

    path_qs: str
    signature: str
    signed: bool
    received: list[Received] = field(default_factory=list)
    sent: list[tuple[str, int]] = field(default_factory=list)  # (what, caller frames by then)
    closed_by_peer: bool = False

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r.message for r in self.received if r.message.get("event") == name]

    def frames_when(self, event: str, **match: str) -> int:
        """Caller frames received when the first ``event`` message matching ``match`` came."""
        for r in self.received:
            body = r.message.get(event, {})
            if r.message.get("event") == event and all(body.get(k) == v for k, v in match.items()):
                return r.caller_frames
        raise AssertionError(f"no {event} {match} received")

    def sent_at(self, what: str) -> int:
        return next(frames for name, frames in self.sent if name == what)


class StreamApp:
    """The application: TwiML from a :class:`FakeIvr`, and a Media Streams endpoint."""

    def __init__(self, ivr: FakeIvr) -> None:
        self.ivr = ivr
        self.sessions: list[StreamSession] = []
        self.prompts: list[float] = [1.0]  # seconds of each prompt, each followed by a mark
        self.barge_in = True  # clear the prompt when the caller speaks over it
        self.misbehave: str | None = None  # "binary", "garbage", "unknown" after the start
        self.validator = RequestValidator(AUTH_TOKEN)

    def stream_url(self, query: str = "") -> str:
        return self.ivr.base.replace("http://", "wss://") + "/stream" + query

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/stream", self.handle)
        app.router.add_route("*", "/{tail:.*}", self.ivr.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._serve(request)
        except asyncio.CancelledError:
            # aiohttp's test server cancels a handler whose connection was lost.
            self.sessions[-1].closed_by_peer = True
            raise

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        signature = request.headers.get("X-Twilio-Signature", "")
        url = self.stream_url() + (f"?{request.query_string}" if request.query_string else "")
        session = StreamSession(
            request.path_qs, signature, self.validator.validate(url, {}, signature)
        )
        self.sessions.append(session)
        if not session.signed:
            return web.Response(status=403, text="bad signature")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        frames, speaking, quiet, pending = 0, False, 0, set()
        sid = ""

        async def send(what: str, message: dict[str, Any]) -> None:
            session.sent.append((what, frames))
            await ws.send_str(json.dumps(message))

        async for raw in ws:
            if raw.type != WSMsgType.TEXT:
                session.closed_by_peer = raw.type in (WSMsgType.CLOSED, WSMsgType.ERROR)
                break
            message = json.loads(raw.data)
            event = message["event"]
            if event == "media":
                frames += 1
            session.received.append(Received(message, frames))
            if event == "start":
                sid = message["streamSid"]
                if self.misbehave == "binary":
                    await ws.send_bytes(b"\x00\x01")
                elif self.misbehave == "garbage":
                    await ws.send_str("this is not json")
                elif self.misbehave == "unknown":
                    await ws.send_str(json.dumps({"event": "dance", "streamSid": sid}))
                for n, seconds in enumerate(self.prompts, 1):
                    payload = base64.b64encode(prompt_audio(seconds)).decode()
                    await send(f"media-{n}", {"event": "media", "streamSid": sid,
                                              "media": {"payload": payload}})  # fmt: skip
                    await send(f"mark-{n}", {"event": "mark", "streamSid": sid,
                                             "mark": {"name": f"prompt-{n}"}})  # fmt: skip
                    pending.add(f"prompt-{n}")
            elif event == "mark":
                pending.discard(message["mark"]["name"])
            elif event == "dtmf":
                break  # a key answers: the application goes on over HTTP
            elif event == "stop":
                session.closed_by_peer = True
                break
            elif event == "media":
                loud = (
                    rms(mulaw_to_pcm16(base64.b64decode(message["media"]["payload"]))) > SPEECH_RMS
                )
                if loud and not speaking:
                    speaking = True
                    if pending and self.barge_in:
                        await send("clear", {"event": "clear", "streamSid": sid})
                quiet = 0 if loud else quiet + 1
                if speaking and quiet >= SPEECH_END_FRAMES:
                    break  # the answer is over
        else:
            session.closed_by_peer = True  # the socket went away under us
        if not ws.closed:
            await ws.close()
        return ws
