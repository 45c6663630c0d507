"""A media session keeps up with its caller however busy the event loop is.

Frames that queued while the loop served other calls must all be handled at once, not one
per few rounds of the loop: otherwise, with enough calls for a round to outlast 7 ms, every
call falls behind real time for good (bench/streams.py measured 13 s of queued audio and
replies 15 s late at 50 calls). These tests count loop rounds and frames, never time.
"""

from __future__ import annotations

import asyncio

from ivr.calls.media import FRAME_BYTES, LiveTurn
from ivr.calls.media_session import MediaSession
from ivr.dialplan.schema import ListenSpec
from ivr.dialplan.vocabulary import Event, Listen
from ivr.telephony.twilio.media import render_media

SILENCE = b"\xff" * FRAME_BYTES  # mu-law silence
LISTEN = Listen("s", ListenSpec(intents={"a": {"press": "1"}}), "en-US")


class Wire:
    """The provider's side: what the session sends, rendered as Twilio frames."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_audio(self, mulaw: bytes) -> None:
        self.sent.append(render_media("MZ1", mulaw))

    async def send_mark(self, name: str) -> None:
        self.sent.append(name)

    async def clear(self) -> None:
        self.sent.append("clear")


class CountingListener:
    """A speech listener that hears nothing and counts the frames it was fed."""

    def __init__(self) -> None:
        self.frames = 0

    async def feed(self, mulaw: bytes) -> list[object]:
        self.frames += len(mulaw) // FRAME_BYTES
        return []

    async def close(self) -> None:
        pass


class OneTurn:
    """A call waiting for an answer with no prompt left to play; answers end the call."""

    def __init__(self) -> None:
        self.heard = CountingListener()
        self.answers: list[Event] = []

    async def resume(self) -> LiveTurn | None:
        return LiveTurn(1, (), LISTEN)

    async def answer(self, turn: LiveTurn, event: Event) -> LiveTurn | None:
        assert turn.listen is LISTEN
        self.answers.append(event)
        return None

    def listener(self, listen: Listen) -> CountingListener:
        assert listen is LISTEN
        return self.heard


async def test_frames_queued_while_the_loop_was_busy_are_handled_in_one_go() -> None:
    runtime = OneTurn()
    session = MediaSession(runtime, Wire())
    task = asyncio.ensure_future(session.run())
    for _ in range(20):  # the turn is under way and waiting for audio
        await asyncio.sleep(0)
    session.audio(SILENCE)
    for _ in range(20):
        await asyncio.sleep(0)
    assert runtime.heard.frames == 1
    backlog = 250  # 5 s of audio that arrived while other calls kept the loop busy
    for _ in range(backlog):
        session.audio(SILENCE)
    rounds = 0
    while runtime.heard.frames < 1 + backlog and rounds < 10 * backlog:
        await asyncio.sleep(0)
        rounds += 1
    assert runtime.heard.frames == 1 + backlog
    # One frame per loop round (or three, through wait_for) would take hundreds of rounds.
    assert rounds <= 3, f"{backlog} queued frames took {rounds} rounds of the event loop"
    session.stop()
    await asyncio.wait_for(task, 10)
    assert runtime.answers == []  # stopped (the caller hung up), nothing was answered


async def test_audio_already_queued_is_taken_even_past_a_deadline() -> None:
    session = MediaSession(OneTurn(), Wire())
    session.audio(SILENCE)
    session.dtmf("1")
    # timeout 0: the turn's deadline has passed; what arrived before it still counts.
    first = await session.next_inbound(0)
    second = await session.next_inbound(0)
    assert getattr(first, "mulaw", None) == SILENCE
    assert getattr(second, "digit", None) == "1"
    assert await session.next_inbound(0) is None


async def test_a_session_cancelled_as_a_frame_arrives_stops() -> None:
    # The stream handler cancels the session when its WebSocket closes; a frame (a mark's
    # echo) arriving in the same loop round must not turn that into "go on with the call".
    session = MediaSession(OneTurn(), Wire())
    waiting = asyncio.ensure_future(session.next_inbound(5.0))
    for _ in range(5):
        await asyncio.sleep(0)
    session.mark("t1p0")
    waiting.cancel()
    outcome = await asyncio.gather(waiting, return_exceptions=True)
    assert isinstance(outcome[0], asyncio.CancelledError), outcome
