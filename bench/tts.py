"""Prompt synthesis speed: the worker-process service and its cache against plain pyttsx3.

    .venv/bin/python bench/tts.py [--count 40] [--repeat 5]

Measures, on this machine and in this run:
- baseline: pyttsx3 called directly in this process (save_to_file + runAndWait per prompt,
  22 kHz PCM, no conversion) — what the product would do without a worker;
- cold: the service rendering prompts that are not cached (worker round trip, resampling to
  8 kHz, mu-law encoding, atomic write into the cache);
- cached: the same prompts again (hash, stat, no synthesis);
- dynamic prompt latency (p50/p95): one never-seen text per request, as a call would ask;
- the worker's resident memory (VmRSS and peak VmHWM from /proc).
Runs in well under a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.speech.audio import AudioFormat
from ivr.speech.prompts import PromptCache
from ivr.speech.tts import DEFAULT_RATE, TtsService


def texts(count: int, tag: str) -> list[str]:
    return [
        f"Your order number {n} {tag} will be delivered on Friday between ten and noon."
        for n in range(count)
    ]


def proc_status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def baseline_in_process(prompts: list[str], workdir: Path) -> float:
    """Seconds per prompt for plain pyttsx3 in this process, output left as 22 kHz WAV."""
    import pyttsx3
    from pyttsx3.drivers import _espeak

    engine = pyttsx3.init("espeak")
    target = workdir / "baseline.wav"
    # pyttsx3 prints "Audio saved to ..." for every file.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        engine.save_to_file(".", str(target))  # warm-up, as the worker does
        engine.runAndWait()
        engine.setProperty("voice", "gmw/en-us")
        engine.setProperty("rate", DEFAULT_RATE)
        _espeak.Synchronize()
        started = time.perf_counter()
        for text in prompts:
            engine.save_to_file(text, str(target))
            engine.runAndWait()
        elapsed = time.perf_counter() - started
    return elapsed / len(prompts)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="prompts per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the cached prompts")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory(prefix="ivr-bench-tts-") as tmp, TtsService() as service:
        workdir = Path(tmp)
        started = time.perf_counter()
        service.start()
        rows.append(("worker start-up", f"{time.perf_counter() - started:.2f} s"))
        cache = PromptCache(workdir / "cache", service)

        baseline = baseline_in_process(texts(args.count, "baseline"), workdir)
        rows.append(("baseline: pyttsx3 in-process", f"{1 / baseline:7.1f} prompts/s"))

        cold_texts = texts(args.count, "cold")
        started = time.perf_counter()
        for text in cold_texts:
            cache.prompt_audio(text, "en-US", AudioFormat.MULAW)
        cold = (time.perf_counter() - started) / args.count
        rows.append(("service, cache miss (mu-law)", f"{1 / cold:7.1f} prompts/s"))

        started = time.perf_counter()
        for _ in range(args.repeat):
            for text in cold_texts:
                cache.prompt_audio(text, "en-US", AudioFormat.MULAW)
        cached = (time.perf_counter() - started) / (args.count * args.repeat)
        rows.append(("service, cache hit", f"{1 / cached:7.0f} prompts/s"))

        latencies = []
        for text in texts(args.count, "dynamic"):
            started = time.perf_counter()
            cache.prompt_audio(text, "en-US", AudioFormat.MULAW)
            latencies.append(time.perf_counter() - started)
        rows.append(
            (
                "dynamic prompt latency p50 / p95",
                f"{statistics.median(latencies) * 1000:.1f} / "
                f"{percentile(latencies, 0.95) * 1000:.1f} ms",
            )
        )
        pid = service.worker_pid
        assert pid is not None
        rows.append(
            (
                "worker RSS (now / peak)",
                f"{proc_status_kb(pid, 'VmRSS') / 1024:.1f} / "
                f"{proc_status_kb(pid, 'VmHWM') / 1024:.1f} MB",
            )
        )
        rows.append(("ratio cold / baseline (time per prompt)", f"{cold / baseline:.2f}x"))
        rows.append(("speed-up cached vs baseline", f"{baseline / cached:.0f}x"))
        misses, renders = cache.misses, service.renders

    width = max(len(name) for name, _ in rows)
    print(f"TTS benchmark: {args.count} prompts of ~14 words, en-US, {DEFAULT_RATE} wpm")
    print("-" * (width + 24))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 24))
    print(f"(cache misses {misses}, worker renders {renders}: hits never reach the worker)")


if __name__ == "__main__":  # required: the worker is started with the spawn method
    main()
