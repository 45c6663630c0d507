"""Twilio's side of a Media Stream, written from Twilio's documentation, for tests.

Independent of the server's codec on purpose: it builds and reads the JSON frames itself.
It behaves as Twilio does: signs the upgrade over the ``wss://`` URL of the TwiML, sends
``connected`` and ``start`` (customParameters from the ``<Parameter>``s), then a ``media``
frame every 20 ms (the caller's microphone: silence unless the test makes it speak),
``dtmf`` for keys and ``stop`` at hang-up. What the server sends is "played" in real time:
``media`` goes into a playback buffer, a ``mark`` is echoed once the audio queued before it
has played, ``clear`` empties the buffer and echoes the pending marks at once. When the
server closes the socket, ``<Connect>`` ends and the test asks its action URL (as Twilio).
"""

from __future__ import annotations

import asyncio
import audioop
import base64
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ivr.telephony.twilio import SIGNATURE_HEADER, sign
from tests.telephony.fake_twilio_api import ACCOUNT, TOKEN

FRAME = 160  # 20 ms of 8 kHz mu-law
SILENCE = b"\xff" * FRAME  # mu-law zero


@dataclass
class Heard:
    """What the server sent, in order: ("media", bytes) / ("mark", name) / ("clear", "")
    and, from this side, ("echo", name) when a mark came back."""

    log: list[tuple[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # loop time of each entry (benches)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.log]

    def audio_bytes(self) -> int:
        return sum(len(v) for k, v in self.log if k == "media")


def connect_of(twiml: str) -> tuple[str, str, dict[str, str]]:
    """(stream URL, action URL, parameters) of a ``<Connect><Stream>`` document."""
    doc = ET.fromstring(twiml)
    connect = doc.find("Connect")
    assert connect is not None, twiml
    stream = connect.find("Stream")
    assert stream is not None, twiml
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), connect.get("action", ""), parameters


class StreamCall:
    """One ``<Connect><Stream>`` of a call, as Twilio would run it."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        twiml: str,
        call_sid: str,
        *,
        echo_marks: bool = True,
        time_scale: float = 1.0,
    ) -> None:
        self.http = http
        self.echo_marks = echo_marks  # False: a provider that never answers marks
        # Real seconds per second of audio, both ways (the caller's microphone and playback
        # of what the server sends): below 1 against a server whose stream_pace matches.
        self.time_scale = time_scale
        self.call_sid = call_sid
        self.url, self.action, self.parameters = connect_of(twiml)
        self.stream_sid = "MZ" + call_sid[2:]
        self.heard = Heard()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.closed_by_server = asyncio.Event()
        self._sequence = 0
        self._chunk = 0
        self._speech: asyncio.Queue[bytes] = asyncio.Queue()
        # Loop times at which the first and the last frame of queued speech went out.
        self.speech_started: float | None = None
        self.speech_ended: float | None = None
        self._playing_until = 0.0
        self._pending: list[tuple[float, str]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.changed = asyncio.Condition()

    # -- connection -------------------------------------------------------------------------

    async def open(self, signature: str | None = None) -> None:
        assert self.url.startswith("wss://")
        headers = {SIGNATURE_HEADER: signature or sign(TOKEN, self.url, {})}
        # The test server has no TLS: the same URL over plain ws.
        self.ws = await self.http.ws_connect("ws://" + self.url[6:], headers=headers)
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send_numbered(
            "start",
            start={
                "accountSid": ACCOUNT,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": self.parameters,
            },
        )
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        self._tasks = [
            asyncio.ensure_future(self._read()),
            asyncio.ensure_future(self._microphone()),
            asyncio.ensure_future(self._echo_marks()),
        ]

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(message))

    async def _send_numbered(self, event: str, **body: Any) -> None:
        self._sequence += 1
        await self._send(
            {
                "event": event,
                "sequenceNumber": str(self._sequence),
                "streamSid": self.stream_sid,
                **body,
            }
        )

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def close(self) -> None:
        """Drop the WebSocket (a network failure: no stop frame)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()

    async def hang_up(self) -> None:
        await self._send_numbered("stop", stop={"accountSid": ACCOUNT, "callSid": self.call_sid})
        await self.close()

    # -- the caller -------------------------------------------------------------------------

    async def press(self, digit: str) -> None:
        await self._send_numbered("dtmf", dtmf={"track": "inbound_track", "digit": digit})

    async def say(self, pcm16_8k: bytes) -> None:
        """Queue speech (8 kHz 16-bit PCM) on the microphone, followed by silence."""
        mulaw = audioop.lin2ulaw(pcm16_8k, 2)
        self.speech_started = self.speech_ended = None
        for offset in range(0, len(mulaw), FRAME):
            await self._speech.put(mulaw[offset : offset + FRAME].ljust(FRAME, b"\xff"))

    async def _microphone(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._speech.empty():
                frame = SILENCE
            else:
                frame = self._speech.get_nowait()
                now = loop.time()
                self.speech_started = self.speech_started or now
                self.speech_ended = now + 0.02 * self.time_scale
            self._chunk += 1
            await self._send_numbered(
                "media",
                media={
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str((self._chunk - 1) * 20),
                    "payload": base64.b64encode(frame).decode(),
                },
            )
            # Real time (scaled): Twilio sends a frame every 20 ms whatever the server does.
            due = self._started + self._chunk * 0.02 * self.time_scale
            await asyncio.sleep(max(0.0, due - loop.time()))

    # -- what the server sends --------------------------------------------------------------

    async def _read(self) -> None:
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            assert frame.get("streamSid") == self.stream_sid, frame
            now = loop.time()
            event = frame["event"]
            if event == "media":
                audio = base64.b64decode(frame["media"]["payload"])
                played = len(audio) / 8000 * self.time_scale
                self._playing_until = max(self._playing_until, now) + played
                await self._record("media", audio)
            elif event == "mark":
                if not self.echo_marks:
                    await self._record("mark", frame["mark"]["name"])
                    continue
                self._pending.append((max(self._playing_until, now), frame["mark"]["name"]))
                await self._record("mark", frame["mark"]["name"])
            elif event == "clear":
                self._playing_until = now
                await self._record("clear", "")
                pending, self._pending = self._pending, []
                for _, name in pending:
                    await self._echo(name)
            else:
                raise AssertionError(f"the server sent {frame}")
        self.closed_by_server.set()
        async with self.changed:
            self.changed.notify_all()

    async def _echo_marks(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.02)
            due = [p for p in self._pending if p[0] <= loop.time()]
            self._pending = [p for p in self._pending if p[0] > loop.time()]
            for _, name in due:
                await self._echo(name)

    async def _echo(self, name: str) -> None:
        await self._send_numbered("mark", mark={"name": name})
        await self._record("echo", name)

    async def _record(self, kind: str, value: Any) -> None:
        self.heard.log.append((kind, value))
        self.heard.times.append(asyncio.get_running_loop().time())
        async with self.changed:
            self.changed.notify_all()

    async def wait(self, predicate: Any, timeout: float = 60.0) -> None:
        """Until ``predicate(self.heard)`` holds (or the server closed the stream)."""

        async def check() -> None:
            async with self.changed:
                await self.changed.wait_for(
                    lambda: predicate(self.heard) or self.closed_by_server.is_set()
                )

        await asyncio.wait_for(check(), timeout)
        assert predicate(self.heard), self.heard.kinds()[-20:]

    async def wait_closed(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(self.closed_by_server.wait(), timeout)

    def marks_sent(self) -> int:
        return self.heard.kinds().count("mark")

    def echoes(self) -> int:
        return self.heard.kinds().count("echo")
