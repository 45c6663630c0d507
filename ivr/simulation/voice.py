"""The simulated caller's voice: ``say:`` and ``audio:`` turns as 8 kHz 16-bit PCM.

Shared by the two ways scenarios meet real audio, so that both hear the same caller: the
Twilio simulator's ``<Record>`` (async, on the simulator's event loop) and
``ivr simulate --audio`` (in-process and synchronous).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ivr.speech.audio import TELEPHONY_RATE, read_wav, resample
from ivr.speech.tts import CALLER_RATE, CALLER_VARIANT, NATIVE_RATE, TtsService, default_service


class CallerVoice:
    """Turns a caller's ``say:`` and ``audio:`` turns into 8 kHz 16-bit PCM.

    Speech is synthesized by the TTS service in a caller voice (another espeak-ng variant and
    pace than the robot's), so that recognition tests are not tuned to the robot's own voice,
    and brought down to the telephone rate a phone line would carry. Audio files are looked
    up as given, then by name in ``audio_dirs`` (e.g. the FSDD folder).
    """

    def __init__(self, tts: TtsService | None, audio_dirs: Sequence[Path]) -> None:
        self._tts = tts
        self.audio_dirs = list(audio_dirs)

    @property
    def tts(self) -> TtsService:
        return self._tts or default_service()

    def speak_sync(self, text: str, language: str) -> bytes:
        """Blocking: never call it on an event loop (see :meth:`speak`)."""
        pcm = self.tts.synthesize_sync(text, language, CALLER_RATE, CALLER_VARIANT)
        return resample(pcm, NATIVE_RATE, TELEPHONY_RATE)

    async def speak(self, text: str, language: str) -> bytes:
        pcm = await self.tts.synthesize(text, language, CALLER_RATE, CALLER_VARIANT)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, resample, pcm, NATIVE_RATE, TELEPHONY_RATE)

    def find(self, name: str) -> Path:
        path = Path(name)
        if path.is_file():
            return path
        for directory in self.audio_dirs:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(d) for d in self.audio_dirs) or "no folders"
        raise FileNotFoundError(f"caller audio {name!r} not found (searched {searched})")

    def load_sync(self, name: str) -> bytes:
        """Blocking: FileNotFoundError, or ValueError for a file that is no readable WAV."""
        return read_telephone_audio(self.find(name))

    async def load(self, name: str) -> bytes:
        path = self.find(name)
        return await asyncio.get_running_loop().run_in_executor(None, read_telephone_audio, path)


def read_telephone_audio(path: Path) -> bytes:
    pcm, rate = read_wav(path)
    return resample(pcm, rate, TELEPHONY_RATE)
