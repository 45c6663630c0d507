"""How many answers decode at once: ``IVR_ASR_WORKERS`` -> ``AsrConfig.workers`` -> the pools."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Literal

import pytest

from ivr.calls.recognition import OfflineRecognizer
from ivr.dialplan.vocabulary import Listen, SpeechRecognized
from ivr.speech import asr
from ivr.speech.asr import AsrConfig, Grammar, Recognition, RecognitionStream, recognize_async
from ivr.speech.audio import write_wav
from tests.speech.support import listen_spec, speak


class SlowEngine:
    """An engine that takes 0.3 s per answer and counts how many it decodes at the same time:
    what is under test is the pool around it, not recognition."""

    name = "slow"
    language = "en-US"
    runs_in: Literal["thread", "process"] = "thread"

    def __init__(self, workers: int) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.most_at_once = 0
        self._workers = workers
        self._all_busy = threading.Event()

    def recognize(self, pcm16: bytes, sample_rate: int, grammar: Grammar) -> Recognition:  # noqa: ARG002
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
            if self._running >= self._workers:
                self._all_busy.set()
        # The first decodings wait until the pool runs as many at once as it may, so that
        # reaching the bound does not depend on how fast threads start on a loaded machine;
        # the short sleep after gives a pool that admits too many the chance to show it.
        assert self._all_busy.wait(30), "the pool never ran its workers at once"
        time.sleep(0.05)
        with self._lock:
            self._running -= 1
        return grammar.resolve([], self.name)

    def stream(self, grammar: Grammar, sample_rate: int) -> RecognitionStream:
        raise NotImplementedError("whole utterances only")


@pytest.fixture(autouse=True)
def _fresh_pools() -> object:
    asr.shutdown_pools()
    yield
    asr.shutdown_pools()


@pytest.mark.parametrize("workers", [1, 3])
async def test_workers_bound_the_answers_decoded_at_once(workers: int) -> None:
    engine = SlowEngine(workers)
    grammar = Grammar.for_phrases(["yes", "no"], "en-US")
    await asyncio.gather(
        *(recognize_async(engine, b"", 8000, grammar, workers) for _ in range(workers + 2))
    )
    assert engine.most_at_once == workers


async def test_server_recognizer_decodes_in_a_pool_of_the_configured_size(
    tmp_path: Path,
) -> None:
    spec = listen_spec("appointment_reminder_ko.yaml")
    wav = write_wav(None, speak("네", "ko", tmp_path), 8000)

    recognizer = OfflineRecognizer(AsrConfig(workers=1))
    heard = await recognizer.recognize(wav, Listen("ask", spec, "ko-KR"))

    assert isinstance(heard, SpeechRecognized)
    assert heard.text == "네"
    assert list(asr._pools) == [("thread", 1)]  # Vosk decodes in threads, here only one
