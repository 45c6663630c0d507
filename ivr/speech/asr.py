"""Offline speech recognition behind one small protocol.

A :class:`Grammar` is built from the ``listen`` spec of the current dial-plan state (its intent
phrases, or digits); a :class:`Recognizer` decodes a whole utterance or a stream against it and
returns a :class:`Recognition`: the words heard with their confidences, and the intent or the
digits they mean. Intents and digits are resolved with the dial-plan's own functions
(``match_speech``, ``parse_spoken_digits``), so a recognition and the engine's later reading of
the same text never disagree.

Engines: Vosk (one model per language per process, decoding in threads: its C calls release the
GIL) and PocketSphinx for English without any download (decoding in worker processes: it holds
the GIL). :func:`recognizer_for` picks one per language; :func:`recognize_async` keeps decoding
off the event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ivr.dialplan.digits import base_language, digit_words, parse_spoken_digits
from ivr.dialplan.intents import match_speech, words_of
from ivr.dialplan.schema import DigitsSpec, Intent, ListenSpec
from ivr.dialplan.vocabulary import SpeechRecognized
from ivr.speech.models import ModelLocator, missing_model_hint

log = logging.getLogger(__name__)

UNKNOWN_WORD = "[unk]"


@dataclass(frozen=True)
class Word:
    """One recognized word, its confidence (0..1) and where it is in the audio (seconds)."""

    text: str
    confidence: float
    start: float = 0.0
    end: float = 0.0


@dataclass(frozen=True)
class Recognition:
    """What a recognizer made of one utterance.

    ``text`` holds the grammar words heard (out-of-vocabulary stretches dropped); ``intent`` or
    ``digits`` is set only when the words form a phrase of the grammar (or a digit string of an
    allowed length) and ``confidence`` reaches the grammar's ``min_confidence``.
    """

    text: str
    words: tuple[Word, ...]
    confidence: float
    engine: str
    intent: str | None = None
    digits: str | None = None

    @property
    def understood(self) -> bool:
        return self.intent is not None or self.digits is not None

    def as_event(self) -> SpeechRecognized:
        """The dial-plan input event: the engine re-reads the text and reaches the same answer."""
        return SpeechRecognized(self.text if self.understood else "", self.confidence)


@dataclass(frozen=True)
class Grammar:
    """What may be said: the phrases of a state's intents, or digits, in one language."""

    language: str
    intents: Mapping[str, Intent] = field(default_factory=dict)
    digits: DigitsSpec | None = None
    min_confidence: float = 0.5

    @classmethod
    def from_listen(cls, spec: ListenSpec, language: str) -> Grammar:
        return cls(language, dict(spec.intents), spec.digits, spec.min_confidence)

    @classmethod
    def for_phrases(
        cls, phrases: Iterable[str], language: str, min_confidence: float = 0.5
    ) -> Grammar:
        """Each phrase its own intent, named by the phrase (``asr transcribe --phrases``)."""
        intents = {p.strip(): Intent(say=[p.strip()]) for p in phrases if p.strip()}
        if not intents:
            raise ValueError("a phrase grammar needs at least one phrase")
        return cls(language, intents, None, min_confidence)

    @classmethod
    def for_digits(
        cls, language: str, min_digits: int = 1, max_digits: int = 16, min_confidence: float = 0.5
    ) -> Grammar:
        return cls(language, {}, DigitsSpec(min=min_digits, max=max_digits), min_confidence)

    def __post_init__(self) -> None:
        if bool(self.intents) == (self.digits is not None):
            raise ValueError("a grammar has either intents or digits (exactly one of them)")
        if self.digits is not None and not digit_words(self.language):
            raise ValueError(f"no spoken digit words for language {self.language!r}")

    @property
    def base_language(self) -> str:
        return base_language(self.language)

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every phrase as lower-case words separated by single spaces, without duplicates."""
        if self.digits is not None:
            spoken = list(digit_words(self.language))
        else:
            spoken = [p for intent in self.intents.values() for p in intent.say]
        unique = dict.fromkeys(" ".join(words_of(p)) for p in spoken)
        return tuple(p for p in unique if p)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return tuple(sorted({w for p in self.phrases for w in p.split()}))

    @property
    def key(self) -> str:
        """Identifies the grammar's content (engines cache compiled grammars by it)."""
        kind = f"digits {self.digits.min}-{self.digits.max}" if self.digits else "phrases"
        return f"{self.base_language}|{kind}|" + "|".join(self.phrases)

    def describe(self) -> str:
        """What the grammar allows, for people: ``en-US digits 4-10`` or ``en-US phrases: yes |
        no``, with its threshold."""
        if self.digits is not None:
            low, high = self.digits.min, self.digits.max
            kind = f"digits {low}" if low == high else f"digits {low}-{high}"
        else:
            kind = "phrases: " + " | ".join(self.phrases)
        return f"{self.language} {kind}, min_confidence {self.min_confidence:g}"

    def resolve(self, words: Sequence[Word], engine: str) -> Recognition:
        """Turn recognized words into a Recognition; ``[unk]`` words count as not heard. An
        answer is as sure as its least sure word (one misheard digit makes a wrong number)."""
        heard = tuple(w for w in words if w.text != UNKNOWN_WORD)
        text = " ".join(w.text for w in heard)
        confidence = min(w.confidence for w in heard) if heard else 0.0
        result = Recognition(text, heard, round(confidence, 3), engine)
        if not heard or confidence < self.min_confidence:
            return result
        if self.digits is not None:
            digits = parse_spoken_digits(text, self.language)
            if digits is not None and self.digits.min <= len(digits) <= self.digits.max:
                return Recognition(text, heard, result.confidence, engine, digits=digits)
            return result
        intent = match_speech(self.intents, text)
        return Recognition(text, heard, result.confidence, engine, intent=intent)


class RecognitionStream(Protocol):
    """One utterance fed piece by piece (live audio); ``finish`` ends it."""

    def accept(self, pcm16: bytes) -> None: ...

    def finish(self) -> Recognition: ...


class Recognizer(Protocol):
    """A speech recognition engine for one language."""

    @property
    def name(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def runs_in(self) -> Literal["thread", "process"]:
        """Where blocking decodes go: threads when the engine releases the GIL, else processes."""
        ...

    def recognize(self, pcm16: bytes, sample_rate: int, grammar: Grammar) -> Recognition:
        """Decode a whole utterance (16-bit mono PCM) against ``grammar``."""
        ...

    def stream(self, grammar: Grammar, sample_rate: int) -> RecognitionStream: ...


@dataclass(frozen=True)
class AsrConfig:
    """Engine choice: Vosk model directories per language, whether PocketSphinx may serve, and
    how many answers each engine kind decodes at once (``None``: the cores, at most 4)."""

    models: Mapping[str, Path] = field(default_factory=dict)
    pocketsphinx: bool = True
    locator: ModelLocator | None = None
    workers: int | None = None

    def model_locator(self) -> ModelLocator:
        return self.locator or ModelLocator.default(configured=self.models)


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(language: str, message: str) -> None:
    with _warned_lock:
        if language in _warned:
            return
        _warned.add(language)
    log.warning(message)


def recognizer_for(language: str, config: AsrConfig | None = None) -> Recognizer | None:
    """The engine for ``language``: a Vosk model if found, else PocketSphinx for English, else
    None (keypad only; one warning per language names the missing model and how to get it)."""
    from ivr.speech.sphinx_engine import PocketSphinxRecognizer, supports_language
    from ivr.speech.vosk_engine import VoskRecognizer

    config = config or AsrConfig()
    model = config.model_locator().find(language)
    if model is not None:
        return VoskRecognizer(model, language)
    if config.pocketsphinx and supports_language(language):
        return PocketSphinxRecognizer(language)
    _warn_once(
        base_language(language),
        f"no speech recognition model for {language!r}: callers can only use the keypad. "
        f"To add one, {missing_model_hint(language)}",
    )
    return None


# ---------------------------------------------------------------------------------------------
# Decoding off the event loop

_pools: dict[tuple[str, int], Executor] = {}
_pools_lock = threading.Lock()
# Without a configured size: one decoder per core, at most 4. Each PocketSphinx worker is a
# process holding its own decoder (92 MB RSS measured); Vosk threads share one model per language.
_DEFAULT_MAX_WORKERS = 4


def default_workers() -> int:
    return max(1, min(_DEFAULT_MAX_WORKERS, os.cpu_count() or 1))


def _pool(
    kind: Literal["thread", "process"],
    workers: int | None = None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Executor:
    """The shared pool of ``kind`` and size; ``initializer`` (with ``initargs``) runs in each
    worker process as it starts, only when this call creates the pool (see
    :mod:`ivr.speech.warmup`, which builds the decoders there)."""
    size = workers or default_workers()
    with _pools_lock:
        pool = _pools.get((kind, size))
        if pool is None:
            if kind == "thread":
                pool = ThreadPoolExecutor(size, thread_name_prefix="asr")
            else:
                # spawn, not fork: a forked child of a process that already runs threads (the
                # event loop, the TTS worker's pipes, Vosk's pool) can deadlock.
                context = multiprocessing.get_context("spawn")
                pool = ProcessPoolExecutor(
                    size, mp_context=context, initializer=initializer, initargs=initargs
                )
            _pools[(kind, size)] = pool
        return pool


def pool_exists(kind: Literal["thread", "process"], workers: int | None = None) -> bool:
    with _pools_lock:
        return (kind, workers or default_workers()) in _pools


def start_pool(
    kind: Literal["thread", "process"],
    workers: int | None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[object, ...] = (),
) -> Executor:
    """The pool ``recognize_async`` will use, created now (with ``initializer``) if need be."""
    return _pool(kind, workers, initializer, initargs)


def shutdown_pools() -> None:
    """Stop the decoding pools (tests and a graceful server shutdown call this)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)


def recognize_many(
    recognizer: Recognizer,
    audio: Iterable[tuple[bytes, int]],
    grammar: Grammar,
    workers: int | None = None,
) -> Iterator[Recognition]:
    """Decode many utterances in the engine's pool, in order (blocking; not on an event loop)."""
    items = list(audio)
    pool = _pool(recognizer.runs_in, workers)
    yield from pool.map(
        recognizer.recognize, [a for a, _ in items], [r for _, r in items], [grammar] * len(items)
    )


async def recognize_async(
    recognizer: Recognizer,
    pcm16: bytes,
    sample_rate: int,
    grammar: Grammar,
    workers: int | None = None,
) -> Recognition:
    """Decode in the engine's pool (threads for Vosk, processes for PocketSphinx) of
    ``workers`` decoders (``None``: ``default_workers()``)."""
    loop = asyncio.get_running_loop()
    pool = _pool(recognizer.runs_in, workers)
    return await loop.run_in_executor(pool, recognizer.recognize, pcm16, sample_rate, grammar)
