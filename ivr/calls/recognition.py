"""Offline recognition of a caller's recording, as the call service needs it.

The grammar comes from the state's ``listen`` spec; decoding runs in the engine's pool (threads
for Vosk, processes for PocketSphinx), never on the event loop. An engine is chosen once per
language (a Vosk model if one is found, else PocketSphinx for English, else none: keypad only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, runtime_checkable

from ivr.dialplan.vocabulary import Event, Listen, NoInput, SpeechRecognized
from ivr.speech.asr import (
    AsrConfig,
    Grammar,
    Recognition,
    Recognizer,
    recognize_async,
    recognizer_for,
    start_pool,
)
from ivr.speech.audio import read_wav, rms
from ivr.speech.warmup import warm_decoders, warm_process_pool

# Shorter than this, or quieter than this, is not an answer (a click, line noise).
MIN_SECONDS = 0.1
MIN_RMS = 30.0


def is_answer(pcm: bytes, rate: int) -> bool:
    return len(pcm) >= MIN_SECONDS * rate * 2 and rms(pcm) >= MIN_RMS


def answer_event(result: Recognition) -> SpeechRecognized | NoInput:
    """The engine's input event for a recognition: no words heard is no answer at all."""
    return result.as_event() if result.words else NoInput()


class OfflineRecognizer:
    def __init__(self, config: AsrConfig | None = None) -> None:
        self.config = config or AsrConfig()
        self._engines: dict[str, Recognizer | None] = {}

    def engine(self, language: str) -> Recognizer | None:
        if language not in self._engines:
            self._engines[language] = recognizer_for(language, self.config)
        return self._engines[language]

    def supports(self, language: str) -> bool:
        return self.engine(language) is not None

    async def recognize(self, wav: bytes, listen: Listen) -> SpeechRecognized | NoInput:
        """What the caller said, as the engine's input event; ValueError for broken audio."""
        pcm, rate = read_wav(wav, name="recording")
        if (prepared := self._prepare(pcm, rate, listen)) is None:
            return NoInput()
        engine, grammar = prepared
        return answer_event(await recognize_async(engine, pcm, rate, grammar, self.config.workers))

    async def warm_up(self, listens: Sequence[Listen]) -> list[str]:
        """Load every engine these listens need and build its decoders, off the event loop.

        Process engines (PocketSphinx) get all their worker processes started, each with a
        decoder and every grammar compiled; thread engines (Vosk) load their model and
        decode once per grammar. Returns one line per engine, for the start-up log.
        """
        jobs: dict[str, tuple[Recognizer, list[Grammar]]] = {}
        for listen in listens:
            engine = self.engine(listen.language)
            if engine is None:
                continue
            try:
                grammar = Grammar.from_listen(listen.spec, listen.language)
            except ValueError:
                continue  # e.g. digits in a language without digit words: keypad only
            jobs.setdefault(engine.name, (engine, []))[1].append(grammar)
        loop = asyncio.get_running_loop()
        by_kind = {
            kind: [job for job in jobs.values() if job[0].runs_in == kind]
            for kind in ("thread", "process")
        }
        done: list[str] = []
        work: list[Awaitable[object]] = []
        if processes := by_kind["process"]:
            work.append(asyncio.to_thread(warm_process_pool, processes, self.config.workers))
        for job in by_kind["thread"]:
            pool = start_pool("thread", self.config.workers)
            work.append(loop.run_in_executor(pool, warm_decoders, [job]))
        await asyncio.gather(*work)
        for name, (engine, grammars) in sorted(jobs.items()):
            where = "worker processes" if engine.runs_in == "process" else "threads"
            done.append(f"{name}: {len(grammars)} grammars ready in {where}")
        return done

    def decode(self, pcm: bytes, rate: int, listen: Listen) -> Recognition | None:
        """Blocking, for synchronous callers (``ivr simulate --audio``), never on an event loop:
        the recognition of an answer, or None (no engine for the language, or no answer)."""
        if (prepared := self._prepare(pcm, rate, listen)) is None:
            return None
        engine, grammar = prepared
        return engine.recognize(pcm, rate, grammar)

    def _prepare(self, pcm: bytes, rate: int, listen: Listen) -> tuple[Recognizer, Grammar] | None:
        """The engine and grammar for an answer, or None: no engine, or no answer at all."""
        engine = self.engine(listen.language)
        if engine is None or not is_answer(pcm, rate):
            return None
        return engine, Grammar.from_listen(listen.spec, listen.language)


@runtime_checkable
class WarmableRecognizer(Protocol):
    """A recognizer that can load its engines ahead of the first answer (start-up)."""

    async def warm_up(self, listens: Sequence[Listen]) -> list[str]: ...


class PendingRecognitions:
    """Recognitions still decoding when their webhook had to answer.

    A webhook that waited ``recognition_budget`` answers with a short pause and a redirect
    (the caller hears a natural beat of silence, the provider's webhook timeout never fires);
    the redirect, or a repeated delivery of the same webhook, finds the same decoding here by
    (call, turn) instead of starting another. A result nobody came back for (the caller hung up
    during the pause) is dropped after ``keep_seconds``.
    """

    def __init__(self, keep_seconds: float = 120.0) -> None:
        self._tasks: dict[tuple[str, int], asyncio.Task[Event]] = {}
        self._keep_seconds = keep_seconds

    def start(
        self, key: tuple[str, int], work: Callable[[], Coroutine[Any, Any, Event]]
    ) -> asyncio.Task[Event]:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._tasks[key] = task
            task.add_done_callback(lambda _: self._expire_later(key, task))
        return task

    def _expire_later(self, key: tuple[str, int], task: asyncio.Task[Event]) -> None:
        def expire() -> None:
            if self._tasks.get(key) is task:
                del self._tasks[key]

        asyncio.get_running_loop().call_later(self._keep_seconds, expire)

    @staticmethod
    async def finished(task: asyncio.Task[Event], budget: float) -> bool:
        """Whether ``task`` is done within ``budget`` seconds (it is never cancelled here)."""
        done, _ = await asyncio.wait({task}, timeout=budget)
        return bool(done)

    def forget(self, key: tuple[str, int]) -> None:
        self._tasks.pop(key, None)

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
