"""The speech-synthesis worker process: pyttsx3 (espeak-ng) behind a pipe.

It runs in its own process (started with the ``spawn`` context by :mod:`ivr.speech.tts`)
because pyttsx3 is not thread-safe, its run loop can hang, and a ``fork()``ed child of a
process that used espeak hangs. It imports nothing heavy (no numpy) so that it stays small.

Protocol, one request at a time over a ``multiprocessing`` connection:

- on start the worker sends ``("ready", {"pid": int, "voices": [[id, language], ...]})`` or
  ``("error", message)`` when espeak-ng cannot be initialised;
- ``("synthesize", text, voice_id, rate)`` -> ``("ok", pcm16_bytes)`` at :data:`NATIVE_RATE`;
- ``("stall", seconds, only_pid)`` -> sleeps (when ``only_pid`` is None or its own pid),
  then ``("ok", b"")``: lets tests and diagnostics simulate a hung engine;
- ``("quit",)`` ends the process; so does the parent closing its end of the pipe.

A request that fails answers ``("error", message)``; the worker carries on.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import wave
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# pyttsx3's espeak driver always writes 16-bit mono WAV at this rate, whatever is asked.
NATIVE_RATE = 22050
# Renders of one utterance before giving up on empty audio, and how long to wait for espeak-ng
# to finish a previous one first.
ATTEMPTS = 3
IDLE_WAIT = 2.0


def _silence_output() -> None:
    """Send the worker's stdout and stderr to /dev/null at the descriptor level.

    pyttsx3 prints "Audio saved to ..." after every file and espeak-ng writes warnings from C;
    none of that may reach the server's output. Failures are reported over the pipe instead.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    for descriptor in (1, 2):
        os.dup2(devnull, descriptor)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    sys.stderr = sys.stdout


def _read_wav_frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, NATIVE_RATE):
            raise RuntimeError(
                f"pyttsx3 wrote {wav.getnchannels()} channel(s), {wav.getsampwidth() * 8}-bit, "
                f"{wav.getframerate()} Hz; expected mono 16-bit {NATIVE_RATE} Hz"
            )
        return wav.readframes(wav.getnframes())


class _Synthesizer:
    def __init__(self) -> None:
        import pyttsx3  # imported here so that a missing espeak-ng is reported, not raised
        from pyttsx3.drivers import _espeak

        self._engine = pyttsx3.init("espeak")
        self._espeak = _espeak
        self._workdir = Path(tempfile.mkdtemp(prefix="ivr-tts-"))
        self._counter = 0
        self.empty_renders = 0
        # pyttsx3 queues property changes until the first runAndWait() has finished and
        # applies them immediately afterwards; one throw-away utterance gets it to that state
        # (and proves that espeak-ng works before the worker reports ready).
        self._say_to_file(".")

    def voices(self) -> list[list[str]]:
        return [
            [str(voice.id), str(voice.languages[0]) if voice.languages else ""]
            for voice in self._engine.getProperty("voices")
        ]

    def _say_to_file(self, text: str) -> bytes:
        """The utterance's frames, rendered again when one comes out empty or unwritten.

        pyttsx3's runAndWait() begins by stopping whatever espeak-ng still reports as playing;
        on a busy machine the previous utterance can still be finishing, and the stop then
        cancels the new one, which ends with no audio (seen in CI: an empty cached prompt). So
        every attempt starts on an idle engine, and an empty result is never returned.
        """
        for _attempt in range(ATTEMPTS):
            self._wait_until_idle()
            frames = self._render_once(text)
            if frames:
                return frames
            self.empty_renders += 1
        raise RuntimeError(f"espeak-ng produced no audio for {text[:60]!r}, {ATTEMPTS} times")

    def _wait_until_idle(self) -> None:
        self._espeak.Synchronize()
        deadline = time.monotonic() + IDLE_WAIT
        while self._espeak.IsPlaying() and time.monotonic() < deadline:
            time.sleep(0.005)

    def _render_once(self, text: str) -> bytes:
        self._counter += 1
        path = self._workdir / f"utterance-{self._counter}.wav"
        # One utterance per runAndWait(): queueing two save_to_file calls keeps only the last.
        self._engine.save_to_file(text, str(path))
        try:
            self._engine.runAndWait()
            return _read_wav_frames(path)
        except FileNotFoundError:
            return b""  # cancelled before pyttsx3 wrote the file: the same failure as empty
        finally:
            path.unlink(missing_ok=True)

    def synthesize(self, text: str, voice_id: str, rate: int) -> bytes:
        # Both every time: selecting a voice resets espeak-ng's rate to the voice's default.
        self._engine.setProperty("voice", voice_id)
        self._engine.setProperty("rate", rate)
        # espeak-ng applies a rate change asynchronously, through the same command queue as
        # speech, and runAndWait() starts by cancelling whatever is still queued there; so
        # wait for the queue to drain, or the rate change is silently lost.
        self._espeak.Synchronize()
        # espeak-ng silently falls back to a default for an unknown voice or variant.
        actual = str(self._engine.getProperty("voice"))
        if actual.lower() != voice_id.lower():
            raise ValueError(f"espeak-ng has no voice {voice_id!r} (it chose {actual!r})")
        return self._say_to_file(text)

    def close(self) -> None:
        for leftover in self._workdir.iterdir():
            leftover.unlink(missing_ok=True)
        self._workdir.rmdir()


def _handle(synthesizer: _Synthesizer, request: tuple[Any, ...]) -> tuple[str, Any]:
    operation = request[0]
    if operation == "synthesize":
        _, text, voice_id, rate = request
        return "ok", synthesizer.synthesize(text, voice_id, rate)
    if operation == "stall":
        _, seconds, only_pid = request
        if only_pid is None or only_pid == os.getpid():
            time.sleep(seconds)
        return "ok", b""
    raise ValueError(f"unknown request {operation!r}")


def serve(connection: Connection) -> None:
    """Entry point of the worker process: answer requests until told to quit."""
    _silence_output()
    try:
        synthesizer = _Synthesizer()
        connection.send(("ready", {"pid": os.getpid(), "voices": synthesizer.voices()}))
    except Exception as exc:  # report why the engine is unusable instead of dying silently
        connection.send(("error", f"cannot start espeak-ng via pyttsx3: {exc}"))
        return
    try:
        while True:
            try:
                request = connection.recv()
            except (EOFError, OSError):
                return  # the parent is gone
            if request[0] == "quit":
                return
            try:
                reply = _handle(synthesizer, request)
            except Exception as exc:  # one bad request must not take the worker down
                reply = ("error", f"{type(exc).__name__}: {exc}")
            connection.send(reply)
    finally:
        synthesizer.close()
