"""Voice activity detectors for live calls, measured: WebRTC, Silero (ONNX) and an energy detector.

Data: FSDD digits of four speakers (george, jackson in ../shared/data/fsdd; theo, very quiet,
and yweweler in ../shared/data/fsdd_more) and espeak-ng replies (English and Korean voices, a
fifth "speaker"), each put into a call: 0.6-1.2 s of line before, 1.2 s after, through mu-law.
Conditions: clean (a -75 dBFS line) and white or pink noise at 20 and 10 dB SNR (against the
speech's own level). Noise-only calls (white, pink, brown at -45/-35/-25 dBFS, and 250 ms
bursts of noise every 0.9 s) must not barge in.

Reference boundaries come from the clean recording itself (10 ms frames within 30 dB of its
loudest, a high-SNR energy reference). Each detector setting classifies every 20 ms frame once
(timed: CPU per second of audio); the frames then go through the real ``LiveListener`` (onset
200 ms, end of turn after 500 ms) with an engine that understands every sound, so what is
measured is segmentation alone:

- missed: speech calls without a turn; onset / end error (ms, detected - reference);
- barge-in delay: when SpeechStarted is announced, after the reference onset;
- false barge-ins: noise-only calls that announce speech (a prompt would be cut).

Settings are chosen by leave-one-speaker-out: for each speaker, the setting of each detector
with the lowest cost on the other speakers (cost = missed % + false barge-in % + (mean |onset
error| + mean |end error|) / 50 ms) is measured on the speaker left out; the tables report
only such held-out figures.

    .venv/bin/python bench/vad.py [--quick]        # ~4 min on 2 cores (--quick: ~1 min)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.speech.asr import Grammar, Recognition, RecognitionStream, Word  # noqa: E402
from ivr.speech.audio import mulaw_to_pcm16, pcm16_to_mulaw, read_wav, resample  # noqa: E402
from ivr.speech.live import LiveListener, SpeechFinished, SpeechStarted  # noqa: E402
from ivr.speech.vad import (  # noqa: E402
    FRAME_BYTES,
    EnergyVad,
    SileroVad,
    VoiceActivityDetector,
    WebRtcVad,
)

FSDD = ROOT.parent / "shared" / "data" / "fsdd"
FSDD_MORE = ROOT.parent / "shared" / "data" / "fsdd_more"
RATE = 8000
SPEAKERS = ["george", "jackson", "theo", "yweweler", "espeak"]
ESPEAK = [
    ("en-us", "yes"),
    ("en-us+f2", "no"),
    ("en-gb", "repeat please"),
    ("en-us+m3", "I can't come"),
    ("en-us+f4", "operator"),
    ("en-us", "four two oh seven"),
    ("ko", "네"),
    ("ko", "아니요"),
    ("ko+f2", "다시 말해 주세요"),
    ("ko+m3", "확인"),
]
DETECTORS = ["webrtc", "silero", "energy"]
CONDITIONS = ["clean", "white 20 dB", "pink 20 dB", "white 10 dB", "pink 10 dB"]


# --- audio -------------------------------------------------------------------------------------


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: white, pink (1/f power) or brown (1/f^2, a car or a fan)."""
    white = rng.normal(0.0, 1.0, n)
    if colour == "white":
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    freqs[0] = freqs[1]
    spectrum /= np.sqrt(freqs) if colour == "pink" else freqs
    out = np.fft.irfft(spectrum, n)
    return out / (np.sqrt(np.mean(out**2)) or 1.0)


def rms_db(x: np.ndarray) -> float:
    power = float(np.mean(x.astype(np.float64) ** 2)) if x.size else 0.0
    return 10 * np.log10(max(power, 1e-12) / 32768**2)


def reference_bounds(clip: np.ndarray) -> tuple[int, int, float]:
    """Speech start and end (ms from the clip's start) and the speech level (dBFS), from 10 ms
    frames within 30 dB of the clip's loudest."""
    size = RATE // 100
    levels = np.array([rms_db(clip[i : i + size]) for i in range(0, len(clip) - size + 1, size)])
    active = np.flatnonzero(levels >= levels.max() - 30)
    first, last = int(active[0]), int(active[-1])
    speech = clip[first * size : (last + 1) * size]
    return first * 10, (last + 1) * 10, rms_db(speech)


@dataclass
class Call:
    speaker: str
    name: str
    condition: str
    pcm16: bytes  # after mu-law, what the listener hears
    onset_ms: int | None = None  # None: noise only
    end_ms: int | None = None


def to_line(samples: np.ndarray) -> bytes:
    pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
    return mulaw_to_pcm16(pcm16_to_mulaw(pcm))


def speech_call(speaker: str, name: str, clip: bytes, condition: str, seed: int) -> Call:
    rng = np.random.default_rng(seed)
    speech = np.frombuffer(clip, dtype="<i2").astype(np.float64)
    start, end, level = reference_bounds(speech)
    lead = int(rng.uniform(0.6, 1.2) * RATE)
    total = lead + len(speech) + int(1.2 * RATE)
    samples = np.zeros(total)
    samples[lead : lead + len(speech)] = speech
    if condition == "clean":
        noise_db, colour = -75.0, "white"
    else:
        colour, snr, _ = condition.split()
        noise_db = level - float(snr)
    samples += coloured_noise(total, colour, rng) * 32768 * 10 ** (noise_db / 20)
    offset = lead * 1000 // RATE
    return Call(speaker, name, condition, to_line(samples), offset + start, offset + end)


def noise_calls(seconds: float) -> list[Call]:
    calls = []
    n = int(seconds * RATE)
    for colour in ("white", "pink", "brown"):
        for level in (-45, -35, -25):
            for seed in (1, 2):
                rng = np.random.default_rng(seed * 100 + level)
                samples = coloured_noise(n, colour, rng) * 32768 * 10 ** (level / 20)
                calls.append(Call("noise", f"{colour} {level} dBFS", "noise", to_line(samples)))
    rng = np.random.default_rng(5)
    bursts = coloured_noise(n, "white", rng) * 32768 * 10 ** (-70 / 20)
    for start in range(int(0.3 * RATE), n - RATE // 4, int(0.9 * RATE)):
        bursts[start : start + RATE // 4] += coloured_noise(RATE // 4, "white", rng) * 3000
    calls.append(Call("noise", "250 ms bursts", "noise", to_line(bursts)))
    return calls


def espeak(text: str, voice: str, rate: int, workdir: Path) -> bytes:
    out = workdir / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(out), text], check=True)
    pcm16, source_rate = read_wav(out)
    return resample(pcm16, source_rate, RATE)


def clips(quick: bool) -> Iterator[tuple[str, str, bytes]]:
    takes = range(0, 10, 4 if quick else 2)
    for speaker in SPEAKERS[:4]:
        folder = FSDD if speaker in ("george", "jackson") else FSDD_MORE
        for digit in range(10):
            for take in takes:
                pcm16, rate = read_wav(folder / f"{digit}_{speaker}_{take}.wav")
                assert rate == RATE
                yield speaker, f"{digit}_{speaker}_{take}", pcm16
    with tempfile.TemporaryDirectory() as tmp:
        for voice, text in ESPEAK[:: 2 if quick else 1]:
            for rate in (130, 175):
                yield "espeak", f"{voice} {text!r} {rate}", espeak(text, voice, rate, Path(tmp))


# --- detectors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    detector: str
    label: str
    make: Callable[[], VoiceActivityDetector]


SETTINGS = [
    *(Setting("webrtc", f"aggressiveness {a}", lambda a=a: WebRtcVad(a)) for a in range(4)),
    *(Setting("silero", f"threshold {t}", lambda t=t: SileroVad(t)) for t in (0.3, 0.5, 0.7)),
    *(Setting("energy", f"margin {m} dB", lambda m=m: EnergyVad(m)) for m in (8.0, 12.0, 16.0)),
]


class Replay:
    """Decisions computed beforehand, handed to the listener frame by frame."""

    name = "replay"

    def __init__(self, decisions: list[bool]) -> None:
        self._decisions = iter(decisions)

    def is_speech(self, frame: bytes) -> bool:  # noqa: ARG002
        return next(self._decisions, False)


class HearsEverything:
    """An engine that understands every sound: only the segmentation is under test."""

    name = "bench:segmentation"
    language = "en-US"
    runs_in: Literal["thread", "process"] = "thread"

    def recognize(self, pcm16: bytes, sample_rate: int, grammar: Grammar) -> Recognition:  # noqa: ARG002
        return grammar.resolve([Word("one", 1.0)], self.name)

    def stream(self, grammar: Grammar, sample_rate: int) -> RecognitionStream:
        raise NotImplementedError


@dataclass
class Outcome:
    started_ms: int | None = None  # SpeechStarted.at_ms
    announced_ms: int | None = None  # audio fed when SpeechStarted came
    barge_in: bool = False  # announced before the turn ended (by onset, not with the result)
    ended_ms: int | None = None


async def segment(pcm16: bytes, decisions: list[bool], onset_ms: int = 200) -> Outcome:
    grammar = Grammar.for_digits("en-US", 1, 1)
    listener = LiveListener(
        HearsEverything(), grammar, vad=Replay(decisions), onset_ms=onset_ms, decoding="whole"
    )
    mulaw = pcm16_to_mulaw(pcm16)
    outcome = Outcome()
    for start in range(0, len(mulaw), 160):
        events = await listener.feed(mulaw[start : start + 160])
        for event in events:
            if isinstance(event, SpeechStarted):
                outcome.started_ms = event.at_ms
                outcome.announced_ms = (start + 160) // 8
                outcome.barge_in = not any(isinstance(e, SpeechFinished) for e in events)
            elif isinstance(event, SpeechFinished):
                outcome.ended_ms = event.ended_ms
    await listener.close()
    return outcome


def classify(setting: Setting, pcm16: bytes) -> tuple[list[bool], float]:
    vad = setting.make()
    frames = [
        pcm16[i : i + FRAME_BYTES] for i in range(0, len(pcm16) - FRAME_BYTES + 1, FRAME_BYTES)
    ]
    began = time.process_time()
    decisions = [vad.is_speech(f) for f in frames]
    return decisions, time.process_time() - began


# --- scoring -----------------------------------------------------------------------------------


@dataclass
class Score:
    calls: int = 0
    missed: int = 0
    onset_errors: list[int] = field(default_factory=list)
    end_errors: list[int] = field(default_factory=list)
    delays: list[int] = field(default_factory=list)
    noise_calls: int = 0
    false_barge_ins: int = 0

    def add(self, call: Call, outcome: Outcome) -> None:
        if call.onset_ms is None:
            self.noise_calls += 1
            self.false_barge_ins += outcome.barge_in
            return
        assert call.end_ms is not None
        self.calls += 1
        if outcome.ended_ms is None or outcome.started_ms is None:
            self.missed += 1
            return
        self.onset_errors.append(outcome.started_ms - call.onset_ms)
        self.end_errors.append(outcome.ended_ms - call.end_ms)
        if outcome.barge_in and outcome.announced_ms is not None:
            self.delays.append(outcome.announced_ms - call.onset_ms)

    def merge(self, other: Score) -> Score:
        return Score(
            self.calls + other.calls,
            self.missed + other.missed,
            self.onset_errors + other.onset_errors,
            self.end_errors + other.end_errors,
            self.delays + other.delays,
            self.noise_calls + other.noise_calls,
            self.false_barge_ins + other.false_barge_ins,
        )

    @property
    def missed_pct(self) -> float:
        return 100 * self.missed / self.calls if self.calls else 0.0

    @property
    def false_pct(self) -> float:
        return 100 * self.false_barge_ins / self.noise_calls if self.noise_calls else 0.0

    def cost(self) -> float:
        onset = statistics.fmean(map(abs, self.onset_errors)) if self.onset_errors else 500
        end = statistics.fmean(map(abs, self.end_errors)) if self.end_errors else 500
        return self.missed_pct + self.false_pct + (onset + end) / 50


def pct(values: list[int], q: float) -> str:
    if not values:
        return "-"
    return f"{np.percentile(values, q):.0f}"


def row(name: str, score: Score, cpu: str = "") -> str:
    abs_on = [abs(v) for v in score.onset_errors]
    abs_end = [abs(v) for v in score.end_errors]
    return (
        f"| {name} | {score.calls} | {score.missed_pct:.1f} | {pct(score.onset_errors, 50)} | "
        f"{pct(abs_on, 90)} | {pct(score.end_errors, 50)} | {pct(abs_end, 90)} | "
        f"{pct(score.delays, 50)} / {pct(score.delays, 95)} | "
        f"{score.false_barge_ins}/{score.noise_calls} |{cpu}"
    )


HEADER = (
    "| {what} | speech calls | missed % | onset err p50 | abs p90 | end err p50 | abs p90 "
    "| barge-in delay p50 / p95 | false barge-ins |{cpu}\n"
    "|---|---|---|---|---|---|---|---|---|{cpu_rule}"
)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer recordings and settings")
    parser.add_argument("--onset", type=int, default=200, help="LiveListener onset_ms")
    parser.add_argument(
        "--only", nargs="+", default=DETECTORS, choices=DETECTORS, help="detectors to measure"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    calls: list[Call] = []
    for index, (speaker, name, clip) in enumerate(clips(args.quick)):
        for c, condition in enumerate(CONDITIONS):
            calls.append(speech_call(speaker, name, clip, condition, index * 10 + c))
    calls += noise_calls(4.0)
    audio_s = sum(len(c.pcm16) for c in calls) / (2 * RATE)
    print(f"{len(calls)} calls, {audio_s / 60:.1f} min of audio, built in "
          f"{time.perf_counter() - began:.0f} s\n")  # fmt: skip

    # scores[setting][speaker][condition]
    scores: dict[str, dict[str, dict[str, Score]]] = {}
    cpu: dict[str, float] = {}
    noise_hits: dict[str, list[str]] = {}  # setting -> noise calls that barged in
    print(f"onset_ms {args.onset}\n")
    for setting in [s for s in SETTINGS if s.detector in args.only]:
        key = f"{setting.detector}: {setting.label}"
        per: dict[str, dict[str, Score]] = {}
        spent = 0.0
        for call in calls:
            decisions, seconds = classify(setting, call.pcm16)
            spent += seconds
            outcome = await segment(call.pcm16, decisions, args.onset)
            if call.speaker == "noise":
                if outcome.barge_in:
                    noise_hits.setdefault(key, []).append(call.name)
                for speaker in SPEAKERS:  # noise counts for every fold alike
                    per.setdefault(speaker, {}).setdefault("noise", Score()).add(call, outcome)
            else:
                per.setdefault(call.speaker, {}).setdefault(call.condition, Score()).add(
                    call, outcome
                )
        scores[key] = per
        cpu[key] = spent / audio_s * 1000  # ms of CPU per second of audio
        print(f"  {key}: {cpu[key]:.2f} ms CPU per s of audio", flush=True)

    def total(key: str, speakers: list[str], conditions: list[str] | None = None) -> Score:
        score = Score()
        for speaker in speakers:
            for condition, s in scores[key][speaker].items():
                if condition == "noise":
                    continue
                if conditions is None or condition in conditions:
                    score = score.merge(s)
        noise = scores[key][speakers[0]].get("noise", Score())
        return score.merge(noise)

    print("\n### Every setting on every speaker (not held out: for reference)\n")
    print(HEADER.format(what="setting", cpu=" CPU ms/s |", cpu_rule="---|"))
    for key in scores:
        print(row(key, total(key, SPEAKERS), f" {cpu[key]:.2f} |"))

    print("\n### Leave one speaker out: the setting chosen on the others, measured on the one\n")
    held: dict[str, dict[str, Score]] = {}
    for detector in args.only:
        keys = [k for k in scores if k.startswith(detector + ":")]
        held[detector] = {}
        picks = []
        for speaker in SPEAKERS:
            others = [s for s in SPEAKERS if s != speaker]
            best = min(keys, key=lambda k, o=others: total(k, o).cost())  # type: ignore[misc]
            picks.append(f"{speaker}: {best.split(': ')[1]}")
            for condition in CONDITIONS:
                held[detector][condition] = (
                    held[detector]
                    .get(condition, Score())
                    .merge(scores[best][speaker].get(condition, Score()))
                )
        held[detector]["noise"] = scores[keys[0]][SPEAKERS[0]]["noise"]  # replaced below
        # False barge-ins of the setting chosen on all five folds most often.
        chosen = max(set(picks), key=picks.count).split(": ")[1]
        noise_key = f"{detector}: {chosen}"
        held[detector]["noise"] = scores[noise_key][SPEAKERS[0]]["noise"]
        print(f"- {detector} chosen: " + "; ".join(picks))
    print()
    print(HEADER.format(what="detector / condition", cpu="", cpu_rule=""))
    for detector, per_condition in held.items():
        everything = Score()
        for condition in CONDITIONS:
            everything = everything.merge(per_condition[condition])
        everything = everything.merge(per_condition["noise"])
        print(row(f"**{detector}** (all)", everything))
        for condition in CONDITIONS:
            print(row(f"{detector} / {condition}", per_condition[condition]))
    print("\n### Noise-only calls that barged in, per setting\n")
    for key in scores:
        hits = noise_hits.get(key, [])
        print(f"- {key}: {', '.join(sorted(hits)) if hits else 'none'}")
    print("\n### Held out, per speaker (all conditions)\n")
    print(HEADER.format(what="detector / speaker", cpu="", cpu_rule=""))
    for detector in args.only:
        keys = [k for k in scores if k.startswith(detector + ":")]
        for speaker in SPEAKERS:
            others = [s for s in SPEAKERS if s != speaker]
            best = min(keys, key=lambda k, o=others: total(k, o).cost())  # type: ignore[misc]
            score = Score()
            for condition in CONDITIONS:
                score = score.merge(scores[best][speaker].get(condition, Score()))
            print(row(f"{detector} / {speaker} ({best.split(': ')[1]})", score))
    print(f"\n{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
