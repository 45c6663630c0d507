"""Twilio's side of a bidirectional Media Stream (``<Connect><Stream>``) for one simulated call.

The simulator opens a real WebSocket to the stream URL, signed like Twilio signs the upgrade
(``X-Twilio-Signature`` over the URL as written, no body), and speaks Twilio's framing: JSON
text frames ``connected``, ``start``, then ``media`` every 20 ms of call time carrying the
caller's side of the line (silence, or the persona's speech as mu-law), ``dtmf`` for keys,
``mark`` echoes and ``stop`` when the caller hangs up. Numbers travel as strings, as Twilio
sends them.

What the application sends back goes into the caller's earpiece
(:mod:`ivr.telephony.simulator.earpiece`): played one 160-byte frame per tick, a ``mark``
echoed once the audio before it has played, ``clear`` honoured, each prompt logged as a
``heard`` transcript entry (how much the caller heard, whether ``clear`` cut it).

The caller acts after the robot stopped talking (a short reaction time after the queue ran
dry), or ``barge_in_ms`` after the robot started talking when the turn says so: ``say`` and
``audio`` turns become media frames, ``press`` becomes ``dtmf`` events, ``silence`` waits for
the robot to talk again and ``hangup`` sends ``stop``. The clock ticks every 20 ms of call
time, slept as ``stream_time_scale`` real seconds per second.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ivr.simulation.scenario import Turn
from ivr.speech.audio import (
    TELEPHONY_RATE,
    duration_seconds,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    rms,
)
from ivr.telephony.simulator.earpiece import Earpiece
from ivr.telephony.simulator.http import USER_AGENT, WebhookClient
from ivr.telephony.simulator.persona import KEY_GAP, Caller
from ivr.telephony.simulator.state import CallRecord, SimulatorSettings, WebhookExchange, new_sid

FRAME_SECONDS = 0.02  # Twilio sends (and plays) 20 ms of 8 kHz mu-law per media frame
FRAME_BYTES = int(TELEPHONY_RATE * FRAME_SECONDS)
MULAW_SILENCE = pcm16_to_mulaw(bytes(2 * FRAME_BYTES))
VOICED_RMS = 200.0  # a caller frame louder than this carries voice (for latency marks)
REACTION_FRAMES = 20  # a caller answers 400 ms after the robot stopped talking
SCRIPT_END_FRAMES = 150  # with nothing left to say, the caller waits 3 s, then hangs up
PROTOCOL_ERROR = 31950  # Twilio's "Stream - Protocol - Invalid Message"
HANDSHAKE_ERROR = 31920  # Twilio's "Stream - WebSocket - Handshake Error"
PROTOCOL_VERSION = "1.0.0"

StreamEnd = Literal["server", "dropped", "caller-hangup", "api", "failed"]


@dataclass
class _Mouth:
    """What the caller is doing right now: speech still to send, keys still to press."""

    speech: bytearray = field(default_factory=bytearray)
    keys: deque[tuple[int, str]] = field(default_factory=deque)  # (tick due, digit)

    @property
    def busy(self) -> bool:
        return bool(self.speech or self.keys)


class MediaStream:
    """One ``<Connect><Stream>``: run it with :meth:`run` until one side ends it."""

    def __init__(
        self,
        call: CallRecord,
        caller: Caller,
        client: WebhookClient,
        settings: SimulatorSettings,
        url: str,
        parameters: dict[str, str],
    ) -> None:
        self.call = call
        self.caller = caller
        self.client = client
        self.settings = settings
        self.url = url
        self.parameters = parameters
        self.stream_sid = new_sid("MZ")
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._sequence = 0
        self._chunk = 0
        self._tick = 0
        self.earpiece = Earpiece(call, settings.keep_prompt_audio)
        self._mouth = _Mouth()
        # Tick the robot's talk began since the caller's last turn: what the caller answers.
        # Audio that plays while the caller is still speaking, or that a clear cut, is the
        # old prompt, not a new one.
        self._talk_started: int | None = None
        self._last_audio = -1  # last tick a frame of the robot's audio played
        self._marks_echoed = 0
        self._speech: dict[int, asyncio.Task[bytes | None]] = {}  # prepared say/audio turns
        self._closed_by: StreamEnd | None = None
        # Latency, wall-clock seconds: end of the caller's voice -> first audio frame of the
        # reply, and voice onset -> clear (what bench/streams.py reports).
        self.reply_after: list[float] = []
        self.clear_after: list[float] = []
        self._onset: float | None = None
        self._last_voiced: float | None = None
        self._awaiting_reply: float | None = None
        self._ours = False  # we are closing the socket ourselves

    # -- the wire --------------------------------------------------------------------------

    def _dial_url(self) -> str:
        parts = urlsplit(self.url)
        if parts.scheme == "wss" and not self.settings.stream_tls:
            parts = parts._replace(scheme="ws")
        return urlunsplit(parts)

    async def _send(self, event: str, **body: Any) -> None:
        assert self._ws is not None
        message: dict[str, Any] = {"event": event}
        if event != "connected":
            self._sequence += 1
            message["sequenceNumber"] = str(self._sequence)
        message.update(body)
        if event != "connected":
            message["streamSid"] = self.stream_sid
        if self._ws.closed:
            return
        with contextlib.suppress(ConnectionResetError, aiohttp.ClientError):
            await self._ws.send_str(json.dumps(message))

    def _error(self, code: int | None, text: str, **data: Any) -> None:
        prefix = f"{code} " if code is not None else ""
        self.call.log("error", f"{prefix}Media Stream: {text}", stream_sid=self.stream_sid, **data)

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> StreamEnd:
        """Connect, stream until the application, the caller or the network ends it."""
        signature = self.client.signature(self.url, {})
        exchange = WebhookExchange(
            "stream", "GET", self.url, dict(self.parameters), signature, self.call.sid
        )
        self.client.exchanges.append(exchange)
        if urlsplit(self.url).scheme not in ("wss", "ws"):
            self._error(HANDSHAKE_ERROR, f"{self.url!r} is not a WebSocket URL")
            return "failed"
        if urlsplit(self.url).scheme == "ws":
            self.call.log("note", "Twilio only connects to wss:// stream URLs", url=self.url)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.settings.webhook_timeout)
        started = time.perf_counter()
        async with aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": USER_AGENT}
        ) as session:
            try:
                self._ws = await session.ws_connect(
                    self._dial_url(),
                    headers={"X-Twilio-Signature": signature},
                    autoping=True,
                    max_msg_size=0,
                )
            except aiohttp.WSServerHandshakeError as exc:
                exchange.status, exchange.error = (
                    exc.status,
                    f"handshake refused: HTTP {exc.status}",
                )
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                exchange.error = f"{self.url}: {exc or type(exc).__name__}"
            exchange.elapsed = time.perf_counter() - started
            if self._ws is None:
                self._error(HANDSHAKE_ERROR, f"could not connect: {exchange.error}")
                return "failed"
            exchange.status = 101
            return await self._stream()

    async def _stream(self) -> StreamEnd:
        assert self._ws is not None
        call = self.call
        call.log(
            "stream",
            f"stream {self.stream_sid} connected to {self.url}",
            url=self.url,
            stream_sid=self.stream_sid,
            parameters=dict(self.parameters),
        )
        await self._send("connected", protocol="Call", version=PROTOCOL_VERSION)
        await self._send(
            "start",
            start={
                "accountSid": call.account_sid,
                "streamSid": self.stream_sid,
                "callSid": call.sid,
                "tracks": ["inbound"],
                "customParameters": dict(self.parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        )
        for turn in self.caller.script.upcoming():
            self._prepare(turn)  # espeak in a fresh engine takes seconds: render them now
        receiver = asyncio.get_running_loop().create_task(self._receive())
        try:
            end = await self._clock()
        finally:
            self._ours = True
            for task in self._speech.values():
                task.cancel()
            if not self._ws.closed:
                await self._ws.close()
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
            self.earpiece.flush("the stream ended")
        call.log(
            "stream",
            f"stream {self.stream_sid} ended ({end})",
            stream_sid=self.stream_sid,
            end=end,
            frames_sent=self._chunk,
            marks=self._marks_echoed,
            reply_after=[round(x, 4) for x in self.reply_after],
            clear_after=[round(x, 4) for x in self.clear_after],
        )
        return end

    async def _clock(self) -> StreamEnd:
        """One tick per 20 ms of call time: play a frame, let the caller act, send a frame."""
        loop = asyncio.get_running_loop()
        step = FRAME_SECONDS * self.settings.stream_time_scale
        due = loop.time()
        persona = self.caller.persona
        while True:
            if self._closed_by is not None:
                return self._closed_by
            if self.call.end_requested is not None:
                self.call.log("hangup", f"ended through the REST API ({self.call.end_requested})")
                await self._stop()
                return "api"
            if self.call.elapsed + FRAME_SECONDS > persona.max_call_seconds:
                self.call.log(
                    "caller-hangup", f"the caller hangs up after {persona.max_call_seconds:g} s"
                )
                await self._stop()
                return "caller-hangup"
            marks = self._play()
            ended = await self._caller_acts()
            if ended is not None:
                return ended
            await self._send_media()
            for name in marks:
                await self._echo(name)
            if self._should_drop():
                return await self._drop()
            self._tick += 1
            self.call.elapsed += FRAME_SECONDS
            due += step
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _stop(self) -> None:
        await self._send(
            "stop", stop={"accountSid": self.call.account_sid, "callSid": self.call.sid}
        )

    def _should_drop(self) -> bool:
        limit = self.caller.persona.drop_stream_after_marks
        return limit is not None and not self.caller.stream_dropped and self._marks_echoed >= limit

    async def _drop(self) -> StreamEnd:
        """The network loses the socket: no ``stop``, no close handshake."""
        assert self._ws is not None
        self.caller.stream_dropped = True
        self._ours = True
        self.call.log("stream", f"the network drops stream {self.stream_sid}", dropped=True)
        # aiohttp has no public way for a client to vanish without a close frame.
        connection = getattr(self._ws, "_conn", None)
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()
        else:
            await self._ws.close()
        return "dropped"

    # -- what the application sends ----------------------------------------------------------

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    if not await self._handle(message.data):
                        self._closed_by = "failed"
                        break
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self._error(PROTOCOL_ERROR, "the application sent a binary frame; closing")
                    self._closed_by = "failed"
                    break
                else:
                    break
        except (aiohttp.ClientError, ConnectionResetError) as exc:
            if not self._ours:
                self._error(None, f"the socket failed: {exc!r}")
        if not self._ours:
            self._closed_by = self._closed_by or "server"
            if not self._ws.closed:
                await self._ws.close()

    async def _handle(self, text: str) -> bool:
        """Act on one JSON message; False when it was so wrong that the stream is closed."""
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            self._error(PROTOCOL_ERROR, f"not JSON: {text[:80]!r}; closing")
            return False
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            self._error(PROTOCOL_ERROR, f"a message without an event: {text[:80]!r}; closing")
            return False
        event = message["event"]
        if event not in ("media", "mark", "clear"):
            self.call.log("note", f"Media Stream: unknown event {event!r} ignored")
            return True
        if message.get("streamSid") != self.stream_sid:
            self._error(PROTOCOL_ERROR, f"{event} for stream {message.get('streamSid')!r} ignored")
            return True
        if event == "clear":
            await self._clear()
            return True
        body = message.get(event)
        if event == "media":
            payload = body.get("payload") if isinstance(body, dict) else None
            try:
                audio = (
                    base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
                )
            except (binascii.Error, ValueError):
                audio = None
            if not audio:
                self._error(PROTOCOL_ERROR, "media without a base64 mu-law payload ignored")
                return True
            if self._awaiting_reply is not None:
                self.reply_after.append(time.perf_counter() - self._awaiting_reply)
                self._awaiting_reply = None
            self.earpiece.add_audio(audio)
            return True
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            self._error(PROTOCOL_ERROR, "mark without a name ignored")
            return True
        await self._echo(self.earpiece.add_mark(name))
        return True

    async def _clear(self) -> None:
        self._talk_started = None  # what plays next is a new prompt
        if self._onset is not None:
            self.clear_after.append(time.perf_counter() - self._onset)
            self._onset = None
        for name in self.earpiece.clear():
            await self._echo(name)

    async def _echo(self, name: str | None) -> None:
        if name is None:
            return
        self._marks_echoed += 1
        await self._send("mark", mark={"name": name})

    def _play(self) -> list[str]:
        """Play one frame into the caller's ear; the marks whose audio has now played."""
        played, marks = self.earpiece.play(FRAME_BYTES)
        if played:
            self._last_audio = self._tick
            if self._talk_started is None and not self._mouth.busy:
                self._talk_started = self._tick
        return marks

    @property
    def _robot_talking(self) -> bool:
        return self.earpiece.talking

    # -- the caller's mouth --------------------------------------------------------------------

    async def _send_media(self) -> None:
        speech = self._mouth.speech
        speaking = bool(speech)
        frame = bytes(speech[:FRAME_BYTES])
        del speech[:FRAME_BYTES]
        frame += MULAW_SILENCE[len(frame) :]
        if speaking:
            self._measure_speech(frame, ended=not speech)
        self._chunk += 1
        await self._send(
            "media",
            media={
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str((self._chunk - 1) * 20),
                "payload": base64.b64encode(frame).decode("ascii"),
            },
        )

    def _measure_speech(self, frame: bytes, *, ended: bool) -> None:
        """Wall-clock marks for latency: voice onset (-> clear), end of voice (-> reply)."""
        now = time.perf_counter()
        if rms(mulaw_to_pcm16(frame)) > VOICED_RMS:
            self._last_voiced = now
            if self._onset is None:
                self._onset = now
        if ended and self._last_voiced is not None and not self._robot_talking:
            self._awaiting_reply = self._last_voiced  # the reply is the next audio to come

    def _prepare(self, turn: Turn) -> asyncio.Task[bytes | None] | None:
        """Start rendering the next spoken turn early, so the clock never waits for espeak."""
        if turn.say is None and turn.audio is None:
            return None
        key = id(turn)
        if key not in self._speech:
            self._speech[key] = asyncio.get_running_loop().create_task(self._render(turn))
        return self._speech[key]

    async def _render(self, turn: Turn) -> bytes | None:
        voice, language = self.caller.voice, self.caller.persona.language
        try:
            if turn.say is not None:
                return await voice.speak(turn.say, language)
            assert turn.audio is not None
            return await voice.load(turn.audio)
        except (OSError, ValueError) as exc:
            self.call.log("error", f"caller audio: {exc}")
            return None

    async def _caller_acts(self) -> StreamEnd | None:
        """Let the caller act on this tick when their moment came; an end when they hang up."""
        mouth = self._mouth
        while mouth.keys and mouth.keys[0][0] <= self._tick:
            _, digit = mouth.keys.popleft()
            await self._send("dtmf", dtmf={"track": "inbound_track", "digit": digit})
        if mouth.busy:
            return None
        script = self.caller.script
        turn = script.peek()
        if self._talk_started is None:
            return None  # the robot said nothing since the caller's last turn: keep listening
        quiet = self._tick - self._last_audio
        if turn is None:
            persona = self.caller.persona
            if (
                persona.answer == "human"
                and persona.when_script_ends == "hang-up"
                and not self._robot_talking
                and quiet >= SCRIPT_END_FRAMES
            ):
                self.call.log("caller-hangup", "the caller hangs up (end of script)")
                await self._stop()
                return "caller-hangup"
            return None
        rendering = self._prepare(turn)
        if turn.barge_in_ms is not None:
            due = (self._tick - self._talk_started) * 20 >= turn.barge_in_ms
        else:
            due = not self._robot_talking and quiet >= REACTION_FRAMES
        if not due or (rendering is not None and not rendering.done()):
            return None  # not yet, or still finding the words (espeak is rendering)
        script.take()
        self._talk_started = None
        self._onset = self._last_voiced = self._awaiting_reply = None
        during = self._robot_talking
        if turn.hangup:
            self.call.log("caller-hangup", "the caller hangs up")
            await self._stop()
            return "caller-hangup"
        if turn.silence:
            self.call.log("silence", "the caller says nothing")
        elif turn.press is not None:
            gap = round(KEY_GAP / FRAME_SECONDS)
            mouth.keys.extend((self._tick + i * gap, key) for i, key in enumerate(turn.press))
            self.call.log("keys", f"presses {turn.press}", keys=turn.press, barge_in=during)
        elif rendering is not None:
            pcm = rendering.result()
            self._speech.pop(id(turn), None)
            if pcm:
                mouth.speech.extend(pcm16_to_mulaw(pcm))
                seconds = round(duration_seconds(pcm, TELEPHONY_RATE), 3)
                if turn.say is not None:
                    self.call.log(
                        "speech", f'says "{turn.say}"', duration=seconds, barge_in=during,
                        text=turn.say,
                    )  # fmt: skip
                else:
                    self.call.log(
                        "audio", f"plays {turn.audio}", duration=seconds, barge_in=during,
                        file=turn.audio,
                    )  # fmt: skip
        return None
