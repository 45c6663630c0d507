"""Offline recognition of a caller's recording, as the call service needs it.

The grammar comes from the state's ``listen`` spec; decoding runs in the engine's pool (threads
for Vosk, processes for PocketSphinx), never on the event loop. An engine is chosen once per
language (a Vosk model if one is found, else PocketSphinx for English, else none: keypad only).
"""

from __future__ import annotations

from ivr.dialplan.vocabulary import Listen, NoInput, SpeechRecognized
from ivr.speech.asr import AsrConfig, Grammar, Recognizer, recognize_async, recognizer_for
from ivr.speech.audio import read_wav, rms

# Shorter than this, or quieter than this, is not an answer (a click, line noise).
MIN_SECONDS = 0.1
MIN_RMS = 30.0


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
        engine = self.engine(listen.language)
        if engine is None:
            return NoInput()
        pcm, rate = read_wav(wav, name="recording")
        if len(pcm) < MIN_SECONDS * rate * 2 or rms(pcm) < MIN_RMS:
            return NoInput()
        grammar = Grammar.from_listen(listen.spec, listen.language)
        result = await recognize_async(engine, pcm, rate, grammar)
        if not result.words:
            return NoInput()
        return result.as_event()
