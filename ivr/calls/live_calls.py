"""Calls over a media stream: the call service's turns, played and heard over a WebSocket.

When the dialect streams (``IVR_TWILIO_MEDIA=stream`` for Twilio), a turn that waits for the
caller is answered with the dialect's ``connect_stream`` (Twilio: ``<Connect><Stream>``
carrying a signed call reference) instead of the provider's own listening. The turn is
committed as always, with one more event-log entry, ``live_prompts`` (see live_prompts.py),
so that any stream on any server can play its prompts from the database.

:class:`LiveCall` is the :class:`~ivr.calls.media.CallRuntime` of one streamed call: it
resumes at the stored turn and commits each answer through the call service before the
next prompts play. What a turn stores as its response is what the provider is answered once
the stream is closed (:meth:`LiveCalls.after_stream`): a new stream at the stored turn while
the call listens (a dropped WebSocket resumes there, by webhook), or the turn's ending.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

from ivr.calls.live_prompts import LIVE_HEARD, LIVE_PROMPTS, barge_flags, prompt_of, prompts_entry
from ivr.calls.media import Heard, LivePrompt, LiveTurn, SpeechListener
from ivr.calls.service import CallService, UnknownCall
from ivr.calls.turn_audio import FAILURES, TurnAudio
from ivr.dialplan.engine import pending_listen
from ivr.dialplan.session import Session
from ivr.dialplan.vocabulary import Event, Listen, Play, Say
from ivr.speech.asr import Grammar, Recognizer
from ivr.speech.audio import AudioFormat, pcm16_to_mulaw, read_wav, resample
from ivr.speech.live import LiveListener
from ivr.speech.vad import make_vad

log = logging.getLogger(__name__)

BARGE_IN_ONSET_MS = 150


@runtime_checkable
class EngineSource(Protocol):
    """A recognizer that hands out its engine per language (``OfflineRecognizer``)."""

    def engine(self, language: str) -> Recognizer | None: ...


@functools.lru_cache(maxsize=256)
def _mulaw_of(path: str, mtime_ns: int, size: int) -> bytes:
    """A prompt file as raw 8 kHz mu-law, kept in memory: menus are played over and over
    (256 prompts of a few seconds are a few MB). Keyed by the file's mtime and size too,
    because a ``play:`` recording may be replaced in place."""
    del mtime_ns, size
    pcm, rate = read_wav(Path(path).read_bytes(), name=path)
    if rate != 8000:
        pcm = resample(pcm, rate, 8000)
    return pcm16_to_mulaw(pcm)


def _as_mulaw(path: Path) -> bytes:
    stat = path.stat()
    return _mulaw_of(str(path), stat.st_mtime_ns, stat.st_size)


class LiveCalls:
    """The streamed calls of the call service: a runtime per call, and what the provider is
    answered when a stream ends."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls
        self.s = calls.s
        self.dialect = calls.dialect
        # The session task of each call streaming to this process, by call reference.
        self.streams: dict[str, asyncio.Task[None]] = {}

    async def after_stream(self, ref: str) -> str:
        """The stream is over (closed by us, or dropped): how the call goes on."""
        async with self.s.store.read() as tx:
            call = await tx.calls.get(ref)
        if call is None:
            raise UnknownCall(ref)
        plan = self.s.plan(call.plan_id)
        session = Session.from_json(call.session_json)
        gone = self.dialect.gone()
        if session.ended:
            return call.last_response or gone  # the turn's ending (Twilio: <Dial>, <Hangup>)
        if call.is_final or plan is None or pending_listen(plan, session) is None:
            return gone
        log.info("call %s: stream closed while listening; resuming at turn %d", ref, call.turn)
        return self.dialect.connect_stream(ref, call.turn)

    def runtime(self, ref: str) -> LiveCall:
        return LiveCall(self, ref)


class LiveCall:
    """The :class:`~ivr.calls.media.CallRuntime` of one streamed call."""

    def __init__(self, live: LiveCalls, ref: str) -> None:
        self.live = live
        self.calls = live.calls
        self.s = live.s
        self.ref = ref

    async def resume(self) -> LiveTurn | None:
        async with self.s.store.read() as tx:
            call = await tx.calls.get(self.ref)
            events = await tx.events.list(self.ref) if call is not None else []
        if call is None or call.is_final or (plan := self.s.plan(call.plan_id)) is None:
            return None
        session = Session.from_json(call.session_json)
        listen = pending_listen(plan, session)
        if session.ended or listen is None:
            return None
        stored = next(
            (
                e.data
                for e in reversed(events)
                if e.kind == LIVE_PROMPTS and e.data.get("turn") == call.turn
            ),
            {},
        )
        prompts = [p for entry in stored.get("prompts", []) if (p := prompt_of(entry))]
        return LiveTurn(call.turn, await self._audio(prompts), listen)

    async def answer(self, turn: LiveTurn, event: Event, heard: Heard) -> LiveTurn | None:
        opened = await self.calls.open_turn(self.ref, turn.turn)
        if opened is None:
            return None
        call, plan, session = opened.call, opened.plan, opened.session
        audio = TurnAudio(self.s)
        taken = await self.calls.take_turn(plan, session, event, audio)
        taken.log.insert(0, (LIVE_HEARD, {"turn": turn.turn, **heard.as_log()}))
        await audio.paths(taken)  # rendered into the cache before the turn is committed
        listen = taken.outputs[-1] if taken.outputs else None
        number = turn.turn + 1
        dialect = self.live.dialect
        if isinstance(listen, Listen):
            close = dialect.connect_stream(self.ref, number)
        else:
            listen, close = None, dialect.after_streamed(taken.outputs)
        taken.log.append(prompts_entry(number, plan, session, taken))
        stored = await self.calls.commit(call, taken.session, close, taken.log, taken.sms)
        if stored != close:
            return None
        flags = barge_flags(plan, session.state, taken.outputs)
        return LiveTurn(number, await self._audio(flags), listen)

    async def _audio(self, prompts: list[tuple[Say | Play, bool]]) -> tuple[LivePrompt, ...]:
        loaded: list[LivePrompt] = []
        for prompt, barge_in in prompts:
            try:
                if isinstance(prompt, Say):
                    path = await self.s.prompts.prompt_audio_async(prompt.text, prompt.language)
                    label = prompt.text
                else:
                    source = self.s.settings.audio_dir / prompt.path
                    path = await asyncio.to_thread(
                        self.s.prompts.prepare_recording, source, AudioFormat.MULAW
                    )
                    label = prompt.path
                loaded.append(LivePrompt(await asyncio.to_thread(_as_mulaw, path), barge_in, label))
            except FAILURES as exc:
                log.warning("call %s: prompt %r could not be prepared: %s", self.ref, prompt, exc)
        return tuple(loaded)

    def listener(self, listen: Listen) -> SpeechListener | None:
        recognizers = self.s.recognizer
        if not isinstance(recognizers, EngineSource):
            return None
        engine = recognizers.engine(listen.language)
        if engine is None:
            return None
        try:
            grammar = Grammar.from_listen(listen.spec, listen.language)
        except ValueError:
            return None  # e.g. digits in a language without digit words: keys only
        end_silence = round(listen.spec.end_silence * 1000)
        settings = self.s.settings
        return LiveListener(
            engine,
            grammar,
            end_silence_ms=end_silence,
            # 150 ms of speech: barge-in p95 297 ms with Silero (200 ms: 336), no more false
            # barge-ins on noise (bench/vad.py --onset).
            onset_ms=BARGE_IN_ONSET_MS,
            vad=make_vad(settings.vad),
            workers=settings.asr_workers,
        )
