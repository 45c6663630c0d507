"""One listening turn over live telephone audio: speech start, end of turn, recognition.

A :class:`LiveListener` is fed the caller's audio as it arrives (8 kHz mu-law, the payload of
Twilio media messages, in chunks of any size). A voice activity detector classifies 20 ms
frames; ``onset_ms`` of voiced audio is speech (:class:`SpeechStarted`, on which a prompt may
be cut: barge-in), and ``end_silence_ms`` of unvoiced audio after it ends the turn
(:class:`SpeechFinished`, with the recognition). Then the listener is done.

Recognition never runs on the event loop. The utterance (with ``preroll_ms`` of audio from
before the onset, because a detector fires only once a word is well under way and its first
consonant would be lost) goes to the engine's pool (Vosk: threads, it releases the GIL;
PocketSphinx: processes, it holds the GIL). Vosk is fed while the caller speaks
(``decoding="stream"``) and its stream is finished 300 ms into the trailing silence, so that
only the tail of the work is left when the caller stops; PocketSphinx decodes the utterance in
one go (``decoding="whole"``), started 300 ms into the trailing silence. Either way the result
is being computed during the rest of the wait for the end of the turn (a caller who goes on
drops it; a stream then starts over from the utterance's beginning).

The detector runs on the event loop (Silero: ~0.3 ms per 32 ms of audio; WebRTC: microseconds),
so the default one's model should be loaded at start-up with :func:`ivr.speech.vad.warm_up`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

from ivr.speech import asr
from ivr.speech.asr import Grammar, Recognition, RecognitionStream, Recognizer
from ivr.speech.audio import TELEPHONY_RATE, mulaw_to_pcm16
from ivr.speech.vad import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, VoiceActivityDetector, make_vad

log = logging.getLogger(__name__)

# An onset run tolerates this many unvoiced frames in a row (detectors flicker inside words).
_ONSET_GAP_FRAMES = 2
# Trailing silence kept for the recognizer: enough for it to settle the last word; the rest of
# ``end_silence_ms`` would only cost decoding time. Once this much silence followed the speech,
# the recognition is computed (a whole-utterance decode, or a stream's finish) while the
# listener still waits for the end of the turn: PocketSphinx's 100-250 ms of decoding then
# overlaps the end-of-turn silence. Speech that resumes drops that result (it is ignored) and
# the work starts over.
_TRAILING_KEEP_MS = 300


@dataclass(frozen=True)
class SpeechStarted:
    """Voiced audio lasted at least ``onset_ms``: barge-in may clear the prompt."""

    at_ms: int  # position in the fed audio where speech began


@dataclass(frozen=True)
class SpeechFinished:
    """``end_silence_ms`` of trailing silence after speech (or ``max_speech_ms``): turn ends."""

    recognition: Recognition  # resolved against the grammar
    started_ms: int
    ended_ms: int  # where speech ended (before the trailing silence)


LiveEvent = SpeechStarted | SpeechFinished
Decoding = Literal["auto", "stream", "whole"]


# A stream is fed in pieces of at least this much audio (PCM16 bytes at 8 kHz: 200 ms): a
# piece is a job for the pool and a wake-up of the event loop when it is done, and per 20 ms
# frame those cost 50 calls 2,500 jobs a second.
_STREAM_PIECE_BYTES = 2 * TELEPHONY_RATE // 5


class _IncrementalDecode:
    """A recognizer stream fed from the pool while the caller speaks: one ``accept`` in flight
    at a time (a stream is not thread-safe), audio that arrives meanwhile is sent next, in one
    piece of at least ``_STREAM_PIECE_BYTES``; ``finish`` sends what is left."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Executor) -> None:
        self._loop = loop
        self._pool = pool
        self._stream: RecognitionStream | None = None
        self._pending = bytearray()
        self._busy: asyncio.Future[None] | None = None
        self._failed: BaseException | None = None
        self._finishing = False

    def start(self, make: Callable[[], RecognitionStream]) -> None:
        self._busy = asyncio.ensure_future(self._run(self._open, make))

    def _open(self, make: Callable[[], RecognitionStream]) -> None:
        self._stream = make()

    async def _run(self, work: Callable[..., None], *args: object) -> None:
        try:
            await self._loop.run_in_executor(self._pool, work, *args)
        except Exception as err:  # kept: finish() reports it and the turn ends as not heard
            self._failed = err
        self._busy = None
        self._pump()

    def _accept(self, pcm16: bytes) -> None:
        assert self._stream is not None
        self._stream.accept(pcm16)

    def _pump(self) -> None:
        enough = self._finishing or len(self._pending) >= _STREAM_PIECE_BYTES
        if self._busy is None and self._pending and self._failed is None and enough:
            chunk = bytes(self._pending)
            self._pending.clear()
            self._busy = asyncio.ensure_future(self._run(self._accept, chunk))

    def feed(self, pcm16: bytes) -> None:
        self._pending += pcm16
        self._pump()

    async def finish(self) -> Recognition:
        self._finishing = True
        self._pump()
        while self._busy is not None:
            await asyncio.shield(self._busy)
        if self._failed is not None:
            raise self._failed
        stream = self._stream
        assert stream is not None
        self._stream = None
        return await self._loop.run_in_executor(self._pool, stream.finish)

    def drop(self) -> None:
        self._pending.clear()
        self._stream = None  # a running accept keeps it alive until it returns


class LiveListener:
    """One listening turn over 8 kHz mu-law audio (decoded Twilio media payloads).

    Speech is announced (:class:`SpeechStarted`, barge-in) once ``onset_ms`` of voiced audio
    came with no more than 40 ms of gaps. A shorter sound (a quick "one" is 200-250 ms, and a
    detector voices only part of it) is decoded when it ends: if the grammar understands it,
    the turn is over (both events come at once); if not (a cough, a click, a door), it is
    forgotten and listening goes on, without any event.

    ``decoding``: ``"whole"`` decodes the utterance in one go, started 300 ms into the
    trailing silence; ``"stream"`` feeds the recognizer's stream while the caller speaks and
    finishes it 300 ms into the trailing silence (engines that decode in threads only: a
    stream cannot cross into a worker process); ``"auto"`` (the default) streams where the
    engine can. Streaming spreads the work over the caller's speech: with 50 callers who stop
    speaking at once, only each stream's tail (a third of Vosk's work on a short answer) is
    left to queue for the pool (bench/streams.py). ``workers`` sizes the decoding pool as
    :func:`ivr.speech.asr.recognize_async` does.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        grammar: Grammar,
        *,
        end_silence_ms: int = 500,
        onset_ms: int = 200,
        max_speech_ms: int = 15000,
        vad: VoiceActivityDetector | None = None,
        preroll_ms: int = 400,
        min_speech_ms: int = 120,
        decoding: Decoding = "auto",
        workers: int | None = None,
    ) -> None:
        for name, value, low in (
            ("end_silence_ms", end_silence_ms, FRAME_MS),
            ("onset_ms", onset_ms, FRAME_MS),
            ("max_speech_ms", max_speech_ms, FRAME_MS),
            ("preroll_ms", preroll_ms, 0),
            ("min_speech_ms", min_speech_ms, FRAME_MS),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be a whole number of ms >= {low}, got {value!r}")
        if max_speech_ms < onset_ms:
            raise ValueError(
                f"max_speech_ms ({max_speech_ms}) is shorter than onset_ms ({onset_ms})"
            )
        if decoding not in ("auto", "stream", "whole"):
            raise ValueError(f"decoding is 'auto', 'stream' or 'whole', got {decoding!r}")
        if decoding == "auto":
            decoding = "stream" if recognizer.runs_in == "thread" else "whole"
        if decoding == "stream" and recognizer.runs_in != "thread":
            raise ValueError(f"{recognizer.name} decodes in processes: it cannot be streamed")
        self.recognizer = recognizer
        self.grammar = grammar
        self.vad = vad if vad is not None else make_vad()
        self._onset_frames = _frames(onset_ms)
        self._end_frames = _frames(end_silence_ms)
        self._max_frames = _frames(max_speech_ms)
        self._min_frames = min(_frames(min_speech_ms), self._onset_frames)
        self.decoding: Decoding = decoding  # "stream" or "whole", as chosen for the engine
        self._streaming = decoding == "stream"
        self._workers = workers
        self._rest = b""  # mu-law bytes short of a whole frame
        self._frame = 0  # index of the next frame to classify
        self._recent: deque[bytes] = deque(maxlen=preroll_ms // FRAME_MS)  # before a sound
        # The sound under way: from its first voiced frame until end_silence_ms of silence.
        self._first: int | None = None  # its first voiced frame
        self._utterance = bytearray()  # PCM16 from the pre-roll on
        self._utterance_first = 0  # frame index of the utterance's first byte
        self._voiced_total = 0
        self._last_voiced = 0
        self._silence = 0
        # The onset run: voiced frames with short gaps, until onset_ms of them make speech.
        self._run: int | None = None
        self._run_voiced = 0
        self._gap = 0
        self._started: int | None = None  # onset frame, once SpeechStarted was announced
        self._incremental: _IncrementalDecode | None = None
        self._early: asyncio.Future[Recognition] | None = None  # decoding started in silence
        self._keep_frames = min(self._end_frames, _TRAILING_KEEP_MS // FRAME_MS)
        self._done = False
        self._closed = False
        self._lock = asyncio.Lock()

    @property
    def done(self) -> bool:
        """The turn ended (SpeechFinished was returned) or the listener was closed."""
        return self._done or self._closed

    @property
    def speaking(self) -> bool:
        """SpeechStarted was announced and the turn has not ended yet."""
        return self._started is not None and not self.done

    @property
    def position_ms(self) -> int:
        """How much audio was classified so far."""
        return self._frame * FRAME_MS

    async def feed(self, mulaw: bytes) -> list[LiveEvent]:
        """Audio in (any chunk size); the events it completed out. Waiting for the final
        recognition happens here, off the event loop."""
        if not isinstance(mulaw, bytes | bytearray | memoryview):
            raise TypeError(f"feed() takes mu-law audio as bytes, got {type(mulaw).__name__}")
        async with self._lock:
            if self.done:
                return []
            data = self._rest + bytes(mulaw)
            whole = len(data) - len(data) % FRAME_SAMPLES
            self._rest = data[whole:]
            events: list[LiveEvent] = []
            for start in range(0, whole, FRAME_SAMPLES):
                frame = mulaw_to_pcm16(data[start : start + FRAME_SAMPLES])
                if self._step(frame, events):
                    events += await self._end_of_sound()
                    if self._done:
                        break
            return events

    async def flush(self) -> list[LiveEvent]:
        """End the turn now (the caller hung up, the stream stopped): speech under way is
        recognized as it stands; without speech there is no event."""
        async with self._lock:
            if self.done:
                return []
            events = await self._end_of_sound() if self._first is not None else []
            self._done = True
            return events

    async def close(self) -> None:
        """Free the recognizer stream; idempotent. Feeding afterwards returns nothing."""
        self._closed = True
        if self._incremental is not None:
            self._incremental.drop()
            self._incremental = None
        self._drop_early()
        self._utterance = bytearray()
        self._recent.clear()

    def _drop_early(self) -> None:
        if self._early is not None:
            if self._early.done() and not self._early.cancelled():
                self._early.exception()  # retrieved: a failure of unwanted work is no error
            self._early.cancel()  # the pool finishes the job; its result is not wanted
            self._early = None

    # --- frame by frame ------------------------------------------------------------------

    def _step(self, frame: bytes, events: list[LiveEvent]) -> bool:
        """Classify one frame; True when the sound under way has just ended."""
        index = self._frame
        self._frame += 1
        voiced = self.vad.is_speech(frame)
        if self._first is None:
            if not voiced:
                self._recent.append(frame)
                return False
            self._open(index)
        self._append(frame)
        if voiced:
            self._voiced_total += 1
            self._last_voiced = index
            self._silence = 0
            if self._early is not None:
                self._drop_early()
                if self._streaming and self._started is not None:
                    self._start_stream()  # finished early: start over from the pre-roll
        else:
            self._silence += 1
            if self._silence == self._keep_frames and self._decodes_early():
                # The stream is taken now: the frames that follow are not the answer's.
                stream, self._incremental = self._incremental, None
                self._early = asyncio.ensure_future(self._early_result(stream))
        if self._started is None:
            onset = self._onset(index, voiced)
            if onset is not None:
                events.append(SpeechStarted(at_ms=onset * FRAME_MS))
        if self._silence >= self._end_frames:
            return True
        since = self._started if self._started is not None else self._first
        assert since is not None  # _open() ran for this sound
        return index + 1 - since >= self._max_frames

    def _open(self, index: int) -> None:
        """A first voiced frame: the sound starts, with the pre-roll before it."""
        self._first = index
        self._utterance = bytearray(b"".join(self._recent))
        self._utterance_first = index - len(self._recent)
        self._recent.clear()
        self._voiced_total = self._silence = 0
        self._run = None

    def _onset(self, index: int, voiced: bool) -> int | None:
        """The onset frame once the run reaches ``onset_ms`` of voiced audio."""
        if voiced:
            if self._run is None:
                self._run, self._run_voiced = index, 0
            self._run_voiced += 1
            self._gap = 0
        elif self._run is not None:
            self._gap += 1
            if self._gap > _ONSET_GAP_FRAMES:
                self._run = None
        if self._run is None or self._run_voiced < self._onset_frames:
            return None
        self._started = self._run
        if self._streaming:
            self._start_stream()
        return self._started

    def _start_stream(self) -> None:
        """A recognizer stream fed with the utterance so far, then with each frame."""
        loop = asyncio.get_running_loop()
        self._incremental = _IncrementalDecode(loop, asr.start_pool("thread", self._workers))
        recognizer, grammar = self.recognizer, self.grammar
        self._incremental.start(lambda: recognizer.stream(grammar, TELEPHONY_RATE))
        self._incremental.feed(bytes(self._utterance))

    def _append(self, frame: bytes) -> None:
        self._utterance += frame
        if self._incremental is not None:
            self._incremental.feed(frame)

    async def _end_of_sound(self) -> list[LiveEvent]:
        """The sound under way ended (or was cut): the turn's events, or none for a short
        sound the grammar does not understand (listening goes on)."""
        assert self._first is not None
        if self._started is not None:
            self._done = True
            return [await self._finish(self._started)]
        if self._voiced_total >= self._min_frames:
            finished = await self._finish(self._first)
            if finished.recognition.understood:
                self._done = True
                return [SpeechStarted(at_ms=finished.started_ms), finished]
        # Forgotten; its tail is the pre-roll of whatever comes next.
        keep = (self._recent.maxlen or 0) * FRAME_BYTES
        tail = self._utterance[len(self._utterance) - keep :] if keep else b""
        self._recent.extend(
            bytes(tail[i : i + FRAME_BYTES]) for i in range(0, len(tail), FRAME_BYTES)
        )
        self._first = None
        self._utterance = bytearray()
        self._drop_early()
        return []

    def _decodes_early(self) -> bool:
        """Whether the sound would be recognized if it ended now."""
        return self._started is not None or self._voiced_total >= self._min_frames

    async def _early_result(self, stream: _IncrementalDecode | None) -> Recognition:
        """The recognition of the sound as it stands, ``_keep_frames`` into its silence: the
        stream fed so far finished, or the audio decoded whole."""
        if stream is not None:
            return await stream.finish()
        return await self._decode(self._audio())

    def _audio(self) -> bytes:
        """The sound from its pre-roll up to ``_keep_frames`` of silence after its last
        voiced frame (or up to now)."""
        keep_until = min(self._frame, self._last_voiced + 1 + self._keep_frames)
        return bytes(self._utterance[: (keep_until - self._utterance_first) * FRAME_BYTES])

    async def _decode(self, audio: bytes) -> Recognition:
        return await asr.recognize_async(
            self.recognizer, audio, TELEPHONY_RATE, self.grammar, self._workers
        )

    async def _finish(self, started: int) -> SpeechFinished:
        ended = self._last_voiced + 1
        early, self._early = self._early, None
        try:
            if self._incremental is not None:
                recognition = await self._incremental.finish()
            elif early is not None:
                recognition = await early
            else:
                recognition = await self._decode(self._audio())
        except Exception:
            # A failing engine must not leave the call hanging: the turn ends as not heard.
            log.exception("%s failed on a live utterance", self.recognizer.name)
            recognition = self.grammar.resolve([], self.recognizer.name)
        finally:
            self._incremental = None
        return SpeechFinished(recognition, started * FRAME_MS, ended * FRAME_MS)


def _frames(ms: int) -> int:
    """Whole frames covering ``ms`` (at least one)."""
    return max(1, -(-ms // FRAME_MS))
