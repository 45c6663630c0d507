"""PocketSphinx recognition: English without any download (the wheel bundles an en-US model).

Facts this module is built on (PocketSphinx 5.1.1):

- The bundled model is 16 kHz only (``samprate=8000`` fails): telephone audio is conditioned
  and upsampled by :mod:`ivr.speech.preprocess` first.
- The model directory's ``feat.params`` overrides feature settings given to ``Decoder()``.
- Decoding holds the GIL: parallel calls go to worker processes (``runs_in = "process"``).
  The recognizer object is a small frozen dataclass, so it pickles into a worker; each process
  (and each thread, a decoder is not thread-safe) builds its own decoder once.
- A JSGF grammar always yields something in-grammar ("operator please" came out as "three two").
  Each hypothesis is therefore scored twice: against the grammar, and against a free phone loop
  (the bundled phone language model). Speech that is really in the grammar scores nearly as
  well as the phone loop; other speech scores much worse per frame. That ratio, and how much of
  the speech the recognized words cover, make the confidence that rejects out-of-grammar speech
  (for digits the ratio is taken digit by digit, over each digit's own frames).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from ivr.dialplan.digits import base_language
from ivr.speech.asr import Grammar, Recognition, Word
from ivr.speech.calibration import Calibration, DigitEvidence, calibrations
from ivr.speech.preprocess import Conditioning, condition, snr_db

log = logging.getLogger(__name__)

MODEL_RATE = 16000
_FRAME_S = 0.01  # PocketSphinx's frame rate is 100 per second
_PHONE_SEARCH = "_phone_loop"
_MAX_CACHED_GRAMMARS = 64
# Confidence = logistic((per-frame score ratio - offset) / scale) x speech coverage. The offset
# and scale were calibrated on FSDD digits and espeak-spoken replies (bench/asr_accuracy.py).
_RATIO_OFFSET = -5.0
_RATIO_SCALE = 3.0
# A caller often says more than the phrase ("yes, I'll be there", "yes that works"). The plain
# grammar then forces the whole sentence onto one phrase ("again", "another day"). A second
# search allows a few broad-class phones ("garbage", each costing _GARBAGE_WEIGHT) before and
# after the phrase. A phrase's "fit" is, per frame, its words' acoustic score minus the phone
# loop's over the same frames. The garbage path is taken when its phrase fits by
# _HYBRID_MARGIN better than the plain path's and reaches _SEGMENT_OFFSET; its confidence is
# then logistic((fit - _SEGMENT_OFFSET) / _SEGMENT_SCALE). Otherwise the plain path's confidence
# is also scaled down by logistic((fit - _PLAIN_FIT_FLOOR) / _PLAIN_FIT_SCALE): a phrase fitting
# far worse than the phone loop ("banana" as "no") is rejected. Calibrated on
# bench/asr_accuracy.py's espeak replies (right 30 -> 31 of 40, out-of-grammar rejected
# 28 -> 26 of 40) and the simulated caller's voice (the two answers above now understood).
# Margins 0.5-1.0 and offsets -2.9 to -3.3 gave the same counts; plain-fit floors -6.5 to -6.0
# rejected 26-27; above -5.9 a caller's "sorry can you say that again" is lost. Costs a third
# decoding pass (replies RTF 0.08 -> 0.15). Not used for digit grammars (FSDD unchanged).
_GARBAGE_PHONES = ("AH", "IY", "S", "T", "N", "L")
_GARBAGE_PREFIX = "_g_"
_GARBAGE_WEIGHT = 1e-3
_HYBRID_MARGIN = 0.75
_SEGMENT_OFFSET = -3.1
_SEGMENT_SCALE = 0.5
_PLAIN_FIT_FLOOR = -6.3
_PLAIN_FIT_SCALE = 0.5

# Default conditioning for telephone audio (see ivr.speech.preprocess for what each step buys).
TELEPHONE = Conditioning()
# Pronunciations of words as the telephone band (and accents) leave them. /s/ lives mostly above
# 4 kHz, so what is left of it is a weak fricative that the model hears as /f/ or /th/: "six"
# arrives as "F IH K S" or "TH IH W" and was lost to "eight", "three" or "four". A short, lax
# "two" comes out as "T OW" and, with "oh" in the digit grammar, was heard as "oh" (9 of one FSDD
# speaker's 10 "two"s). A rounded (British) "stop" and one whose /s/ vanished are "T AO P" and
# "T AA P"; the rest of the word was heard as "no". Measured with bench/asr_accuracy.py, chosen on
# FSDD takes 0-4, checked on the held-out takes 5-9: "two(2)" 82.0% -> 86.5% (held-out +5),
# "six(4)" 86.5% -> 89.0% (held-out +2); "stop" variants: espeak replies 31 -> 33 of 40,
# out-of-grammar rejected 26 -> 29 of 40. Tried and not kept (FSDD files right, of 200):
# "six" as "TH IH K S" (+4, one less than "F IH K S"; both together +4), "TH IH K" or
# "S EH K S" (0); "eight" as "EY" (+1, but more "three"s and "six"es became "eight");
# "three" as "TH R IH", "T R IY" or "D R IY" (-2 to 0); "stop" as "T OW P" or "F T AA P" (0).
NARROWBAND_PRONUNCIATIONS: tuple[tuple[str, str], ...] = (
    ("six(2)", "S IH K"),
    ("six(3)", "IH K S"),
    ("six(4)", "F IH K S"),
    ("seven(2)", "EH V AH N"),
    ("two(2)", "T OW"),
    ("stop(2)", "T AA P"),
    ("stop(3)", "T AO P"),
)
# Digit strings of variable length ("1 to 16 digits"): with PocketSphinx's default word insertion
# penalty (wip 0.65) the search inserted short words into the gaps and word endings ("two" ->
# "two oh", "five" -> "five eight"): 4-digit strings made of FSDD recordings came out right 9 of
# 60 times. A stronger penalty alone also made silence between digits expensive (in the FSG
# search a silence is a word too); with silence made free (silprob 1.0) to compensate: 37/60
# strings and 82/100 isolated digits right on the held-out takes (59/100 before), chosen on
# takes 0-4 (wip 1e-3 to 0.03 and silprob 0.3 to 3 tried). Fixed-length grammars keep the
# defaults: the word count is fixed and single digits lost 3 of 100 held-out with the setting.
# Decoder settings given to one search only, as (name, value) pairs.
Settings = tuple[tuple[str, float], ...]
DIGIT_STRING_SEARCH: Settings = (("wip", 0.01), ("silprob", 1.0))
# Digits are confirmed one by one: each digit's acoustic score is compared, per frame, with the
# phone loop's over the same frames, and a number is as sure as its least sure digit
# (confidence = logistic((fit - offset) / _DIGIT_FIT_SCALE) per digit; Grammar.resolve keeps the
# lowest). The whole-utterance ratio used before let the padding and pauses (where both passes
# score alike) dilute a badly fitting digit. Measured with bench/asr_accuracy.py at
# min_confidence 0.5, chosen on FSDD takes 0-4, counts on the held-out takes 5-9 (right and
# accepted / wrong and accepted / of 140 English and Korean replies, accepted as digits):
# one digit 69/3/64 -> 86/2/58; isolated digits in a 1-16 grammar 55/9/29 -> 77/8/8; 4-digit
# strings in a 4-10 grammar 24/8/4 -> 24/6/0; in a 4-digit (PIN) grammar 21/8/19 -> 22/1/0.
# The digit-string search (its penalties shift where word boundaries fall) fits lower, hence
# its own offset. Offsets -3.0 to -4.5 (fixed length) and -4.5 to -5.5 (digit strings) tried.
# The curve (scale 0.5, offset -4.0; -5.0 for digit strings) is data now, a Calibration in
# ivr/speech/data/digit_calibration.json: bench/asr_speakers.py chose the same offsets by leave
# one speaker out over four FSDD speakers (a model over more evidence did worse on the speaker
# left out: ivr.speech.calibration).
# A digit found inside a longer sentence ("hello how are you today" as "oh") fits well by
# itself; what gives it away is how little of the speech it covers. Below this share of the
# phone loop's speech frames (not silence, not noise), each digit's confidence is scaled by the
# share. Single digits, 140 replies: taken as a digit 58 -> 40, FSDD right and accepted
# unchanged (168 of 200, 86 of the held-out 100); a share of 0.6 lost one right digit, 0.7 five.
_DIGIT_MIN_SPEECH_SHARE = 0.5
# ``lm=None``: the default 27 MB trigram language model is never used with grammars; not loading
# it saves ~60 MB of RSS and 0.2 s per decoding process. Other settings stay PocketSphinx's
# defaults: ``ds=2`` decoded 30% faster but lost 2 points of FSDD accuracy; narrower beams,
# ``topn=2``, other lw/wip/silprob values moved FSDD accuracy by no more than noise (+-2 points).
DECODER_CONFIG: dict[str, Any] = {"lm": None}


def supports_language(language: str) -> bool:
    return base_language(language) == "en"


def _model_dir() -> Path:
    from pocketsphinx import get_model_path

    return Path(get_model_path()) / "en-us"


class _Decoder:
    """A PocketSphinx decoder plus its compiled grammars (one per process and thread)."""

    def __init__(self, extra_words: tuple[tuple[str, str], ...]) -> None:
        from pocketsphinx import Decoder

        self.decoder: Any = Decoder(loglevel="FATAL", **DECODER_CONFIG)
        for word, phones in extra_words:
            self.decoder.add_word(word, phones, False)
        for phone in _GARBAGE_PHONES:
            self.decoder.add_word(_GARBAGE_PREFIX + phone.lower(), phone, False)
        self.decoder.add_allphone_file(_PHONE_SEARCH, str(_model_dir() / "en-us-phone.lm.bin"))
        self.logmath = self.decoder.get_logmath()
        self.searches: OrderedDict[str, str] = OrderedDict()
        self.missing_logged: set[str] = set()

    def pronunciation(self, word: str) -> str | None:
        phones = self.decoder.lookup_word(word)
        return str(phones) if phones else None

    def search_for(self, grammar: Grammar, garbage: bool = False, settings: Settings = ()) -> str:
        """The name of the search compiled from ``grammar`` (compiled on first use); with
        ``garbage``, the phrase may be preceded and followed by garbage phones. ``settings``
        (decoder settings such as ``wip``) apply to this search only: PocketSphinx reads them
        when it compiles a search."""
        kind = ("x" if garbage else "g") + repr(sorted(settings))
        name = "g" + hashlib.sha1((kind + grammar.key).encode()).hexdigest()[:16]
        if name in self.searches:
            self.searches.move_to_end(name)
            return name
        config = self.decoder.config
        saved = {key: config[key] for key, _ in settings}
        try:
            for key, value in settings:
                config[key] = value
            self.decoder.add_jsgf_string(name, self.jsgf(grammar, garbage))
        finally:
            for key, value in saved.items():
                config[key] = value
        self.searches[name] = grammar.key
        if len(self.searches) > _MAX_CACHED_GRAMMARS:
            oldest, _ = self.searches.popitem(last=False)
            self.decoder.remove_search(oldest)
        return name

    def usable_phrases(self, grammar: Grammar) -> list[str]:
        """Phrases whose words the dictionary knows; a word spoken the same as an earlier
        alternative ("o" and "oh") is left out: it would only split the same path in two."""
        usable, seen = [], set()
        for phrase in grammar.phrases:
            prons = [self.pronunciation(w) for w in phrase.split()]
            if None in prons:
                if phrase not in self.missing_logged:
                    self.missing_logged.add(phrase)
                    log.warning("PocketSphinx's dictionary lacks a word of %r: left out", phrase)
                continue
            key = " | ".join(p or "" for p in prons)
            if key not in seen:
                seen.add(key)
                usable.append(phrase)
        if not usable:
            raise ValueError(f"no phrase of the grammar is in PocketSphinx's dictionary: {grammar}")
        return usable

    def jsgf(self, grammar: Grammar, garbage: bool = False) -> str:
        alternatives = " | ".join(self.usable_phrases(grammar))
        lines = ["#JSGF V1.0;", "grammar ivr;"]
        if garbage:
            phones = " | ".join(_GARBAGE_PREFIX + p.lower() for p in _GARBAGE_PHONES)
            lines.append(f"<phone> = {phones};")
            lines.append(f"<garbage> = /1/ <NULL> | /{_GARBAGE_WEIGHT:g}/ <phone> <garbage>;")
            lines.append(f"public <utterance> = <garbage> ({alternatives}) <garbage>;")
        elif grammar.digits is None:
            lines.append(f"public <utterance> = {alternatives};")
        else:
            # Bounded length: the required digits, then nested optional ones up to max. A fixed
            # length (a PIN) is a strong constraint and kept; otherwise one digit is enough for
            # the search, so that a number too short is heard as such and the plan answers
            # with its no_match, not as if nothing was said (with the digit-string penalty a
            # search that must place 4 words where 1 was said ends with none).
            shortest = 1 if _is_digit_string(grammar) else grammar.digits.min
            lines.append(f"<digit> = {alternatives};")
            optional = ""
            for _ in range(grammar.digits.max - shortest):
                optional = f"[<digit> {optional}]".replace(" ]", "]")
            required = " ".join(["<digit>"] * shortest)
            lines.append(f"public <utterance> = {required} {optional};".replace(" ;", ";"))
        return "\n".join(lines) + "\n"

    def decode(self, search: str, pcm16: bytes) -> tuple[list[Segment], float]:
        """Words with their (start, end) frames and acoustic log score, and the best path's
        log score per frame."""
        # The feature front end keeps state between utterances (its noise-removal estimates):
        # reset it so that one recording always decodes the same way, whatever came before.
        self.decoder.reinit_feat()
        self.decoder.activate_search(search)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm16, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        frames = max(1, int(self.decoder.n_frames()))
        if hyp is None or hyp.best_score <= 0:
            return [], -math.inf
        score = float(self.logmath.log(hyp.best_score)) / frames
        words = [
            Segment(seg.word, int(seg.start_frame), int(seg.end_frame), _ln(seg.ascore))
            for seg in self.decoder.seg()
        ]
        return words, score


class Segment(NamedTuple):
    word: str
    start: int
    end: int
    ascore: float  # acoustic score, natural log


def _ln(probability: float) -> float:
    """``seg.ascore`` comes as a probability; one too small for a float counts as very low."""
    return math.log(probability) if probability > 0 else -745.0


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def _segment_fit(words: list[Segment], phones: list[Segment]) -> float | None:
    """Per frame, the acoustic score of the recognized words (first to last) minus the phone
    loop's over the same frames; None without words."""
    spoken = [w for w in words if not _is_filler(w.word)]
    if not spoken:
        return None
    first, last = spoken[0].start, spoken[-1].end
    own = sum(w.ascore for w in words if first <= w.start and w.end <= last)
    return (own - _phone_loop_score(phones, first, last)) / (last - first + 1)


def _word_fit(word: Segment, phones: list[Segment]) -> float:
    """Per frame, one word's acoustic score minus the phone loop's over its frames."""
    return (word.ascore - _phone_loop_score(phones, word.start, word.end)) / (
        word.end - word.start + 1
    )


def _phone_loop_score(phones: list[Segment], first: int, last: int) -> float:
    """The phone loop's acoustic score over frames ``first``-``last`` (phones prorated by
    their overlap)."""
    score = 0.0
    for p in phones:
        overlap = min(p.end, last) - max(p.start, first) + 1
        if overlap > 0:
            score += p.ascore * overlap / (p.end - p.start + 1)
    return score


_local = threading.local()


def _decoder(extra_words: tuple[tuple[str, str], ...]) -> _Decoder:
    decoders: dict[tuple[tuple[str, str], ...], _Decoder] = _local.__dict__.setdefault(
        "decoders", {}
    )
    decoder = decoders.get(extra_words)
    if decoder is None:
        decoder = decoders[extra_words] = _Decoder(extra_words)
    return decoder


def _is_digit_string(grammar: Grammar) -> bool:
    """A digit grammar of variable length ("4 to 10 digits"), not a fixed one such as a PIN."""
    return grammar.digits is not None and grammar.digits.min < grammar.digits.max


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "[", "+", _GARBAGE_PREFIX)) or word in ("sil",)


def _plain(word: str) -> str:
    """``zero(2)`` (an alternative pronunciation) -> ``zero``."""
    return word.split("(", 1)[0]


@dataclass(frozen=True)
class PocketSphinxRecognizer:
    """Recognizer protocol over the bundled en-US model."""

    language: str = "en-US"
    conditioning: Conditioning = TELEPHONE
    # Extra dictionary entries (word, phones), e.g. ("zero(3)", "Z EH R OW") for an accent.
    extra_words: tuple[tuple[str, str], ...] = NARROWBAND_PRONUNCIATIONS
    # Decoder settings for digit grammars of variable length; ``None`` keeps the defaults.
    digit_string_search: Settings | None = DIGIT_STRING_SEARCH
    # Digit confidence model; ``None``: the committed one for the search (ivr.speech.calibration).
    calibration: Calibration | None = None
    name: str = field(default="pocketsphinx:en-us", init=False)
    runs_in: Literal["thread", "process"] = field(default="process", init=False)

    def _settings(self, grammar: Grammar) -> Settings:
        """Decoder settings of ``grammar``'s own search (digit strings of variable length)."""
        if self.digit_string_search is None or not _is_digit_string(grammar):
            return ()
        return self.digit_string_search

    def stream(self, grammar: Grammar, sample_rate: int) -> SphinxStream:
        return SphinxStream(self, grammar, sample_rate)

    def prepare(self, grammar: Grammar) -> None:
        """Build this process's decoder and compile every search ``grammar`` may need (the
        garbage variant is compiled only for answers that fit: a probe does not reach it)."""
        decoder = _decoder(self.extra_words)
        decoder.search_for(grammar, False, self._settings(grammar))
        if grammar.digits is None:
            decoder.search_for(grammar, garbage=True)

    def recognize(self, pcm16: bytes, sample_rate: int, grammar: Grammar) -> Recognition:
        if len(pcm16) % 2:
            raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm16)}")
        if sample_rate < 8000:
            raise ValueError(f"sample rate {sample_rate} Hz is below telephone quality (8000)")
        audio = condition(pcm16, sample_rate, self.conditioning)
        decoder = _decoder(self.extra_words)
        settings = self._settings(grammar)
        words, score = decoder.decode(decoder.search_for(grammar, False, settings), audio)
        phones, phone_score = decoder.decode(_PHONE_SEARCH, audio)
        if grammar.digits is not None:
            digits = [w for w in words if not _is_filler(w.word)]
            evidence = digit_evidence(digits, phones, snr_db(pcm16, sample_rate))
            return self._heard_digits(digits, evidence, self._calibration(settings), grammar)
        confidence = 0.0
        if any(not _is_filler(w.word) for w in words):
            ratio = score - phone_score
            fit = 1.0 / (1.0 + math.exp(-(ratio - _RATIO_OFFSET) / _RATIO_SCALE))
            confidence = fit * _speech_coverage(words)
        plain_fit = _segment_fit(words, phones)
        if plain_fit is not None:
            garbage_words, _ = decoder.decode(decoder.search_for(grammar, garbage=True), audio)
            garbage_fit = _segment_fit(garbage_words, phones)
            if (
                garbage_fit is not None
                and garbage_fit >= _SEGMENT_OFFSET
                and garbage_fit - plain_fit >= _HYBRID_MARGIN
            ):
                words = garbage_words
                confidence = _logistic((garbage_fit - _SEGMENT_OFFSET) / _SEGMENT_SCALE)
            else:
                confidence *= _logistic((plain_fit - _PLAIN_FIT_FLOOR) / _PLAIN_FIT_SCALE)
        spoken = [w for w in words if not _is_filler(w.word)]
        return grammar.resolve([self._word(w, confidence) for w in spoken], self.name)

    def _calibration(self, settings: Settings) -> Calibration:
        if self.calibration is not None:
            return self.calibration
        return calibrations()["digit_string" if settings else "digit"]

    def examine_digits(
        self, pcm16: bytes, sample_rate: int, grammar: Grammar
    ) -> tuple[list[str], list[DigitEvidence]]:
        """The digit words heard and each one's evidence, before calibration (the bench fits
        the calibration on these)."""
        if grammar.digits is None:
            raise ValueError("examine_digits needs a digit grammar")
        audio = condition(pcm16, sample_rate, self.conditioning)
        decoder = _decoder(self.extra_words)
        search = decoder.search_for(grammar, False, self._settings(grammar))
        words, _ = decoder.decode(search, audio)
        phones, _ = decoder.decode(_PHONE_SEARCH, audio)
        digits = [w for w in words if not _is_filler(w.word)]
        evidence = digit_evidence(digits, phones, snr_db(pcm16, sample_rate))
        return [_plain(w.word) for w in digits], evidence

    def _heard_digits(
        self,
        digits: list[Segment],
        evidence: list[DigitEvidence],
        calibration: Calibration,
        grammar: Grammar,
    ) -> Recognition:
        """Each digit with its own calibrated confidence, scaled down when the digits span
        too little of the speech (see _DIGIT_MIN_SPEECH_SHARE)."""
        heard = []
        for segment, found in zip(digits, evidence, strict=True):
            scale = found.share if found.share < _DIGIT_MIN_SPEECH_SHARE else 1.0
            heard.append(self._word(segment, scale * calibration.confidence(found)))
        return grammar.resolve(heard, self.name)

    def _word(self, segment: Segment, confidence: float) -> Word:
        """``segment`` as a Word, its times in seconds of the caller's audio (padding removed)."""
        pad = self.conditioning.pad_s
        start = max(0.0, segment.start * _FRAME_S - pad)
        end = max(0.0, segment.end * _FRAME_S - pad)
        return Word(_plain(segment.word), round(confidence, 3), start, end)


def digit_evidence(digits: list[Segment], phones: list[Segment], snr: float) -> list[DigitEvidence]:
    share = _speech_share(digits, phones)
    return [
        DigitEvidence(
            fit=_word_fit(w, phones),
            loop=_phone_loop_score(phones, w.start, w.end) / (w.end - w.start + 1),
            frames=w.end - w.start + 1,
            snr_db=snr,
            share=share,
            count=len(digits),
        )
        for w in digits
    ]


def _speech_share(words: list[Segment], phones: list[Segment]) -> float:
    """How much of the speech the phone loop found (its phones that are neither silence nor
    noise) the recognized words span, at most 1."""
    speech = sum(p.end - p.start + 1 for p in phones if p.word != "SIL" and p.word[:1] != "+")
    said = sum(w.end - w.start + 1 for w in words)
    return min(1.0, said / speech) if speech else 1.0


def _speech_coverage(words: list[Segment]) -> float:
    """1.0 unless long stretches between the first and last word were taken as silence or noise
    (a typical sign of a longer out-of-grammar sentence squeezed onto one short phrase)."""
    spoken = [(s, e) for w, s, e, _ in words if not _is_filler(w)]
    first, last = spoken[0][0], spoken[-1][1]
    inside_fillers = sum(
        e - s + 1 for w, s, e, _ in words if _is_filler(w) and s > first and e < last
    )
    span = max(1, last - first + 1)
    return max(0.0, 1.0 - inside_fillers / span)


class SphinxStream:
    """Streaming for PocketSphinx: audio is kept and decoded in ``finish``. The conditioning
    (level normalization, trimming) and the model's batch cepstral-mean normalization need the
    whole utterance; decoding a turn takes ~2% of its duration, so the delay stays small."""

    def __init__(self, recognizer: PocketSphinxRecognizer, grammar: Grammar, rate: int) -> None:
        self._recognizer = recognizer
        self._grammar = grammar
        self._rate = rate
        self._audio = bytearray()
        self._finished = False

    def accept(self, pcm16: bytes) -> None:
        if self._finished:
            raise RuntimeError("accept() after finish(): start a new stream per utterance")
        self._audio += pcm16

    def finish(self) -> Recognition:
        if self._finished:
            raise RuntimeError("finish() called twice on one stream")
        self._finished = True
        return self._recognizer.recognize(bytes(self._audio), self._rate, self._grammar)
