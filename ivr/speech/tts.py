"""Text to speech: pyttsx3 (espeak-ng) in one long-lived worker process.

Why a process: pyttsx3 is not thread-safe, its run loop can hang, and it must never run on
the event loop. :class:`TtsService` owns one worker (``spawn``-started, see
:mod:`ivr.speech.tts_worker`) and sends it one request at a time: a lock serialises callers
from any thread and a single-thread executor queues the asyncio callers without blocking the
loop. A request that takes longer than ``timeout`` kills the worker, starts a new one and is
retried once; a second failure raises :class:`TtsTimeoutError`.

Synthesized audio comes back as 16-bit mono PCM at :data:`NATIVE_RATE` (22050 Hz);
:meth:`TtsService.render` converts it to one of the :class:`~ivr.speech.audio.AudioFormat`
files (8 kHz mu-law WAV for telephony, 8/16 kHz PCM WAV for the simulator and ASR).

As with any ``spawn``-started process, the worker re-imports the program's main module (as
``__mp_main__``): a script that uses this service needs the ``if __name__ == "__main__":``
guard, and whatever the main module imports at top level is loaded in the worker too.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import multiprocessing
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from ivr.speech.audio import AudioFormat, encode_wav
from ivr.speech.tts_worker import NATIVE_RATE, serve

__all__ = [
    "CALLER_RATE",
    "CALLER_VARIANT",
    "DEFAULT_RATE",
    "ENGINE",
    "NATIVE_RATE",
    "TtsError",
    "TtsService",
    "TtsTimeoutError",
    "UnsupportedLanguageError",
    "choose_voice",
    "default_service",
    "synthesize",
    "synthesize_sync",
]

ENGINE = "pyttsx3-espeak-ng"
# Words per minute. espeak-ng's own default (175) is a little fast over a phone line.
DEFAULT_RATE = 160
# A simulated caller must not sound like the robot: another voice variant and pace.
CALLER_VARIANT = "f3"
CALLER_RATE = 145
MIN_RATE, MAX_RATE = 80, 450
DEFAULT_TIMEOUT = 10.0
# Starting a worker (a fresh interpreter importing pyttsx3) can take seconds on a busy machine.
START_TIMEOUT = 30.0

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_VARIANT = re.compile(r"^[A-Za-z0-9_]{1,32}$")


class TtsError(RuntimeError):
    """Speech synthesis failed (engine missing, worker crashed, bad request)."""


class TtsTimeoutError(TtsError):
    """The worker did not answer in time, twice (the first time it was restarted)."""


class UnsupportedLanguageError(TtsError, ValueError):
    """No espeak-ng voice speaks the requested language."""


@dataclass(frozen=True)
class VoiceEntry:
    """One espeak-ng voice: its identifier (``gmw/en-us``) and language (``en-us``)."""

    id: str
    language: str


def choose_voice(
    language: str, voices: Sequence[VoiceEntry], overrides: Mapping[str, str] | None = None
) -> str:
    """The espeak-ng voice id for a BCP 47 language tag.

    Order: an explicit override for the tag; a voice for the full tag (``en-US`` ->
    ``gmw/en-us``); a voice for the base language (``ru-RU`` -> ``zle/ru``, ``en-AU`` ->
    ``gmw/en``). Raises :class:`UnsupportedLanguageError` naming what was tried.
    """
    if not _LANGUAGE_TAG.match(language):
        raise UnsupportedLanguageError(
            f"{language!r} is not a language tag: use a BCP 47 tag such as en-US"
        )
    tag = language.replace("_", "-").lower()
    for key, voice_id in (overrides or {}).items():
        if key.replace("_", "-").lower() == tag:
            return voice_id
    base = tag.split("-")[0]
    for candidate in dict.fromkeys((tag, base)):
        for voice in voices:
            if voice.language.lower() == candidate:
                return voice.id
        # espeak lists its base English voice as ``gmw/en`` with language ``en-gb``.
        for voice in voices:
            if voice.id.lower().rsplit("/", 1)[-1] == candidate:
                return voice.id
    raise UnsupportedLanguageError(
        f"no espeak-ng voice for language {language!r} (tried {tag!r} and {base!r}); "
        "`espeak-ng --voices` lists the installed ones"
    )


def _check_rate(rate: int) -> int:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"speaking rate {rate} is outside {MIN_RATE}..{MAX_RATE} words/minute")
    return rate


def _clean_text(text: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ValueError("nothing to say: the prompt text is empty")
    return cleaned


class TtsService:
    """One pyttsx3 worker process and the serial queue in front of it.

    Thread-safe; the async methods never block the event loop. Close it (or use it as a
    context manager) to stop the worker; the process-wide :func:`default_service` is closed
    at interpreter exit.
    """

    def __init__(
        self,
        *,
        rate: int = DEFAULT_RATE,
        timeout: float = DEFAULT_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
        voices: Mapping[str, str] | None = None,
    ) -> None:
        self.rate = _check_rate(rate)
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.voice_overrides = dict(voices or {})
        self.renders = 0  # requests that reached the worker (cache hits never do)
        self.restarts = 0  # workers killed for hanging or found dead
        self._lock = threading.RLock()
        self._queue_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._voices: tuple[VoiceEntry, ...] = ()
        self._closed = False

    # -- worker lifecycle -------------------------------------------------------------

    @property
    def worker_pid(self) -> int | None:
        """The pid of the running worker, None before the first request or after close()."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # a forked child of espeak hangs
        parent_end, child_end = context.Pipe(duplex=True)
        process = context.Process(target=serve, args=(child_end,), name="ivr-tts", daemon=True)
        process.start()
        child_end.close()
        self._process, self._connection = process, parent_end
        if not parent_end.poll(self.start_timeout):
            self._stop_worker()
            raise TtsTimeoutError(f"the speech worker did not start in {self.start_timeout} s")
        try:
            status, payload = parent_end.recv()
        except (EOFError, OSError) as exc:
            self._stop_worker()
            raise TtsError("the speech worker died while starting") from exc
        if status != "ready":
            self._stop_worker()
            raise TtsError(f"{payload} (is the espeak-ng package installed?)")
        self._voices = tuple(VoiceEntry(str(i), str(lang)) for i, lang in payload["voices"])

    def _stop_worker(self) -> None:
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            connection.close()
        if process is not None:
            process.kill()
            process.join(5)
            process.close()

    def _ensure_worker(self) -> Connection:
        if self._closed:
            raise TtsError("the speech service is closed")
        if self._connection is None or self._process is None or not self._process.is_alive():
            if self._process is not None:
                self.restarts += 1
            self._stop_worker()
            self._start()
        assert self._connection is not None
        return self._connection

    def _exchange(self, request: tuple[Any, ...], timeout: float) -> tuple[str, Any] | None:
        """Send one request; None when the worker hung or died (it is then stopped)."""
        connection = self._ensure_worker()
        try:
            connection.send(request)
            if connection.poll(timeout):
                reply: tuple[str, Any] = connection.recv()
                return reply
        except (EOFError, OSError, BrokenPipeError):
            pass
        self.restarts += 1
        self._stop_worker()
        return None

    def _request(self, request: tuple[Any, ...], what: str) -> Any:
        with self._lock:
            for _attempt in range(2):  # a hung or crashed worker is replaced and asked again
                reply = self._exchange(request, self.timeout)
                if reply is not None:
                    break
            else:
                raise TtsTimeoutError(
                    f"speech synthesis of {what} did not finish in {self.timeout} s, "
                    "twice (the worker was restarted in between)"
                )
        assert reply is not None
        status, payload = reply
        if status != "ok":
            raise TtsError(f"speech synthesis of {what} failed: {payload}")
        return payload

    def start(self) -> TtsService:
        """Start the worker now instead of on the first request (e.g. at server start-up)."""
        with self._lock:
            self._ensure_worker()
        return self

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None and self._process is not None:
                try:
                    self._connection.send(("quit",))
                    self._process.join(2)
                except (OSError, BrokenPipeError):
                    pass
            self._stop_worker()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> TtsService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- voices -------------------------------------------------------------------------

    def voices(self) -> tuple[VoiceEntry, ...]:
        """The installed espeak-ng voices (asks the worker once)."""
        if self._voices:
            # Without the lock: a cache lookup names its file by voice and must not wait
            # for a synthesis that holds the lock (seen as cache hits queued behind renders).
            return self._voices
        with self._lock:
            if not self._voices:
                self._ensure_worker()
            return self._voices

    def voice_for(self, language: str, variant: str | None = None) -> str:
        """The espeak-ng voice id for a language, with an optional variant (``+f3``)."""
        voice_id = choose_voice(language, self.voices(), self.voice_overrides)
        if variant is None:
            return voice_id
        if not _VARIANT.match(variant):
            raise ValueError(f"{variant!r} is not an espeak-ng voice variant name (e.g. f3, m3)")
        return f"{voice_id}+{variant}"

    # -- synthesis ----------------------------------------------------------------------

    def synthesize_sync(
        self, text: str, language: str, rate: int | None = None, variant: str | None = None
    ) -> bytes:
        """16-bit mono PCM at :data:`NATIVE_RATE` saying ``text`` in ``language``."""
        cleaned = _clean_text(text)
        voice_id = self.voice_for(language, variant)
        request = ("synthesize", cleaned, voice_id, _check_rate(rate or self.rate))
        with self._lock:
            self.renders += 1
            pcm: bytes = self._request(request, repr(cleaned[:60]))
        return pcm

    def render_sync(
        self,
        text: str,
        language: str,
        fmt: AudioFormat,
        rate: int | None = None,
        variant: str | None = None,
    ) -> bytes:
        """A WAV file in ``fmt`` saying ``text`` (see :class:`~ivr.speech.audio.AudioFormat`)."""
        return encode_wav(self.synthesize_sync(text, language, rate, variant), NATIVE_RATE, fmt)

    def _queue(self) -> ThreadPoolExecutor:
        # Its own lock: ``_lock`` is held for a whole synthesis, and this runs on the event
        # loop, which must not wait for a synthesis in progress to queue the next one.
        with self._queue_lock:
            if self._executor is None:
                # One thread: the asyncio callers queue here in order, off the event loop.
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-tts")
            return self._executor

    async def synthesize(
        self, text: str, language: str, rate: int | None = None, variant: str | None = None
    ) -> bytes:
        """Like :meth:`synthesize_sync`, without blocking the event loop."""
        call = functools.partial(self.synthesize_sync, text, language, rate, variant)
        return await asyncio.get_running_loop().run_in_executor(self._queue(), call)

    async def render(
        self,
        text: str,
        language: str,
        fmt: AudioFormat,
        rate: int | None = None,
        variant: str | None = None,
    ) -> bytes:
        """Like :meth:`render_sync`, without blocking the event loop."""
        call = functools.partial(self.render_sync, text, language, fmt, rate, variant)
        return await asyncio.get_running_loop().run_in_executor(self._queue(), call)

    def debug_stall(self, seconds: float, only_pid: int | None = None) -> None:
        """Make the worker sleep (only the worker ``only_pid``, when given) before answering.

        Simulates a hung engine for tests and diagnostics: with ``seconds`` above ``timeout``
        the worker is killed, restarted, and the stall is retried on the new worker.
        """
        self._request(("stall", seconds, only_pid), f"a {seconds} s stall")


_default: TtsService | None = None
_default_lock = threading.Lock()


def default_service() -> TtsService:
    """The process-wide speech service (created on first use, closed at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = TtsService()
            atexit.register(_default.close)
        return _default


async def synthesize(
    text: str, language: str, rate: int | None = None, variant: str | None = None
) -> bytes:
    """16-bit mono PCM at :data:`NATIVE_RATE` from the default service, off the event loop."""
    return await default_service().synthesize(text, language, rate, variant)


def synthesize_sync(
    text: str, language: str, rate: int | None = None, variant: str | None = None
) -> bytes:
    """16-bit mono PCM at :data:`NATIVE_RATE` from the default service (blocking)."""
    return default_service().synthesize_sync(text, language, rate, variant)
