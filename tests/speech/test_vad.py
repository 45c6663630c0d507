"""The voice activity detectors on real speech (FSDD), silence and noise, 20 ms frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ivr.speech.audio import read_wav
from ivr.speech.vad import (
    DEFAULT_DETECTOR,
    FRAME_BYTES,
    EnergyVad,
    SileroVad,
    VoiceActivityDetector,
    WebRtcVad,
    frame_dbfs,
    make_vad,
    warm_up,
)

ROOT = Path(__file__).resolve().parents[2]
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
KINDS = {"webrtc": WebRtcVad, "silero": SileroVad, "energy": EnergyVad}


def frames(pcm16: bytes) -> list[bytes]:
    return [pcm16[i : i + FRAME_BYTES] for i in range(0, len(pcm16) - FRAME_BYTES + 1, FRAME_BYTES)]


def noise(seconds: float, dbfs: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, 32768 * 10 ** (dbfs / 20), int(seconds * 8000))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_speech_is_voiced_and_silence_is_not(kind: str) -> None:
    speech, _ = read_wav(FSDD / "7_jackson_3.wav")
    vad: VoiceActivityDetector = KINDS[kind]()
    quiet = [vad.is_speech(f) for f in frames(noise(0.5, -65, 1))]
    voiced = [vad.is_speech(f) for f in frames(speech)]
    after = [vad.is_speech(f) for f in frames(noise(1.0, -65, 2))]
    assert not any(quiet[10:])  # WebRTC voices the first frames of a stream as it settles
    assert sum(voiced) >= 0.6 * len(voiced)  # a 430 ms "seven"
    assert sum(after[10:]) == 0  # silence again once the word is over (Silero lags a window)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_steady_noise_is_not_speech(kind: str) -> None:
    vad = KINDS[kind]()
    decisions = [vad.is_speech(f) for f in frames(noise(3.0, -35, 3))]
    assert sum(decisions[25:]) <= 2  # after at most half a second of settling


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_frames_must_be_20_ms(kind: str) -> None:
    vad = KINDS[kind]()
    for size in (0, 319, 321, 640):
        with pytest.raises(ValueError, match="320 bytes"):
            vad.is_speech(bytes(size))


def test_choice_by_name_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVR_VAD", raising=False)
    assert DEFAULT_DETECTOR == "silero"  # its model is installed here (make setup)
    assert isinstance(make_vad(), SileroVad)
    monkeypatch.setenv("IVR_VAD", "Energy")
    assert isinstance(make_vad(), EnergyVad)
    assert isinstance(make_vad("silero"), SileroVad)
    monkeypatch.setenv("IVR_VAD", "loudness")
    with pytest.raises(ValueError, match="unknown voice activity detector 'loudness'"):
        make_vad()
    with pytest.raises(ValueError, match="aggressiveness"):
        WebRtcVad(4)
    with pytest.raises(ValueError, match="threshold"):
        SileroVad(1.5)


def test_frame_level() -> None:
    assert frame_dbfs(bytes(FRAME_BYTES)) == -100.0
    full = np.full(160, 32767, dtype="<i2").tobytes()
    assert frame_dbfs(full) == pytest.approx(0.0, abs=0.01)
    assert frame_dbfs(noise(0.02, -30)) == pytest.approx(-30, abs=1.5)


async def test_warm_up_names_the_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVR_VAD", raising=False)
    assert await warm_up() == "silero:0.5"
    assert await warm_up("webrtc") == "webrtc:2"
