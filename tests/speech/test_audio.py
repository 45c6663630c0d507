"""Audio conversion: real bytes, real WAV files, checked with an FFT and by parsing headers."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.speech.audio import (
    AudioFormat,
    duration_seconds,
    encode_wav,
    inspect_wav,
    mulaw_to_pcm16,
    mulaw_wav,
    pcm16_to_mulaw,
    read_mulaw_wav,
    read_wav,
    resample,
    rms,
    write_wav,
)


def sine(freq: float, rate: int, seconds: float, amplitude: float = 12000.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def samples_of(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def peak_frequency(data: bytes, rate: int) -> float:
    x = samples_of(data)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def riff(fmt_tag: int, channels: int, rate: int, bits: int, body: bytes) -> bytes:
    """A minimal WAV file of any encoding, for formats the ``wave`` module cannot write."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
    chunks += struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_mulaw_round_trip_stays_within_the_g711_error_bound() -> None:
    every_value = np.arange(-32768, 32768)
    encoded = pcm16_to_mulaw(every_value.astype("<i2").tobytes())
    assert len(encoded) == len(every_value)  # one byte per sample
    decoded = samples_of(mulaw_to_pcm16(encoded))
    error = np.abs(decoded - every_value)
    # mu-law keeps about 3% relative precision, with a coarser floor near silence.
    assert np.all(error <= 0.032 * (np.abs(every_value) + 256))
    assert error.max() > 0  # it is lossy: this really went through the codec


def test_mulaw_wav_has_a_valid_format_7_header() -> None:
    body = pcm(sine(440, 8000, 0.5))[:-2]  # an odd number of samples needs a pad byte
    samples = len(body) // 2
    data = mulaw_wav(body)
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert data[12:16] == b"fmt "
    assert struct.unpack_from("<I", data, 16)[0] == 18
    tag, channels, rate, byte_rate, block, bits, extra = struct.unpack_from("<HHIIHHH", data, 20)
    assert (tag, channels, rate, byte_rate, block, bits, extra) == (7, 1, 8000, 8000, 1, 8, 0)
    assert data[38:42] == b"fact"
    assert struct.unpack_from("<II", data, 42) == (4, samples)
    assert data[50:54] == b"data"
    assert struct.unpack_from("<I", data, 54)[0] == samples
    assert data[58:-1] == pcm16_to_mulaw(body)
    assert len(data) == 58 + samples + 1
    assert data[-1] == 0
    assert inspect_wav(data).frames == samples


def test_mulaw_wav_parses_back_to_the_same_audio() -> None:
    original = pcm(sine(700, 8000, 0.25))
    decoded = read_mulaw_wav(mulaw_wav(original))
    assert len(decoded) == len(original)
    assert decoded == mulaw_to_pcm16(pcm16_to_mulaw(original))
    assert read_wav(mulaw_wav(original)) == (decoded, 8000)


def test_read_mulaw_wav_refuses_a_pcm_file() -> None:
    with pytest.raises(ValueError, match="format tag 1"):
        read_mulaw_wav(write_wav(None, pcm(sine(440, 8000, 0.1)), 8000))


@pytest.mark.parametrize(
    ("src", "dst", "freq"),
    [
        (22050, 8000, 1000.0),
        (8000, 16000, 440.0),
        (22050, 16000, 2500.0),
        (16000, 8000, 300.0),
        (8000, 11111, 700.0),  # no common factor: the filters are built per block
    ],
)
def test_resampling_keeps_the_frequency_and_the_length(src: int, dst: int, freq: float) -> None:
    original = pcm(sine(freq, src, 1.0))
    converted = resample(original, src, dst)
    assert len(converted) // 2 == dst  # one second in, one second out
    assert abs(peak_frequency(converted, dst) - freq) <= 2.0
    # Away from the filter's edges the level is kept: a sine's RMS is amplitude / sqrt(2).
    middle = samples_of(converted)[dst // 10 : -dst // 10]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(12000 / np.sqrt(2), rel=0.02)


def test_downsampling_removes_tones_above_the_new_nyquist_frequency() -> None:
    # A 5 kHz tone cannot exist at 8 kHz; a naive resampler folds it down to 3 kHz.
    folded = resample(pcm(sine(5000, 22050, 0.5)), 22050, 8000)
    kept = resample(pcm(sine(1000, 22050, 0.5)), 22050, 8000)
    assert rms(folded) < 0.01 * rms(kept)


def test_resampling_nothing_or_to_the_same_rate() -> None:
    data = pcm(sine(440, 8000, 0.1))
    assert resample(data, 8000, 8000) == data
    assert resample(b"", 8000, 16000) == b""
    with pytest.raises(ValueError, match="even number of bytes"):
        resample(b"\x00\x01\x02", 8000, 16000)
    with pytest.raises(ValueError, match="positive"):
        resample(data, 0, 8000)


def test_read_wav_mixes_stereo_8_bit_down_to_mono_16_bit(tmp_path: Path) -> None:
    left = sine(440, 11025, 0.2, amplitude=100)
    frames = np.stack([left, left], axis=1).ravel()
    path = tmp_path / "stereo8.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(1)
        out.setframerate(11025)
        out.writeframes((np.round(frames) + 128).astype(np.uint8).tobytes())
    data, rate = read_wav(path)
    assert rate == 11025
    assert len(data) == 2 * len(left)
    # 8-bit sample v becomes 16-bit v * 256; identical channels average to themselves.
    assert np.max(np.abs(samples_of(data) - np.round(left) * 256)) <= 256


def test_read_wav_converts_24_bit_and_float_files() -> None:
    wave_24 = sine(440, 16000, 0.1) * 256  # 24-bit full scale is 256x the 16-bit one
    ints = np.round(wave_24).astype("<i4")
    body_24 = b"".join(int(v).to_bytes(4, "little", signed=True)[:3] for v in ints)
    data, rate = read_wav(riff(1, 1, 16000, 24, body_24))
    assert rate == 16000
    assert np.max(np.abs(samples_of(data) - wave_24 / 256)) <= 1

    floats = (sine(440, 16000, 0.1) / 32767).astype("<f4")
    data, _ = read_wav(riff(3, 1, 16000, 32, floats.tobytes()))
    assert np.max(np.abs(samples_of(data) - sine(440, 16000, 0.1))) <= 1


def test_write_wav_writes_a_standard_pcm_file(tmp_path: Path) -> None:
    data = pcm(sine(440, 16000, 0.3))
    target = tmp_path / "out.wav"
    returned = write_wav(target, data, 16000)
    assert target.read_bytes() == returned
    with wave.open(str(target), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert wav.readframes(wav.getnframes()) == data
    assert duration_seconds(data, 16000) == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"", "not a WAV file"),
        (b"ID3\x04 this is an mp3", "not a WAV file"),
        (b"RIFF\x04\x00\x00\x00WAVE", "missing or short 'fmt ' chunk"),
        (riff(1, 1, 8000, 16, b"\x00\x00")[:36], "no 'data' chunk"),
        (riff(85, 1, 8000, 16, b"\x00\x00"), "unsupported WAV encoding \\(format tag 85"),
        (riff(1, 0, 8000, 16, b"\x00\x00"), "channels=0"),
    ],
)
def test_unreadable_wav_data_gives_a_clear_value_error(bad: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_wav(bad)


def test_a_corrupt_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(ValueError, match=r"broken\.wav: corrupt WAV file"):
        read_wav(path)


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_encode_wav_produces_exactly_the_requested_format(fmt: AudioFormat) -> None:
    data = encode_wav(pcm(sine(440, 22050, 0.5)), 22050, fmt)
    header = inspect_wav(data)
    assert fmt.matches(header)
    assert header.duration == pytest.approx(0.5, abs=0.001)
    assert not any(other.matches(header) for other in AudioFormat if other is not fmt)
    decoded, rate = read_wav(data)
    assert rate == fmt.sample_rate
    assert abs(peak_frequency(decoded, rate) - 440) <= 3
