"""The prompt cache and ``ivr prompts``: real synthesis, real files, real processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ivr.cli.prompts import prompts
from ivr.dialplan.loader import load_plan_text
from ivr.speech.audio import (
    AudioFormat,
    inspect_wav,
    read_mulaw_wav,
    read_wav,
    rms,
    write_wav,
)
from ivr.speech.prompts import PromptCache, static_prompts
from ivr.speech.tts import TtsService

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

PLAN = """
id: tiny_reminder
direction: outbound
language: en-US
variables: {name: str}
voicemail: Please call the clinic back.
start: greet
states:
  greet:
    say: "Hello {{ name }}."
    next: ask
  ask:
    say: Say yes or no.
    listen:
      intents:
        yes: {say: [yes], press: "1"}
        no: {say: [no], press: "2"}
      no_input: Sorry, I did not hear you.
      no_match: "{% if true %}Sorry, say   yes or no.{% endif %}"
    on: {yes: bye, no: bye, failed: bye}
  bye:
    say: Goodbye.
    sms: "Bye {{ name }}"
    hangup: true
"""


@pytest.fixture(scope="module")
def service() -> Iterator[TtsService]:
    with TtsService() as tts:
        yield tts


@pytest.fixture
def cache(tmp_path: Path, service: TtsService) -> PromptCache:
    return PromptCache(tmp_path / "cache", service)


def test_a_miss_renders_once_and_a_hit_never_calls_the_worker(
    cache: PromptCache, service: TtsService
) -> None:
    before = service.renders
    first = cache.prompt_audio("Your appointment is confirmed.", "en-US")
    assert service.renders == before + 1
    again = [cache.prompt_audio("Your  appointment is\nconfirmed.", "en-US") for _ in range(5)]
    assert service.renders == before + 1  # same final text after whitespace: cached
    assert set(again) == {first}
    assert (cache.hits, cache.misses) == (5, 1)
    audio = read_mulaw_wav(first.read_bytes())
    assert rms(audio) > 300
    assert first.is_relative_to(cache.directory)
    assert first.suffix == ".wav"


def test_the_key_covers_voice_rate_text_and_format(cache: PromptCache) -> None:
    base = cache.key("Hello.", "en-US", AudioFormat.MULAW)
    variants = {
        cache.key("Hello!", "en-US", AudioFormat.MULAW),
        cache.key("Hello.", "en-GB", AudioFormat.MULAW),
        cache.key("Hello.", "en-US", AudioFormat.PCM8K),
        cache.key("Hello.", "en-US", AudioFormat.MULAW, rate=120),
        cache.key("Hello.", "en-US", AudioFormat.MULAW, variant="f3"),
    }
    assert base not in variants
    assert len(variants) == 5
    assert cache.key(" Hello. ", "en-US", AudioFormat.MULAW) == base
    # en-US and en-us pick the same voice, so they share the file.
    assert cache.key("Hello.", "en-us", AudioFormat.MULAW) == base


def test_each_format_is_cached_in_that_format(cache: PromptCache) -> None:
    for fmt in AudioFormat:
        path = cache.prompt_audio("Press two.", "en-US", fmt)
        assert fmt.matches(inspect_wav(path))
    assert cache.misses == len(AudioFormat)


def test_static_prompts_are_the_spoken_texts_without_variables() -> None:
    plan = load_plan_text(PLAN)
    assert list(static_prompts(plan)) == [
        "Please call the clinic back.",
        "Say yes or no.",
        "Sorry, I did not hear you.",
        "Sorry, say yes or no.",  # rendered: template syntax, but no variables
        "Goodbye.",
    ]


def test_build_static_prompts_renders_once_then_finds_them_cached(
    cache: PromptCache, service: TtsService
) -> None:
    plan = load_plan_text(PLAN)
    before = service.renders
    first = cache.build_static_prompts(plan)
    assert (first.rendered, first.cached) == (5, 0)
    second = cache.build_static_prompts(plan, (AudioFormat.MULAW, AudioFormat.PCM16K))
    assert (second.rendered, second.cached) == (5, 5)
    assert service.renders == before + 10
    assert len(list(cache.directory.rglob("*.wav"))) == 10
    # The dynamic greeting is rendered on first use, by its final text.
    dynamic = cache.prompt_audio("Hello Ann.", "en-US")
    assert cache.prompt_audio("Hello Ann.", "en-US") == dynamic
    assert service.renders == before + 11


def test_concurrent_processes_share_the_cache_safely(tmp_path: Path) -> None:
    directory = tmp_path / "shared-cache"
    start_at = time.time() + 2.5  # both processes start rendering at the same moment
    script = textwrap.dedent(
        f"""
        import time
        from ivr.speech.prompts import PromptCache
        from ivr.speech.tts import TtsService
        if __name__ == "__main__":
            with TtsService() as tts:
                cache = PromptCache({str(directory)!r}, tts)
                tts.voices()  # start the worker before the race
                time.sleep(max(0.0, {start_at} - time.time()))
                for n in range(12):
                    cache.prompt_audio(f"Prompt number {{n}} for everyone.", "en-US")
                print(cache.misses)
        """
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    files = sorted(directory.rglob("*"))
    wavs = [f for f in files if f.is_file()]
    assert len(wavs) == 12  # one file per prompt, however many processes rendered it
    assert not [f for f in wavs if f.name.endswith(".tmp")]  # no temp file left behind
    for wav in wavs:
        assert rms(read_mulaw_wav(wav.read_bytes())) > 300
    # Both raced: together they rendered at least every prompt once.
    assert sum(int(out.strip()) for out in outputs) >= 12


def test_a_recording_in_the_wrong_format_is_converted_once(
    cache: PromptCache, tmp_path: Path
) -> None:
    t = np.arange(44100) / 44100
    source = tmp_path / "welcome.wav"
    write_wav(source, (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes(), 44100)
    converted = cache.prepare_recording(source)
    assert converted != source
    assert converted.is_relative_to(cache.directory)
    assert AudioFormat.MULAW.matches(inspect_wav(converted))
    assert inspect_wav(converted).duration == pytest.approx(1.0, abs=0.001)
    stamp = converted.stat().st_mtime_ns
    assert cache.prepare_recording(source) == converted
    assert converted.stat().st_mtime_ns == stamp  # not converted again
    assert (cache.hits, cache.misses) == (1, 1)
    # A file already in the wanted format is used as it is.
    _pcm, rate = read_wav(converted)
    assert rate == 8000
    assert cache.prepare_recording(converted) == converted
    pcm8k = cache.prepare_recording(source, AudioFormat.PCM8K)
    assert AudioFormat.PCM8K.matches(inspect_wav(pcm8k))


def test_a_corrupt_recording_is_a_clear_error(cache: PromptCache, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match=r"broken\.wav: not a WAV file"):
        cache.prepare_recording(broken)


def test_cli_build_reports_rendered_then_cached(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "tiny.yaml").write_text(PLAN)
    env = {"IVR_DIALPLANS": str(plans), "IVR_PROMPT_CACHE": str(tmp_path / "cache")}
    runner = CliRunner()
    first = runner.invoke(prompts, ["build"], env=env)
    assert first.exit_code == 0, first.output
    assert "tiny_reminder: 5 rendered, 0 already cached (en-US)" in first.output
    second = runner.invoke(prompts, ["build", "tiny_reminder", "--format", "mulaw"], env=env)
    assert "total: 0 rendered, 5 already cached" in second.output
    assert len(list((tmp_path / "cache").rglob("*.wav"))) == 5


def test_cli_say_writes_the_requested_format(tmp_path: Path) -> None:
    target = tmp_path / "hello.wav"
    result = CliRunner().invoke(
        prompts, ["say", "Привет", "--language", "ru-RU", "-o", str(target), "--format", "pcm16k"]
    )
    assert result.exit_code == 0, result.output
    audio, rate = read_wav(target)
    assert rate == 16000
    assert rms(audio) > 300


def test_cli_say_with_an_unknown_language_fails_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(prompts, ["say", "hi", "-l", "tlh-QO", "-o", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "Error: no espeak-ng voice for language 'tlh-QO'" in result.output
    assert not (tmp_path / "x").exists()


async def test_a_prompt_used_before_is_a_hit_and_a_lost_file_is_rendered_again(
    cache: PromptCache,
) -> None:
    first = await cache.prompt_audio_async("Your order is on its way.", "en-US")
    assert await cache.prompt_audio_async("Your order is on its way.", "en-US") == first
    assert (cache.hits, cache.misses) == (1, 1)
    first.unlink()  # audio/cache/ may be deleted at any time (README)
    again = await cache.prompt_audio_async("Your order is on its way.", "en-US")
    assert again == first
    assert again.is_file()
    assert (cache.hits, cache.misses) == (1, 2)


async def test_callers_asking_for_one_prompt_at_once_render_it_once(
    cache: PromptCache, service: TtsService
) -> None:
    renders = service.renders
    paths = await asyncio.gather(
        *(cache.prompt_audio_async("Thank you for holding, caller.", "en-US") for _ in range(8))
    )
    assert len(set(paths)) == 1
    assert paths[0].is_file()
    assert service.renders == renders + 1
    assert (cache.hits, cache.misses) == (7, 1)
