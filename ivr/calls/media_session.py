"""A live call over a media stream: prompts out, caller audio and keys in, turn by turn.

The provider adapter feeds what arrives (:meth:`MediaSession.audio`, ``dtmf``, ``mark``,
``stop``; never blocking) and :meth:`MediaSession.run` carries the call out, one turn at a
time, in one task:

1. The turn's prompts are streamed as paced 20 ms frames with a mark after each
   (:class:`~ivr.calls.playback.Player`). A mark's echo says the caller has heard that prompt.
2. The caller may answer while a prompt plays (barge-in) unless the prompt's state says
   ``barge_in: false``: then speech and keys count only once its mark has echoed. Speech
   onset (``SpeechStarted`` from the listener) or a key stops the prompt and sends ``clear``.
3. The listening timeout counts from the echo of the last prompt's mark (when the caller has
   heard everything), never from when the audio was sent. A provider that never echoes a
   mark cannot stall the call: past the audio's expected end plus a grace the prompts count
   as heard.
4. The answer: ``SpeechFinished`` (the listener's trailing silence) -> the recognition; keys
   -> one key for intents, for digits until ``finish_on``, ``max`` keys or an inter-digit
   timeout (the listen's timeout); nothing -> no input. The runtime commits the answer's turn
   before the next prompts play.

A turn without a listen (transfer, hang-up) ends the session once its prompts are heard;
the adapter then closes the stream and the provider asks the web layer what comes next.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass

from ivr.calls.media import CallRuntime, Heard, LiveTurn, MediaTransport, SpeechListener
from ivr.calls.playback import DEFAULT_AHEAD, Player, parse_mark
from ivr.dialplan.vocabulary import Event, KeysPressed, Listen, NoInput
from ivr.speech.asr import Recognition
from ivr.speech.live import SpeechFinished, SpeechStarted

log = logging.getLogger(__name__)

# How long past the expected end of a turn's audio a missing mark echo is waited for.
MARK_GRACE = 3.0
# While prompts are still being sent, the loop wakes this often to notice the end of sending.
POLL = 0.25
# A caller still talking this long after speech started (the listener has its own limit).
SPEECH_SAFETY = 30.0


class Ended(enum.Enum):
    """Why :meth:`MediaSession.run` returned."""

    GONE = "gone"  # nothing to run: unknown, ended or not listening call
    STOPPED = "stopped"  # the provider stopped the stream (the caller hung up)
    FINISHED = "finished"  # the plan ended the call (transfer / hang-up) and it was heard
    LOST = "lost"  # another stream or webhook took the call's turn


@dataclass(frozen=True)
class _Audio:
    mulaw: bytes


@dataclass(frozen=True)
class _Key:
    digit: str


@dataclass(frozen=True)
class _Mark:
    name: str


class _Stop:
    pass


_Inbound = _Audio | _Key | _Mark | _Stop


def heard(recognition: Recognition) -> Event:
    """The engine's input for what the listener recognized: no words at all is no input."""
    return recognition.as_event() if recognition.words else NoInput()


def keys_complete(listen: Listen, keys: str) -> bool:
    """Whether ``keys`` answer ``listen`` already (without waiting for more)."""
    digits = listen.spec.digits
    if digits is None:
        return len(keys) >= 1
    if digits.finish_on and keys.endswith(digits.finish_on):
        return True
    return len(keys) >= digits.max


class MediaSession:
    def __init__(
        self,
        runtime: CallRuntime,
        transport: MediaTransport,
        *,
        ahead: float = DEFAULT_AHEAD,
        mark_grace: float = MARK_GRACE,
        pace: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.transport = transport
        self.ahead = ahead
        self.pace = pace  # wall seconds per second of prompt audio (playback.Player)
        self.mark_grace = mark_grace
        self._queue: asyncio.Queue[_Inbound] = asyncio.Queue()
        self.turns = 0

    # -- what the provider reports (never blocks) ------------------------------------------

    def audio(self, mulaw: bytes) -> None:
        self._queue.put_nowait(_Audio(mulaw))

    def dtmf(self, digit: str) -> None:
        self._queue.put_nowait(_Key(digit))

    def mark(self, name: str) -> None:
        self._queue.put_nowait(_Mark(name))

    def stop(self) -> None:
        self._queue.put_nowait(_Stop())

    # -- the call ---------------------------------------------------------------------------

    async def run(self) -> Ended:
        turn = await self.runtime.resume()
        if turn is None:
            return Ended.GONE
        while True:
            self.turns += 1
            run = _TurnRun(self, turn)
            result = await run.run()
            if isinstance(result, Ended):
                return result
            next_turn = await self.runtime.answer(turn, result, run.heard())
            if next_turn is None:
                return Ended.LOST
            turn = next_turn

    async def next_inbound(self, timeout: float | None) -> _Inbound | None:
        # What already arrived is taken at once. Through wait_for (on Python 3.11 a task, a
        # timer and three loop rounds per item) a session could take one 20 ms frame per
        # three rounds of the event loop: with 20-50 calls a round lasts longer than 7 ms, so
        # every session fell behind real time for good (13 s of queued audio at 50 calls,
        # replies 15-30 s late with the CPU waiting). And with a deadline already past
        # (timeout 0) wait_for gave up before looking: queued speech became "no input".
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
        # comes while the item arrives (its inner task finished first), so a session told to
        # stop (its WebSocket closed) went on to the next turn and the close waited for it.
        if not self._queue.empty():
            return self._queue.get_nowait()
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def stale(self) -> bool:
        """Drop what arrived while the previous turn was being committed; True on a stop."""
        stopped = False
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Stop):
                stopped = True
            elif isinstance(item, _Key):
                log.info("key %s pressed between turns: ignored", item.digit)
        return stopped


class _TurnRun:
    """One turn: play its prompts, take the caller's answer (or notice there is none)."""

    def __init__(self, session: MediaSession, turn: LiveTurn) -> None:
        self.session = session
        self.turn = turn
        self.loop = asyncio.get_running_loop()
        self.player = Player(
            session.transport, turn.turn, turn.prompts, session.ahead, session.pace
        )
        self.heard_upto = -1  # index of the last prompt whose mark came back
        self.interrupted: str | None = None  # how the caller cut the prompts, if they did
        self.over_at: float | None = None  # when the caller had heard (or cut) the prompts
        self.listener: SpeechListener | None = None
        self.speech_possible = turn.listen is not None
        self.speaking_since: float | None = None
        self.keys = ""
        self.last_key_at = 0.0

    @property
    def prompts_over(self) -> bool:
        return self.interrupted is not None or self.heard_upto >= len(self.turn.prompts) - 1

    def heard(self) -> Heard:
        prompts = len(self.turn.prompts)
        return Heard(prompts, min(self.heard_upto + 1, prompts), self.interrupted)

    @property
    def answerable(self) -> bool:
        """May the caller answer now: listening, and no uninterruptible prompt is playing."""
        if self.turn.listen is None:
            return False
        return self.prompts_over or self.turn.prompts[self.heard_upto + 1].barge_in

    async def run(self) -> Event | Ended:
        if self.session.stale():
            return Ended.STOPPED
        self.player.start()
        try:
            return await self._loop()
        finally:
            await self.player.cancel()
            if self.listener is not None:
                await self.listener.close()

    async def _loop(self) -> Event | Ended:
        while True:
            self._note_prompts_over()
            if self.turn.listen is None and self.prompts_over:
                return Ended.FINISHED
            deadline = self._deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
            item = await self.session.next_inbound(timeout)
            result: Event | Ended | None = None
            if isinstance(item, _Stop):
                return Ended.STOPPED
            if isinstance(item, _Audio):
                result = await self._on_audio(item.mulaw)
            elif isinstance(item, _Key):
                result = await self._on_key(item.digit)
            elif isinstance(item, _Mark):
                self._on_mark(item.name)
            # Caller audio arrives every 20 ms, so the deadline is checked after every item,
            # not only when the wait for one times out.
            if result is None:
                result = self._timed_out()
            if result is not None:
                return result

    def _deadline(self) -> float | None:
        listen = self.turn.listen
        if not self.prompts_over:
            if self.player.sending or self.player.ends_at is None:
                return self.loop.time() + POLL
            return self.player.ends_at + self.session.mark_grace
        if listen is None or self.over_at is None:
            return None  # the turn is over (an ending turn heard whole): nothing to time
        if self.keys:
            return self.last_key_at + listen.spec.timeout
        if self.speaking_since is not None:
            return self.speaking_since + SPEECH_SAFETY
        return self.over_at + listen.spec.timeout

    def _note_prompts_over(self) -> None:
        """Start the listening clock the moment the caller has heard (or cut) the prompts."""
        if self.prompts_over and self.over_at is None:
            self.over_at = self.loop.time()

    def _timed_out(self) -> Event | None:
        self._note_prompts_over()
        now = self.loop.time()
        deadline = self._deadline()
        if deadline is None or now < deadline:
            return None
        if not self.prompts_over:
            if self.player.sending or self.player.ends_at is None:
                return None
            log.warning("turn %d: marks never came back; prompts count as heard", self.turn.turn)
            self.heard_upto = len(self.turn.prompts) - 1
            return None
        if self.keys:
            return KeysPressed(self.keys)
        return NoInput()

    async def _on_audio(self, mulaw: bytes) -> Event | None:
        if not self.answerable or self.keys or not self.speech_possible:
            return None
        if self.listener is None:
            assert self.turn.listen is not None
            self.listener = self.session.runtime.listener(self.turn.listen)
            if self.listener is None:
                self.speech_possible = False
                return None
        for event in await self.listener.feed(mulaw):
            if isinstance(event, SpeechStarted) and self.speaking_since is None:
                self.speaking_since = self.loop.time()
                await self._barge_in("speech")
            elif isinstance(event, SpeechFinished):
                return heard(event.recognition)
        return None

    async def _on_key(self, digit: str) -> Event | None:
        listen = self.turn.listen
        if listen is None or not self.answerable:
            log.info("turn %d: key %s during a prompt that may not be cut", self.turn.turn, digit)
            return None
        await self._barge_in("key")
        if self.listener is not None:  # keys take over from speech for the rest of the turn
            await self.listener.close()
            self.listener = None
        self.speech_possible = False
        self.speaking_since = None
        self.keys += digit
        self.last_key_at = self.loop.time()
        return KeysPressed(self.keys) if keys_complete(listen, self.keys) else None

    def _on_mark(self, name: str) -> None:
        parsed = parse_mark(name)
        if self.interrupted is not None:
            return  # echoed because of our clear: the caller did not hear that audio
        if parsed is None or parsed[0] != self.turn.turn:
            log.debug("mark %r is not one of turn %d: ignored", name, self.turn.turn)
            return
        self.heard_upto = max(self.heard_upto, min(parsed[1], len(self.turn.prompts) - 1))

    async def _barge_in(self, why: str) -> None:
        if self.prompts_over:
            return
        self.interrupted = why
        await self.player.cancel()
        await self.session.transport.clear()
        log.info("turn %d: the caller interrupted the prompt (%s)", self.turn.turn, why)
