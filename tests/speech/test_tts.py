"""The speech worker: real espeak-ng through pyttsx3 in a real spawned process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import numpy as np
import pytest

from ivr.speech.audio import AudioFormat, duration_seconds, inspect_wav, read_wav, rms
from ivr.speech.tts import (
    CALLER_RATE,
    CALLER_VARIANT,
    DEFAULT_TIMEOUT,
    NATIVE_RATE,
    TtsError,
    TtsService,
    TtsTimeoutError,
    UnsupportedLanguageError,
    VoiceEntry,
    choose_voice,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service() -> Iterator[TtsService]:
    with TtsService() as tts:
        yield tts


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_prompt_has_speech_energy_and_a_plausible_duration(service: TtsService) -> None:
    audio = service.synthesize_sync("Your appointment is on Tuesday at ten.", "en-US")
    seconds = duration_seconds(audio, NATIVE_RATE)
    assert 1.2 < seconds < 4.0  # seven words at 160 words per minute
    assert rms(audio) > 500  # speech, not silence
    # Speech has pauses: the quietest 50 ms stretch is far below the loudest one.
    frames = np.frombuffer(audio, dtype="<i2").astype(float)
    windows = frames[: len(frames) // 1102 * 1102].reshape(-1, 1102)
    energy = np.sqrt((windows**2).mean(axis=1))
    assert energy.min() < 0.1 * energy.max()


def test_different_texts_give_different_audio(service: TtsService) -> None:
    yes = service.synthesize_sync("yes", "en-US")
    sentence = service.synthesize_sync("Please call us back tomorrow morning.", "en-US")
    assert yes != sentence
    assert duration_seconds(sentence, NATIVE_RATE) > 2 * duration_seconds(yes, NATIVE_RATE)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("ru-RU", "Здравствуйте, ваша запись подтверждена."),
        ("ko-KR", "안녕하세요. 예약이 확인되었습니다."),
    ],
)
def test_russian_and_korean_prompts_are_spoken(
    service: TtsService, language: str, text: str
) -> None:
    audio = service.synthesize_sync(text, language)
    assert duration_seconds(audio, NATIVE_RATE) > 1.0
    assert rms(audio) > 500


def test_plan_languages_map_to_espeak_voices(service: TtsService) -> None:
    assert service.voice_for("en-US") == "gmw/en-us"
    assert service.voice_for("ru-RU") == "zle/ru"
    assert service.voice_for("ko-KR") == "ko"
    assert service.voice_for("en-AU") == "gmw/en"  # no Australian voice: base English
    assert service.voice_for("en-US", CALLER_VARIANT) == f"gmw/en-us+{CALLER_VARIANT}"


def test_choose_voice_prefers_overrides_then_the_full_tag_then_the_base() -> None:
    voices = [VoiceEntry("gmw/en", "en-gb"), VoiceEntry("gmw/en-us", "en-us")]
    assert choose_voice("en-US", voices) == "gmw/en-us"
    assert choose_voice("en_GB", voices) == "gmw/en"
    assert choose_voice("en-NZ", voices) == "gmw/en"
    assert choose_voice("en-US", voices, {"en-us": "gmw/en-us-nyc"}) == "gmw/en-us-nyc"


@pytest.mark.parametrize(
    ("language", "message"),
    [("tlh-QO", r"no espeak-ng voice for language 'tlh-QO' \(tried 'tlh-qo' and 'tlh'\)"),
     ("english please", "not a language tag")],
)  # fmt: skip
def test_an_unknown_language_is_a_clear_error(
    service: TtsService, language: str, message: str
) -> None:
    with pytest.raises(UnsupportedLanguageError, match=message):
        service.synthesize_sync("hello", language)


def test_bad_requests_are_errors_and_the_worker_carries_on(service: TtsService) -> None:
    with pytest.raises(ValueError, match="empty"):
        service.synthesize_sync("  \n ", "en-US")
    with pytest.raises(ValueError, match=r"outside 80\.\.450"):
        service.synthesize_sync("hello", "en-US", rate=5)
    pid = service.worker_pid
    with pytest.raises(TtsError, match="has no voice 'gmw/en-us\\+nosuchvariant'"):
        service.synthesize_sync("hello", "en-US", variant="nosuchvariant")
    assert service.worker_pid == pid  # an error reply, not a crash
    assert rms(service.synthesize_sync("hello", "en-US")) > 500


def median_pitch(audio: bytes) -> float:
    """Median fundamental frequency (Hz) of the voiced 46 ms frames, by autocorrelation."""
    samples = np.frombuffer(audio, dtype="<i2").astype(float)
    size, shortest, longest = 1024, NATIVE_RATE // 400, NATIVE_RATE // 60
    pitches = []
    for start in range(0, len(samples) - size, size):
        frame = samples[start : start + size]
        if np.sqrt(np.mean(frame**2)) < 1000:
            continue  # silence or a consonant: no pitch
        correlation = np.correlate(frame, frame, "full")[size - 1 :]
        pitches.append(NATIVE_RATE / (shortest + np.argmax(correlation[shortest:longest])))
    return float(np.median(pitches))


def test_the_caller_voice_sounds_different_from_the_robot(service: TtsService) -> None:
    text = "Yes, I confirm the appointment."
    robot = service.synthesize_sync(text, "en-US")
    caller = service.synthesize_sync(text, "en-US", rate=CALLER_RATE, variant=CALLER_VARIANT)
    # The caller variant is a higher voice ...
    assert median_pitch(caller) > 1.5 * median_pitch(robot)
    # ... and speaks more slowly (CALLER_RATE < DEFAULT_RATE words per minute).
    assert duration_seconds(caller, NATIVE_RATE) > 1.05 * duration_seconds(robot, NATIVE_RATE)


def test_the_rate_applies_to_every_request_whatever_came_before(service: TtsService) -> None:
    text = "Please hold the line."
    durations = [
        duration_seconds(service.synthesize_sync(text, "en-US", rate, variant), NATIVE_RATE)
        for rate, variant in [(100, None), (200, None), (100, "m3"), (100, None), (200, "m3")]
    ]
    slow, fast = durations[0], durations[1]
    assert slow > 1.5 * fast
    # Switching the voice must not reset the rate to the voice's default, nor keep the last.
    assert durations[2] == pytest.approx(slow, rel=0.1)
    assert durations[3] == pytest.approx(slow, rel=0.05)
    assert durations[4] == pytest.approx(fast, rel=0.1)


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_render_produces_each_output_format(service: TtsService, fmt: AudioFormat) -> None:
    data = service.render_sync("Press one to confirm.", "en-US", fmt)
    assert fmt.matches(inspect_wav(data))
    audio, rate = read_wav(data)
    assert rate == fmt.sample_rate
    assert 0.8 < duration_seconds(audio, rate) < 3.0
    assert rms(audio) > 300


def test_worker_chatter_does_not_reach_our_output(capfd: pytest.CaptureFixture[str]) -> None:
    # A fresh worker inherits the descriptors capfd watches; pyttsx3 prints "Audio saved to".
    with TtsService() as tts:
        tts.synthesize_sync("Nothing to see here.", "en-US")
        tts.synthesize_sync("Still nothing.", "ru-RU")
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


async def test_synthesis_does_not_block_the_event_loop(service: TtsService) -> None:
    # The worker is busy with a 3 s stall queued first, so the synthesis cannot finish before
    # it; had the synthesis run on the loop, the loop would be stuck in it until then, and the
    # other coroutine below could not have run to completion while it was pending.
    loop = asyncio.get_running_loop()
    stall = loop.run_in_executor(service._queue(), service.debug_stall, 3.0)
    synthesis = asyncio.ensure_future(service.synthesize("Not on the loop.", "en-US"))
    other_work = 0
    for _ in range(10):
        await asyncio.sleep(0.001)
        other_work += 1
    assert other_work == 10
    assert not synthesis.done()
    await stall
    assert rms(await synthesis) > 500


async def test_async_render_returns_a_telephony_file(service: TtsService) -> None:
    data = await service.render("Goodbye.", "en-US", AudioFormat.MULAW)
    assert AudioFormat.MULAW.matches(inspect_wav(data))


def test_a_hung_worker_is_killed_restarted_and_the_request_retried() -> None:
    with TtsService(timeout=0.5) as tts:
        first = tts.start().worker_pid
        assert first is not None
        tts.debug_stall(60, only_pid=first)  # hangs in the first worker only
        assert tts.restarts == 1  # killed after 0.5 s: it returned, on the second worker
        assert tts.worker_pid not in (None, first)
        assert not pid_exists(first)
        tts.timeout = DEFAULT_TIMEOUT  # a real synthesis on a loaded machine may take 0.5 s
        assert rms(tts.synthesize_sync("I am back.", "en-US")) > 500


def test_a_request_that_hangs_twice_is_a_timeout_error() -> None:
    with TtsService(timeout=0.5) as tts:
        tts.start()
        with pytest.raises(TtsTimeoutError, match=r"did not finish in 0\.5 s, twice"):
            tts.debug_stall(60)
        assert tts.restarts == 2
        tts.timeout = DEFAULT_TIMEOUT
        assert rms(tts.synthesize_sync("Still working.", "en-US")) > 500


def test_a_crashed_worker_is_replaced_on_the_next_request() -> None:
    with TtsService() as tts:
        first = tts.start().worker_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert rms(tts.synthesize_sync("Back again.", "en-US")) > 500
        assert tts.worker_pid not in (None, first)
        assert tts.restarts == 1


def test_closing_the_service_stops_the_worker() -> None:
    tts = TtsService().start()
    pid = tts.worker_pid
    assert pid is not None
    assert pid_exists(pid)
    tts.close()
    assert tts.worker_pid is None
    assert not pid_exists(pid)
    with pytest.raises(TtsError, match="closed"):
        tts.synthesize_sync("hello", "en-US")
