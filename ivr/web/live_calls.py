"""Calls over Media Streams: the call service's turns, played and heard over a WebSocket.

With ``IVR_TWILIO_MEDIA=stream`` a turn that waits for the caller is answered with
``<Connect action=RESUME><Stream url=wss://PUBLIC/twilio/stream>`` carrying a signed call
reference as a ``<Parameter>``, instead of ``<Gather>``/``<Record>``. The turn is committed
as always, with one more event-log entry, ``live_prompts``: the turn's prompts (and whether
each may be interrupted), so that any stream on any server can play them from the database.

:class:`LiveCall` is the :class:`~ivr.calls.media.CallRuntime` of one streamed call: it
resumes at the stored turn and commits each answer through the call service before the
next prompts play. What a turn stores as its response is what the ``<Connect>`` action URL
answers once the stream is closed: a new ``<Connect>`` at the stored turn while the call
listens (a dropped WebSocket resumes there, by webhook), or the turn's ``<Dial>``/``<Hangup>``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from ivr.calls.media import Heard, LivePrompt, LiveTurn, SpeechListener
from ivr.dialplan.engine import pending_listen
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session
from ivr.dialplan.vocabulary import Entered, Event, Listen, Output, Play, Say
from ivr.speech.asr import Grammar, Recognizer
from ivr.speech.audio import AudioFormat, pcm16_to_mulaw, read_wav, resample
from ivr.speech.live import LiveListener
from ivr.speech.vad import make_vad
from ivr.store import CallRecord
from ivr.telephony.twilio.routes import STREAM_PATH
from ivr.telephony.twilio.twiml import render_after_prompts, render_connect
from ivr.telephony.twilio.urls import call_url
from ivr.web.calls import GONE, CallService, UnknownCall, _Replay
from ivr.web.turn_audio import FAILURES, TurnAudio
from ivr.web.turns import Turn, run_turn

log = logging.getLogger(__name__)

BARGE_IN_ONSET_MS = 150

ENDED_ROUTE = "stream-ended"
CALL_PARAMETER = "call"
LIVE_PROMPTS = "live_prompts"
LIVE_HEARD = "live_heard"


@runtime_checkable
class EngineSource(Protocol):
    """A recognizer that hands out its engine per language (``OfflineRecognizer``)."""

    def engine(self, language: str) -> Recognizer | None: ...


def stream_url(base_url: str) -> str:
    """The ``wss://`` URL of the stream route behind the public base URL (Twilio only
    connects over TLS; a proxy in front terminates it)."""
    parts = urlsplit(base_url)
    return f"wss://{parts.netloc}{parts.path.rstrip('/')}{STREAM_PATH}"


def _digest(secret: bytes, ref: str) -> str:
    return hmac.new(secret, f"stream|{ref}".encode(), hashlib.sha256).hexdigest()[:32]


def sign_call_ref(secret: bytes, ref: str) -> str:
    return f"{ref}.{_digest(secret, ref)}"


def verify_call_ref(secret: bytes, value: str) -> str | None:
    """The call reference in a signed stream parameter, or None if it is not ours."""
    ref, _, digest = value.rpartition(".")
    if not ref or not hmac.compare_digest(_digest(secret, ref), digest):
        return None
    return ref


def _barge_flags(
    plan: Plan, state: str | None, outputs: list[Output]
) -> list[tuple[Say | Play, bool]]:
    """Each prompt with its state's ``barge_in`` (the state most recently entered)."""
    flags: list[tuple[Say | Play, bool]] = []
    for output in outputs:
        if isinstance(output, Entered):
            state = output.state
        elif isinstance(output, Say | Play):
            found = plan.states.get(state or "")
            flags.append((output, found.barge_in if found is not None else True))
    return flags


def _prompt_entry(prompt: Say | Play, barge_in: bool) -> dict[str, Any]:
    if isinstance(prompt, Say):
        return {"say": prompt.text, "language": prompt.language, "barge_in": barge_in}
    return {"play": prompt.path, "barge_in": barge_in}


def _prompt_of(entry: dict[str, Any]) -> tuple[Say | Play, bool] | None:
    barge_in = bool(entry.get("barge_in", True))
    if isinstance(entry.get("say"), str) and isinstance(entry.get("language"), str):
        return Say(entry["say"], entry["language"]), barge_in
    if isinstance(entry.get("play"), str):
        return Play(entry["play"]), barge_in
    return None


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
    """Stream-mode TwiML for the call service, and a runtime per streamed call."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls
        self.s = calls.s
        calls.live_twiml = self.turn_twiml
        # The session task of each call streaming to this process, by call reference.
        self.streams: dict[str, asyncio.Task[None]] = {}

    @property
    def enabled(self) -> bool:
        return self.s.settings.twilio_media == "stream"

    def connect_twiml(self, ref: str, turn: int) -> str:
        action = call_url(self.s.base_url, ENDED_ROUTE, ref, turn=turn)
        parameters = {CALL_PARAMETER: sign_call_ref(self.s.secret, ref)}
        return render_connect(stream_url(self.s.base_url), action, parameters)

    def turn_twiml(self, call: CallRecord, plan: Plan, session: Session, turn: Turn) -> str | None:
        """A webhook's turn in stream mode: ``<Connect>`` when it waits for the caller (its
        prompts logged for the stream to play), else None (rendered as usual)."""
        if not self.enabled or not turn.outputs or not isinstance(turn.outputs[-1], Listen):
            return None
        turn.log.append(self.prompts_entry(call.turn + 1, plan, session, turn))
        return self.connect_twiml(call.id, call.turn + 1)

    @staticmethod
    def prompts_entry(
        number: int, plan: Plan, session: Session, turn: Turn
    ) -> tuple[str, dict[str, Any]]:
        flags = _barge_flags(plan, session.state, turn.outputs)
        return LIVE_PROMPTS, {"turn": number, "prompts": [_prompt_entry(p, b) for p, b in flags]}

    async def after_stream(self, ref: str) -> str:
        """The ``<Connect>`` action URL: the stream is over (closed by us, or dropped)."""
        async with self.s.store.read() as tx:
            call = await tx.calls.get(ref)
        if call is None:
            raise UnknownCall(ref)
        plan = self.s.plan(call.plan_id)
        session = Session.from_json(call.session_json)
        if session.ended:
            return call.last_response or GONE  # the turn's <Dial> or <Hangup>
        if call.is_final or plan is None or pending_listen(plan, session) is None:
            return GONE
        log.info("call %s: stream closed while listening; resuming at turn %d", ref, call.turn)
        return self.connect_twiml(ref, call.turn)

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
        prompts = [p for entry in stored.get("prompts", []) if (p := _prompt_of(entry))]
        return LiveTurn(call.turn, await self._audio(prompts), listen)

    async def answer(self, turn: LiveTurn, event: Event, heard: Heard) -> LiveTurn | None:
        try:
            call, plan, session = await self.calls._load(self.ref, turn.turn)
        except (_Replay, UnknownCall):
            return None
        audio = TurnAudio(self.s)
        taken = await run_turn(plan, session, event, self.calls._lookup, audio.start)
        taken.log.insert(0, (LIVE_HEARD, {"turn": turn.turn, **heard.as_log()}))
        await audio.paths(taken)  # rendered into the cache before the turn is committed
        listen = taken.outputs[-1] if taken.outputs else None
        number = turn.turn + 1
        if isinstance(listen, Listen):
            close = self.live.connect_twiml(self.ref, number)
        else:
            listen, close = None, render_after_prompts(taken.outputs)
        taken.log.append(self.live.prompts_entry(number, plan, session, taken))
        stored = await self.calls._commit(call, taken.session, close, taken.log, taken.sms)
        if stored != close:
            return None
        flags = _barge_flags(plan, session.state, taken.outputs)
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
