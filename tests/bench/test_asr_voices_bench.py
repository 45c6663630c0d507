"""bench/asr_voices.py: the telephone band and the noise it adds are what its tables claim."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import ROOT


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asr_voices", ROOT / "bench" / "asr_voices.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["asr_voices"] = module
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


def test_more_than_twenty_voice_rate_combinations_within_120_to_220_wpm() -> None:
    voices = BENCH.voices("en-us", quick=False)
    assert len({v.label for v in voices}) >= 20
    assert {v.rate for v in voices} >= {120, 220}
    assert all(120 <= v.rate <= 220 for v in voices)


def test_telephone_band_removes_what_a_phone_line_does_not_carry() -> None:
    t = np.arange(8000) / 8000
    tones = np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 1000 * t)
    kept = BENCH.telephone_band(tones)
    assert np.allclose(kept, np.sin(2 * np.pi * 1000 * t), atol=1e-6)


@pytest.mark.parametrize("snr", [10.0, 20.0])
def test_noise_sits_at_the_stated_snr_against_the_speech_level(snr: float) -> None:
    t = np.arange(16000) / 8000
    speech = 3000 * np.sin(2 * np.pi * 440 * t)
    speech[:4000] = 0  # a pause before speaking does not lower the speech level
    noisy = np.frombuffer(BENCH.with_noise(speech, snr, seed=1), dtype=np.int16).astype(float)
    noise = noisy - np.round(speech)
    measured = 10 * np.log10(BENCH.speech_level(speech) / (noise**2).mean())
    assert measured == pytest.approx(snr, abs=0.2)
    assert BENCH.with_noise(speech, None, seed=1) == np.round(speech).astype(np.int16).tobytes()


def test_tally_counts_verdicts() -> None:
    tally = BENCH.Tally(Counter())
    for verdict in ["right", "right", "wrong", "rejected"]:
        tally.add(verdict)
    assert (tally.total, tally.share("right")) == (4, 50.0)
    assert tally.cells() == "2 (50%) | 1 (25%) | 1 (25%)"
