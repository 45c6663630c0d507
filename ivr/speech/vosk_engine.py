"""Vosk (Kaldi) recognition: one shared model per language per process, a recognizer per turn.

Facts this module is built on (Vosk 0.3.45, verified in its sources and on real models):

- ``Model`` is read-only once loaded and its C calls release the GIL: one instance serves every
  thread of the process. Loading takes seconds and hundreds of MB, so it happens lazily, once,
  under a lock.
- ``vosk.Model(name)`` without a path tries to download and calls ``sys.exit(1)`` on failure:
  models are always opened by path here.
- ``SetGrammar`` on a recognizer that has decoded audio aborts the whole process: each utterance
  gets a NEW ``KaldiRecognizer`` created with its grammar (about a millisecond).
- A grammar constrains words, not phrases; ``"[unk]"`` absorbs out-of-vocabulary speech. The
  words heard are therefore checked against the phrases by ``Grammar.resolve``.
- A 16 kHz model accepts 8 kHz audio only when ``--allow-upsample=true`` is in its
  ``conf/mfcc.conf``; otherwise the audio is upsampled here first.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ivr.speech.asr import UNKNOWN_WORD, Grammar, Recognition, Word
from ivr.speech.audio import resample
from ivr.speech.models import ModelInfo

log = logging.getLogger(__name__)

# Trailing silence fed before the final result: the decoder commits the last word only after
# some non-speech, and recordings are often cut right after it.
_TRAILING_SILENCE_S = 0.3
_DEFAULT_MODEL_RATE = 16000
_ALTERNATIVES = 10  # n-best readings per segment
_MAX_READINGS = 50  # cap on combinations when Vosk split a turn into several segments

_models: dict[Path, Any] = {}
_models_lock = threading.Lock()
_missing_words_logged: set[tuple[Path, str]] = set()


def load_model(path: Path) -> Any:
    """The process-wide ``vosk.Model`` for ``path``, loaded on first use (thread-safe)."""
    with _models_lock:
        model = _models.get(path)
        if model is None:
            import vosk

            vosk.SetLogLevel(-1)  # Kaldi's per-utterance logging would flood the server log
            if not path.is_dir():
                raise FileNotFoundError(f"Vosk model directory not found: {path}")
            try:
                model = vosk.Model(model_path=str(path))
            except Exception as err:  # vosk raises a bare Exception on a broken model
                raise RuntimeError(f"cannot load the Vosk model at {path}: {err}") from err
            _models[path] = model
        return model


def loaded_models() -> list[Path]:
    with _models_lock:
        return list(_models)


@dataclass(frozen=True)
class FeatureSettings:
    """What the model's feature extractor expects, from ``conf/mfcc.conf``."""

    sample_rate: int
    allow_upsample: bool

    @classmethod
    def read(cls, model_dir: Path) -> FeatureSettings:
        conf = model_dir / "conf" / "mfcc.conf"
        text = conf.read_text(encoding="utf-8") if conf.is_file() else ""
        rate = re.search(r"--sample-frequency=(\d+)", text)
        upsample = re.search(r"--allow-upsample=(\w+)", text)
        return cls(
            int(rate.group(1)) if rate else _DEFAULT_MODEL_RATE,
            bool(upsample and upsample.group(1).lower() == "true"),
        )


def _alternatives(result_json: str) -> list[tuple[float, list[Word]]]:
    """A segment's n-best readings: (score, words) with the best first."""
    result = json.loads(result_json)
    readings = []
    for alternative in result.get("alternatives", []):
        words = [
            Word(str(item["word"]), 1.0, float(item.get("start", 0.0)), float(item.get("end", 0.0)))
            for item in alternative.get("result", [])
        ]
        readings.append((float(alternative.get("confidence", 0.0)), words))
    return readings


def _join_segments(
    segments: list[list[tuple[float, list[Word]]]],
) -> list[tuple[float, list[Word]]]:
    """Readings of the whole turn: one alternative per segment, scores added, best first."""
    joined: list[tuple[float, list[Word]]] = [(0.0, [])]
    for segment in segments:
        if not segment or all(not words for _, words in segment):
            continue  # a segment of silence only
        joined = [(s1 + s2, w1 + w2) for s1, w1 in joined for s2, w2 in segment]
        joined = sorted(joined, key=lambda reading: -reading[0])[:_MAX_READINGS]
    return [reading for reading in joined if reading[1]]


class VoskStream:
    """One utterance being decoded. Audio is decoded as it arrives unless it must be upsampled
    first (a model without ``--allow-upsample``): then it is kept and decoded in ``finish``,
    because resampling chunk by chunk would put clicks at every chunk boundary."""

    def __init__(self, recognizer: VoskRecognizer, grammar: Grammar, sample_rate: int) -> None:
        import vosk

        self._engine = recognizer.name
        self._grammar = grammar
        self._input_rate = sample_rate
        settings = recognizer.features
        self._upsample_to = (
            settings.sample_rate
            if sample_rate < settings.sample_rate and not settings.allow_upsample
            else None
        )
        self._pending = bytearray()
        self._segments: list[list[tuple[float, list[Word]]]] = []
        self._finished = False
        phrases = list(recognizer.usable_phrases(grammar))
        if recognizer.knows(UNKNOWN_WORD):  # small models have no [unk]: Vosk would warn
            phrases.append(UNKNOWN_WORD)
        grammar_json = json.dumps(phrases, ensure_ascii=False)
        decode_rate = self._upsample_to or sample_rate
        self._kaldi = vosk.KaldiRecognizer(recognizer.model, float(decode_rate), grammar_json)
        self._kaldi.SetWords(True)
        self._kaldi.SetMaxAlternatives(_ALTERNATIVES)

    def _feed(self, pcm16: bytes) -> None:
        if self._kaldi.AcceptWaveform(pcm16):
            # Vosk found an endpoint inside the turn: keep that segment's best reading, go on.
            self._segments.append(_alternatives(self._kaldi.Result()))

    def _resolve(self) -> Recognition:
        """Pick the best-scored reading that means something, with its n-best posterior.

        A grammar constrains words, not phrases, so the best path may be a word salad such as
        "예 마세요 아니요" while the third-best is exactly "다시 말해 주세요". The readings
        (segments joined) are tried best first; the confidence is the share of the n-best
        probability mass that agrees with the chosen meaning.
        """
        readings = _join_segments(self._segments)
        if not readings:
            return self._grammar.resolve([], self._engine)
        best_score = max(score for score, _ in readings)
        weights = [math.exp(score - best_score) for score, _ in readings]
        resolved = [self._grammar.resolve(words, self._engine) for _, words in readings]
        chosen = next((r for r in resolved if r.understood), resolved[0])
        agreeing = sum(
            w
            for w, r in zip(weights, resolved, strict=True)
            if (r.intent, r.digits) == (chosen.intent, chosen.digits)
        )
        posterior = round(agreeing / sum(weights), 3)
        words = tuple(Word(w.text, posterior, w.start, w.end) for w in chosen.words)
        return self._grammar.resolve(words, self._engine)

    def accept(self, pcm16: bytes) -> None:
        if self._finished:
            raise RuntimeError("accept() after finish(): start a new stream per utterance")
        if len(pcm16) % 2:
            raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm16)}")
        if self._upsample_to is not None:
            self._pending += pcm16
        elif pcm16:
            self._feed(pcm16)

    def finish(self) -> Recognition:
        if self._finished:
            raise RuntimeError("finish() called twice on one stream")
        self._finished = True
        rate = self._input_rate
        if self._upsample_to is not None:
            self._feed(resample(bytes(self._pending), rate, self._upsample_to))
            rate = self._upsample_to
        self._feed(bytes(int(_TRAILING_SILENCE_S * rate) * 2))
        self._segments.append(_alternatives(self._kaldi.FinalResult()))
        return self._resolve()


class VoskRecognizer:
    """Recognizer protocol over one Vosk model directory."""

    runs_in: Literal["thread", "process"] = "thread"

    def __init__(self, model: ModelInfo, language: str | None = None) -> None:
        self.info = model
        self._language = language or model.language
        self.features = FeatureSettings.read(model.path)
        self._usable: dict[str, tuple[str, ...]] = {}
        self._usable_lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"vosk:{self.info.name}"

    @property
    def language(self) -> str:
        return self._language

    @property
    def model(self) -> Any:
        return load_model(self.info.path)

    def knows(self, word: str) -> bool:
        return int(self.model.vosk_model_find_word(word)) >= 0

    def usable_phrases(self, grammar: Grammar) -> tuple[str, ...]:
        """The grammar's phrases whose words are all in the model's vocabulary.

        Vosk silently drops unknown words from a grammar; a phrase with one would then be
        heard as its other words only. Such phrases are left out (and logged once).
        """
        with self._usable_lock:
            cached = self._usable.get(grammar.key)
        if cached is not None:
            return cached
        usable = []
        for phrase in grammar.phrases:
            unknown = [w for w in phrase.split() if not self.knows(w)]
            if not unknown:
                usable.append(phrase)
                continue
            for word in unknown:
                if (self.info.path, word) not in _missing_words_logged:
                    _missing_words_logged.add((self.info.path, word))
                    log.warning(
                        "Vosk model %s does not know the word %r: the phrase %r cannot be "
                        "recognized (callers can still press its key)",
                        self.info.name,
                        word,
                        phrase,
                    )
        result = tuple(usable)
        with self._usable_lock:
            self._usable[grammar.key] = result
        return result

    def stream(self, grammar: Grammar, sample_rate: int) -> VoskStream:
        return VoskStream(self, grammar, sample_rate)

    def recognize(self, pcm16: bytes, sample_rate: int, grammar: Grammar) -> Recognition:
        stream = self.stream(grammar, sample_rate)
        stream.accept(pcm16)
        return stream.finish()
