"""Warming the speech engines before the first call.

A cold server pays for everything on its first calls: the TTS worker starts and the greeting
is synthesized inside the first webhook, the PocketSphinx worker processes start (a fresh
interpreter each, then a decoder) inside the first recognition, and a Vosk model loads in
seconds. Start-up does all of it ahead of time instead:

- :func:`warm_process_pool` creates the decoding pool of a process engine with an initializer
  that decodes a probe against every grammar of the plans (decoder built, grammars compiled)
  before the worker takes any answer, starts every worker, and waits until each has said so;
- :func:`warm_decoders` does the same in a thread for a thread engine (Vosk: the model loads);
- :func:`render_prompts` renders prompts with several TTS workers at once into the shared
  content-addressed cache (each worker is one espeak-ng process; the cache's file names do not
  depend on which worker rendered them).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.speech.asr import Grammar, Recognizer, default_workers, pool_exists, start_pool
from ivr.speech.audio import AudioFormat
from ivr.speech.prompts import BuildResult, PromptCache
from ivr.speech.tts import TtsService

PROBE_RATE = 8000
# How long a decoder process may take to start and warm up (a fresh interpreter importing
# numpy and PocketSphinx, then one decode per grammar) on a busy machine.
PROCESS_START_TIMEOUT = 120.0

DecoderJobs = Sequence[tuple[Recognizer, Sequence[Grammar]]]


def probe_audio(seconds: float = 0.6) -> bytes:
    """A deterministic voiced-like probe (16-bit PCM at 8 kHz): a few harmonics of 140 Hz.

    What it is recognized as does not matter; decoding it goes through every step a real
    answer goes through (conditioning, the grammar's search, the phone loop).
    """
    samples = []
    for n in range(int(seconds * PROBE_RATE)):
        t = n / PROBE_RATE
        value = sum(math.sin(2 * math.pi * 140 * k * t) / k for k in (1, 2, 3, 5))
        samples.append(int(3000 * value * math.sin(math.pi * n / (seconds * PROBE_RATE))))
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


def warm_decoders(jobs: DecoderJobs) -> int:
    """Decode the probe against every grammar of every engine (blocking); returns the pid."""
    audio = probe_audio()
    for recognizer, grammars in jobs:
        # An engine that can compile a grammar's searches outright (PocketSphinx) does.
        prepare = getattr(recognizer, "prepare", None)
        for grammar in grammars:
            if prepare is not None:
                prepare(grammar)
            recognizer.recognize(audio, PROBE_RATE, grammar)
    return os.getpid()


def _warm_worker(ready: Any, jobs: DecoderJobs) -> None:
    """Process-pool initializer: never raises (a failing initializer breaks the whole pool)."""
    try:
        warm_decoders(jobs)
        ready.put(("ready", os.getpid()))
    except Exception as exc:
        ready.put(("error", f"{type(exc).__name__}: {exc}"))


@dataclass(frozen=True)
class PoolWarmth:
    """What :func:`warm_process_pool` found: the warmed worker pids (empty when the pool
    already existed and was warmed by tasks instead) and the pool's size."""

    pids: tuple[int, ...]
    size: int


def warm_process_pool(
    jobs: DecoderJobs, workers: int | None, timeout: float = PROCESS_START_TIMEOUT
) -> PoolWarmth:
    """Start every decoder process of the shared process pool, warmed (blocking).

    A new pool gets an initializer that warms each worker before it takes work; submitting
    one task per worker at once starts them all (the executor starts a process for each task
    while no worker is idle yet). A pool that already exists (another app in this process)
    gets one warming task per worker instead: best effort, its workers may already be warm.
    """
    size = workers or default_workers()
    if pool_exists("process", workers):
        pool = start_pool("process", workers)
        for future in [pool.submit(warm_decoders, jobs) for _ in range(size)]:
            future.result(timeout)
        return PoolWarmth((), size)
    ready = multiprocessing.get_context("spawn").Queue()
    pool = start_pool("process", workers, _warm_worker, (ready, jobs))
    for future in [pool.submit(os.getpid) for _ in range(size)]:
        future.result(timeout)
    pids: list[int] = []
    while len(pids) < size:
        try:
            status, value = ready.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"{len(pids)} of {size} decoder processes warmed up in {timeout:g} s"
            ) from None
        if status != "ready":
            raise RuntimeError(f"a decoder process could not warm up: {value}")
        pids.append(int(value))
    ready.close()
    return PoolWarmth(tuple(pids), size)


@dataclass(frozen=True)
class PromptJob:
    text: str
    language: str
    fmt: AudioFormat = AudioFormat.MULAW


def render_prompts(
    directory: Path,
    jobs: Sequence[PromptJob],
    services: Sequence[TtsService],
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> BuildResult:
    """Render ``jobs`` into the cache at ``directory``, one thread per TTS service (blocking).

    ``progress(done, total)`` is called after each prompt, from the rendering threads; once
    ``stop`` is set (shutdown during the warm-up) no further prompt is started.
    Raises the first error a render raised once every thread has stopped.
    """
    todo: queue.SimpleQueue[PromptJob] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    lock = threading.Lock()
    counts = {"rendered": 0, "cached": 0}

    def work(service: TtsService) -> None:
        cache = PromptCache(directory, service)
        while stop is None or not stop.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            _, cached = cache.lookup(job.text, job.language, job.fmt)
            with lock:
                counts["cached" if cached else "rendered"] += 1
                done = counts["cached"] + counts["rendered"]
            if progress is not None:
                progress(done, len(jobs))

    with ThreadPoolExecutor(len(services), thread_name_prefix="prompt-warmup") as threads:
        futures = [threads.submit(work, service) for service in services]
    for future in futures:
        future.result()
    return BuildResult(counts["rendered"], counts["cached"])
