"""``ivr simulate --audio``: the caller's turns through real audio and the real recognizers.

A ``say:`` turn is synthesized in the caller's voice at 8 kHz and an ``audio:`` turn is read
from its file, both by :class:`~ivr.simulation.voice.CallerVoice` as the Twilio simulator does;
the audio is decoded by the call service's own :class:`~ivr.calls.recognition.OfflineRecognizer`
against the grammar of the state that listens, and what it recognized becomes the engine's
event. Keys, silence and hang-ups involve no recognizer and are fed as they are.

Each spoken turn gets a ``heard`` transcript line: the words recognized, their confidence and
the engine, and for ``say:`` turns whether that reading differs from what the words said mean
(a misrecognition), so that a failing scenario shows where recognition went wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ivr.calls.recognition import OfflineRecognizer, answer_event
from ivr.dialplan.schema import Plan
from ivr.dialplan.vocabulary import Event, Listen, NoInput
from ivr.simulation.call import Line
from ivr.simulation.runner import Heard, ScenarioError, text_ears
from ivr.simulation.scenario import Turn
from ivr.simulation.voice import CallerVoice
from ivr.speech.asr import Grammar, Recognition, Word
from ivr.speech.audio import TELEPHONY_RATE, duration_seconds
from ivr.speech.tts import TtsError


def _refuse_event_loop() -> None:
    """Synthesis and decoding block for a noticeable time (PocketSphinx also holds the GIL):
    on an event loop's thread they would stall every other task, so that is refused."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "audio simulation blocks: run it in a worker thread (asyncio.to_thread), "
        "not on the event loop"
    )


def _meaning(intent: str | None, digits: str | None) -> str:
    if intent is not None:
        return f"intent {intent}"
    if digits is not None:
        return f"digits {digits}"
    return "no match"


def _meant(said: str, listen: Listen) -> Recognition | None:
    """What the caller's words mean to this state, read as text (as ``ivr simulate`` does)."""
    try:
        grammar = Grammar.from_listen(listen.spec, listen.language)
    except ValueError:  # digits in a language without spoken digit words
        return None
    return grammar.resolve([Word(said, 1.0)], "script")


def _verdict(result: Recognition, meant: Recognition, listen: Listen) -> str:
    """Why a recognition differs from what the caller's words mean: the right words heard with
    too little confidence, or other words."""
    means = f"the words said mean {_meaning(meant.intent, meant.digits)}"
    heard = _meant(result.text, listen) if result.words else None
    if heard is not None and (heard.intent, heard.digits) == (meant.intent, meant.digits):
        return f"REJECTED: confidence below {listen.spec.min_confidence:.2f}; {means}"
    return f"MISHEARD: {means}"


class AudioEars:
    """The ``Ears`` of ``ivr simulate --audio`` (see :func:`ivr.simulation.runner.run_scenario`).

    Blocking, like the rest of the simulation; one instance may serve many scenarios (engines
    and models are loaded once per process and shared).
    """

    def __init__(
        self,
        recognizer: OfflineRecognizer | None = None,
        voice: CallerVoice | None = None,
        audio_dirs: Sequence[Path] = (),
    ) -> None:
        self.recognizer = recognizer or OfflineRecognizer()
        self.voice = voice or CallerVoice(audio_dirs)

    def __call__(self, turn: Turn, listening: Listen | None, plan: Plan) -> Heard:
        if turn.say is None and turn.audio is None:
            return text_ears(turn, listening, plan)
        _refuse_event_loop()
        language = listening.language if listening is not None else plan.language
        pcm, caller = self._caller_audio(turn, language)
        data: dict[str, Any] = {
            "said": turn.say,
            "audio": turn.audio,
            "seconds": round(duration_seconds(pcm, TELEPHONY_RATE), 3),
        }
        if listening is None:
            return self._unheard(caller, data, "nothing: the robot is not listening")
        engine = self.recognizer.engine(language)
        if engine is None:
            reason = f"nothing: no speech recognizer for {language} (keypad only)"
            return self._unheard(caller, data, reason)
        data["engine"] = engine.name
        result = self.recognizer.decode(pcm, TELEPHONY_RATE, listening)
        if result is None:
            reason = "nothing: too short or too quiet to be an answer"
            return self._unheard(caller, data, reason)
        return Heard(answer_event(result), caller, (self._heard(turn, listening, result, data),))

    def _caller_audio(self, turn: Turn, language: str) -> tuple[bytes, str]:
        """The turn as 8 kHz 16-bit PCM, and how the caller's line reads."""
        if turn.say is not None:
            try:
                return self.voice.speak_sync(turn.say, language), f'says "{turn.say}"'
            except (TtsError, ValueError) as exc:
                raise ScenarioError(f"say {turn.say!r}: {exc}") from exc
        assert turn.audio is not None
        try:
            return self.voice.load_sync(turn.audio), f"plays {turn.audio}"
        except FileNotFoundError as exc:
            raise ScenarioError(str(exc)) from exc
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"audio {turn.audio!r} is not usable: {exc}") from exc

    @staticmethod
    def _unheard(caller: str, data: dict[str, Any], reason: str) -> Heard:
        event: Event = NoInput()  # as on a real line: speech nobody can decode is no answer
        data = {**data, "heard": None, "confidence": None, "intent": None, "digits": None}
        return Heard(event, caller, (Line("heard", reason, data),))

    @staticmethod
    def _heard(turn: Turn, listen: Listen, result: Recognition, data: dict[str, Any]) -> Line:
        if result.words:
            text = f'"{result.text}" (confidence {result.confidence:.2f}, {result.engine})'
        else:
            text = f"nothing ({result.engine})"
        data = {
            **data,
            "heard": result.text,
            "confidence": result.confidence,
            "intent": result.intent,
            "digits": result.digits,
            "words": [{"text": w.text, "confidence": w.confidence} for w in result.words],
        }
        meant = _meant(turn.say, listen) if turn.say is not None else None
        if meant is not None:
            wrong = (result.intent, result.digits) != (meant.intent, meant.digits)
            data["meant"] = {"intent": meant.intent, "digits": meant.digits}
            data["misrecognized"] = wrong
            if wrong:
                text += "  " + _verdict(result, meant, listen)
        return Line("heard", text, data)
