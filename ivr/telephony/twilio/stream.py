"""Twilio Media Streams routes: the WebSocket ``GET /twilio/stream`` and the ``<Connect>``
action URL ``POST /twilio/stream-ended``.

The upgrade request is checked before anything else: ``X-Twilio-Signature`` over the
``wss://`` URL as Twilio requested it (the public base URL, the path and any query string;
no body) -> 403 without upgrading. Then Twilio's frames (``ivr.telephony.twilio.media``)
drive a :class:`~ivr.calls.media_session.MediaSession` for the call the signed ``call``
parameter of ``start`` names. What does not fit is logged and dropped, never fatal: frames
that are not JSON or not the protocol, binary frames, bad base64, another streamSid, repeated
or out-of-order sequence numbers. A ``start`` for a call that is unknown, ended, another
account's or another CallSid's closes the stream (Twilio then asks the action URL, which
answers what the stored call says). Whatever happens, the stream's end is the ``<Connect>``'s
end: a dropped WebSocket resumes the call from the database through the action URL.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web
from multidict import MultiDict

from ivr.calls.media_session import MediaSession
from ivr.telephony.twilio import SIGNATURE_HEADER, parse_call_sid, verify_signature
from ivr.telephony.twilio.dialect import CALL_PARAMETER, stream_url, verify_call_ref
from ivr.telephony.twilio.media import (
    Connected,
    Dtmf,
    Frame,
    FrameError,
    Mark,
    Media,
    Start,
    Stop,
    parse_frame,
    render_clear,
    render_mark,
    render_media,
)
from ivr.telephony.twilio.routes import _form, _handle, _turn
from ivr.telephony.twilio.urls import ENDED_ROUTE, STREAM_PATH
from ivr.web.keys import CALLS, LIVE, SERVICES

log = logging.getLogger(__name__)

# Media frames are ~250 bytes; anything far larger is not Twilio.
MAX_FRAME_BYTES = 64 * 1024
# A peer that keeps sending garbage is not Twilio: give up on it.
MAX_BAD_FRAMES = 50


class WebSocketTransport:
    """:class:`~ivr.calls.media.MediaTransport` over Twilio's stream framing."""

    def __init__(self, ws: web.WebSocketResponse, stream_sid: str) -> None:
        self.ws = ws
        self.stream_sid = stream_sid

    async def _send(self, text: str) -> None:
        if self.ws.closed:
            raise ConnectionResetError("the media stream is closed")
        await self.ws.send_str(text)

    async def send_audio(self, mulaw: bytes) -> None:
        await self._send(render_media(self.stream_sid, mulaw))

    async def send_mark(self, name: str) -> None:
        await self._send(render_mark(self.stream_sid, name))

    async def clear(self) -> None:
        await self._send(render_clear(self.stream_sid))


class _Stream:
    """One WebSocket from Twilio: frames in, one media session for the call."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.live = request.app[LIVE]
        self.start: Start | None = None
        self.session: MediaSession | None = None
        self.task: asyncio.Task[None] | None = None
        self.last_sequence = 0
        self.bad_frames = 0

    async def run(self) -> None:
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self._text(message.data)
                elif message.type == WSMsgType.BINARY:
                    self._bad("a binary frame (Twilio sends text frames only)")
                if self.bad_frames > MAX_BAD_FRAMES:
                    log.warning("media stream: too many bad frames; closing")
                    break
        finally:
            if self.task is not None and not self.task.done():
                # The WebSocket dropped mid-call: whatever was not committed is not lost,
                # Twilio asks the <Connect> action URL, which resumes at the stored turn.
                self.task.cancel()
                await asyncio.gather(self.task, return_exceptions=True)
            await self.ws.close()

    def _bad(self, why: str) -> None:
        self.bad_frames += 1
        log.warning("media stream %s: %s: ignored", self.start and self.start.stream_sid, why)

    async def _text(self, text: str) -> None:
        try:
            frame = parse_frame(text)
        except FrameError as exc:
            self._bad(str(exc))
            return
        if isinstance(frame, Connected):
            return
        if isinstance(frame, Start):
            await self._started(frame)
            return
        if self.start is None or self.session is None:
            self._bad(f"{type(frame).__name__.lower()} before start")
            return
        if frame.stream_sid != self.start.stream_sid:
            self._bad(f"streamSid {frame.stream_sid} is not this stream's")
            return
        if frame.sequence <= self.last_sequence:
            self._bad(f"sequenceNumber {frame.sequence} repeated or out of order")
            return
        self.last_sequence = frame.sequence
        self._deliver(frame, self.session)

    @staticmethod
    def _deliver(frame: Frame, session: MediaSession) -> None:
        if isinstance(frame, Media):
            if frame.track == "inbound":
                session.audio(frame.payload)
        elif isinstance(frame, Dtmf):
            session.dtmf(frame.digit)
        elif isinstance(frame, Mark):
            session.mark(frame.name)
        elif isinstance(frame, Stop):
            session.stop()

    async def _started(self, start: Start) -> None:
        if self.start is not None:
            self._bad("a second start")
            return
        ref = await self._call_of(start)
        if ref is None:
            await self.ws.close()
            return
        self.start, self.last_sequence = start, start.sequence
        transport = WebSocketTransport(self.ws, start.stream_sid)
        pace = self.request.app[SERVICES].settings.stream_pace
        self.session = MediaSession(self.live.runtime(ref), transport, pace=pace)
        if (older := self.live.streams.get(ref)) is not None and not older.done():
            # Twilio connects a new stream only after the old one ended for it; one still
            # running here lost its peer without noticing, and its timers must not answer.
            log.info("call %s: a new stream replaces one still open here", ref)
            older.cancel()
        self.task = asyncio.ensure_future(self._run_session(ref, self.session))
        self.live.streams[ref] = self.task

    async def _call_of(self, start: Start) -> str | None:
        """The call this stream is for, or None (logged) when it is not one of ours."""
        services = self.request.app[SERVICES]
        account = services.settings.twilio_account_sid
        if account and start.account_sid != account:
            log.warning("media stream %s: accountSid is not ours; closing", start.stream_sid)
            return None
        ref = verify_call_ref(services.secret, start.parameters.get(CALL_PARAMETER, ""))
        if ref is None:
            log.warning("media stream %s: no signed call reference; closing", start.stream_sid)
            return None
        async with services.store.read() as tx:
            call = await tx.calls.get(ref)
        if call is None or call.provider_sid != start.call_sid:
            log.warning(
                "media stream %s: call %s is not %s; closing", start.stream_sid, ref, start.call_sid
            )
            return None
        return ref

    async def _run_session(self, ref: str, session: MediaSession) -> None:
        try:
            ended = await session.run()
            log.info(
                "call %s: media stream ends (%s) after %d turns", ref, ended.value, session.turns
            )
        except ConnectionResetError:
            log.info("call %s: the media stream closed under the session", ref)
        except Exception:
            # A bug or a database failure must not leave the caller in silence: closing the
            # stream sends Twilio to the action URL, which resumes at the stored turn.
            log.exception("call %s: media session failed; closing the stream", ref)
        finally:
            if self.live.streams.get(ref) is self.task:
                del self.live.streams[ref]
            await self.ws.close()


async def stream(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    url = stream_url(services.base_url)
    if request.query_string:
        url += "?" + request.query_string
    token = services.settings.twilio_auth_token or ""
    if not verify_signature(token, url, MultiDict(), request.headers.get(SIGNATURE_HEADER)):
        log.warning("rejected media stream upgrade: bad or missing %s", SIGNATURE_HEADER)
        raise web.HTTPForbidden(text="invalid Twilio signature")
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    await _Stream(request, ws).run()
    return ws


async def stream_ended(request: web.Request) -> web.Response:
    """``<Connect>``'s action URL: the stream was closed by us, or it dropped."""
    ref, turn = _turn(request)
    calls, live = request.app[CALLS], request.app[LIVE]

    async def work() -> str:
        await calls.check_webhook(ref, parse_call_sid(_form(request)), turn)
        return await live.after_stream(ref)

    return await _handle(request, work)


def add_routes(app: web.Application) -> None:
    app.router.add_get(STREAM_PATH, stream)
    app.router.add_post(f"/twilio/{ENDED_ROUTE}", stream_ended)
