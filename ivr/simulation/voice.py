"""The simulated caller's voice: ``say:`` and ``audio:`` turns as 8 kHz 16-bit PCM.

Shared by the two ways scenarios meet real audio, so that both hear the same caller: the
Twilio simulator's ``<Record>`` (async, on the simulator's event loop) and
``ivr simulate --audio`` (in-process and synchronous).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

from ivr.speech.audio import TELEPHONY_RATE, read_wav, resample
from ivr.speech.tts import CALLER_RATE, CALLER_VARIANT, NATIVE_RATE, TtsService

# espeak-ng's output depends on everything the same engine said before: the same sentence
# rendered four times in a row gave four different waveforms (41,256 to 41,568 samples), which
# was enough to flip a borderline "yes, I'll be there" from yes to "again" depending on test
# order. So each distinct caller utterance is rendered once per process by a fresh engine,
# and a caller says the same words the same way in every scenario, alone or after others.
_SPOKEN: dict[tuple[str, str], bytes] = {}
_SPOKEN_LOCK = threading.Lock()


class CallerVoice:
    """Turns a caller's ``say:`` and ``audio:`` turns into 8 kHz 16-bit PCM.

    Speech is synthesized by the TTS service in a caller voice (another espeak-ng variant and
    pace than the robot's), so that recognition tests are not tuned to the robot's own voice,
    and brought down to the telephone rate a phone line would carry. Audio files are looked
    up as given, then by name in ``audio_dirs`` (e.g. the FSDD folder).
    """

    def __init__(self, audio_dirs: Sequence[Path]) -> None:
        self.audio_dirs = list(audio_dirs)

    def speak_sync(self, text: str, language: str) -> bytes:
        """Blocking: never call it on an event loop (see :meth:`speak`)."""
        key = (text, language)
        with _SPOKEN_LOCK:
            pcm = _SPOKEN.get(key)
            if pcm is None:
                with TtsService() as fresh:
                    native = fresh.synthesize_sync(text, language, CALLER_RATE, CALLER_VARIANT)
                pcm = _SPOKEN[key] = resample(native, NATIVE_RATE, TELEPHONY_RATE)
        return pcm

    async def speak(self, text: str, language: str) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(
            None, self.speak_sync, text, language
        )

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
