"""Audio formats: WAV in and out, resampling, mu-law, all on 16-bit mono PCM bytes.

Everything inside the product is 16-bit little-endian mono PCM plus a sample rate; this module
is the border where other shapes (stereo, 8/24/32-bit, float, A-law and mu-law WAV files) come
in and the telephony format (8 kHz mu-law WAV, what Twilio ``<Play>`` accepts) goes out.

The functions are pure: bytes in, bytes out, no global state, safe from any thread.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

# ``audioop`` is deprecated in 3.11/3.12 (removed in 3.13, where the ``audioop-lts`` backport
# provides the same module). It is still the only mu-law codec around, and pydub imports it at
# module level, so both imports are wrapped: the warning is expected and must not turn into an
# error under ``-W error`` (the test suite runs that way). pydub also warns at import when
# ffmpeg is missing; it is not needed, only PCM WAV and raw audio pass through pydub.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.filterwarnings("ignore", "Couldn't find ffmpeg", RuntimeWarning)
    import audioop

    from pydub import AudioSegment

PCM16_WIDTH = 2
TELEPHONY_RATE = 8000
WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# Resampling filter: a Kaiser-windowed sinc with this many zero crossings on each side of the
# centre tap, cut off slightly below the lower Nyquist frequency so that nothing aliases.
_ZERO_CROSSINGS = 16
_KAISER_BETA = 8.6
_ROLLOFF = 0.92
_RESAMPLE_BLOCK = 8192  # output samples per block: bounds memory for long recordings
# Up to this many distinct output positions (the reduced output rate) a filter bank per
# position is precomputed; beyond it (odd rate pairs such as 8000 -> 44101) filters are
# built per block of output.
_MAX_PHASES = 4096

PathOrBytes = str | os.PathLike[str] | bytes


@dataclass(frozen=True)
class WavFormat:
    """The header of a WAV file, as written (before any conversion)."""

    format_tag: int  # 1 PCM, 3 float, 6 A-law, 7 mu-law (extensible files report the subformat)
    channels: int
    sample_rate: int
    bits_per_sample: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _load(source: PathOrBytes) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    return Path(source).read_bytes()


def _describe(source: PathOrBytes, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, bytes | bytearray | memoryview):
        return "WAV data"
    return str(source)


def _chunks(data: bytes, where: str) -> dict[bytes, bytes]:
    """Split a RIFF/WAVE file into its top-level chunks (first occurrence of each id wins)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{where}: not a WAV file (no RIFF/WAVE header)")
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body_start = offset + 8
        # A streamed WAV may carry a placeholder size (0 or 0xFFFFFFFF) for its data chunk:
        # take what is there instead of rejecting an otherwise usable recording.
        body = data[body_start : body_start + size]
        if chunk_id == b"data" and (size == 0 or size > len(data) - body_start):
            body = data[body_start:]
        chunks.setdefault(chunk_id, body)
        offset = body_start + size + (size & 1)  # chunks are padded to an even length
    return chunks


def _parse(data: bytes, where: str) -> tuple[WavFormat, bytes]:
    chunks = _chunks(data, where)
    fmt = chunks.get(b"fmt ")
    if fmt is None or len(fmt) < 16:
        raise ValueError(f"{where}: corrupt WAV file (missing or short 'fmt ' chunk)")
    if b"data" not in chunks:
        raise ValueError(f"{where}: corrupt WAV file (no 'data' chunk)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 26:
            raise ValueError(f"{where}: corrupt WAV file (short WAVE_FORMAT_EXTENSIBLE header)")
        # The subformat GUID starts with the plain format tag.
        (tag,) = struct.unpack_from("<H", fmt, 24)
    if channels < 1 or rate < 1 or bits < 1:
        raise ValueError(
            f"{where}: corrupt WAV file (channels={channels}, rate={rate}, bits={bits})"
        )
    width = (bits + 7) // 8
    block = max(block_align, width * channels)
    body = chunks[b"data"]
    body = body[: len(body) - len(body) % block]
    return WavFormat(tag, channels, rate, bits, len(body) // block), body


def inspect_wav(source: PathOrBytes, *, name: str | None = None) -> WavFormat:
    """Read only the header of a WAV file; ValueError when it is not a readable WAV file.

    Errors start with ``name``, else the path, else "WAV data".
    """
    wav_format, _ = _parse(_load(source), _describe(source, name))
    return wav_format


def _to_linear(wav: WavFormat, body: bytes, where: str) -> tuple[bytes, int]:
    """Decode the sample encoding to signed linear PCM; returns (samples, sample width)."""
    width = (wav.bits_per_sample + 7) // 8
    if wav.format_tag == WAVE_FORMAT_PCM and width in (1, 2, 3, 4):
        if width == 1:
            return audioop.bias(body, 1, -128), 1  # 8-bit WAV samples are unsigned
        return body, width
    if wav.format_tag == WAVE_FORMAT_MULAW and width == 1:
        return audioop.ulaw2lin(body, PCM16_WIDTH), PCM16_WIDTH
    if wav.format_tag == WAVE_FORMAT_ALAW and width == 1:
        return audioop.alaw2lin(body, PCM16_WIDTH), PCM16_WIDTH
    if wav.format_tag == WAVE_FORMAT_IEEE_FLOAT and width in (4, 8):
        floats = np.frombuffer(body, dtype="<f4" if width == 4 else "<f8")
        ints = np.clip(np.round(floats * 32767.0), -32768, 32767).astype("<i2")
        return ints.tobytes(), PCM16_WIDTH
    raise ValueError(
        f"{where}: unsupported WAV encoding (format tag {wav.format_tag}, "
        f"{wav.bits_per_sample} bits); use PCM, float, A-law or mu-law"
    )


def read_wav(source: PathOrBytes, *, name: str | None = None) -> tuple[bytes, int]:
    """Read any common WAV file as (16-bit mono PCM, sample rate).

    Stereo is mixed down, other sample widths and encodings are converted; the rate is kept
    (call :func:`resample` for another). ValueError on anything unreadable, naming ``name``,
    else the path.
    """
    where = _describe(source, name)
    wav, body = _parse(_load(source), where)
    linear, width = _to_linear(wav, body, where)
    segment = AudioSegment(data=linear, sample_width=width, frame_rate=wav.sample_rate,
                           channels=wav.channels)  # fmt: skip
    if wav.channels > 1:
        segment = segment.set_channels(1)
    if segment.sample_width != PCM16_WIDTH:
        segment = segment.set_sample_width(PCM16_WIDTH)
    return bytes(segment.raw_data), wav.sample_rate


def write_wav(path: str | os.PathLike[str] | None, pcm16: bytes, rate: int) -> bytes:
    """Encode 16-bit mono PCM as a PCM WAV file; write it to ``path`` when given; return it."""
    _check_pcm16(pcm16)
    segment = AudioSegment(data=pcm16, sample_width=PCM16_WIDTH, frame_rate=rate, channels=1)
    buffer = io.BytesIO()
    segment.export(buffer, format="wav")
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _check_pcm16(pcm16: bytes) -> None:
    if len(pcm16) % PCM16_WIDTH:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm16)}")


def _kaiser(x: np.ndarray) -> np.ndarray:
    """Kaiser window over x in [-1, 1] (zero outside)."""
    inside = np.clip(1.0 - x * x, 0.0, None)
    window: np.ndarray = np.i0(_KAISER_BETA * np.sqrt(inside)) / np.i0(_KAISER_BETA)
    window[inside <= 0] = 0.0
    return window


def _filter_bank(fractions: np.ndarray, offsets: np.ndarray, cutoff: float) -> np.ndarray:
    """One row of taps per fractional output position (distance from the input sample)."""
    half_width = offsets[-1]
    distance = fractions[:, None] - offsets[None, :]
    taps: np.ndarray = cutoff * np.sinc(cutoff * distance) * _kaiser(distance / half_width)
    taps /= taps.sum(axis=1, keepdims=True)  # unity gain at DC for every position
    return taps


def resample(pcm16: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Change the sample rate of 16-bit mono PCM with a band-limited (windowed-sinc) filter.

    ``audioop.ratecv`` interpolates linearly and aliases audibly when going down (22.05 kHz
    speech to 8 kHz telephony) — bad for prompts and worse for recognition. Here each output
    sample is the input convolved with a Kaiser-windowed sinc centred on its exact position,
    cut off below the lower of the two Nyquist frequencies. The output has
    ``round(len * dst / src)`` samples, so the duration is preserved.
    """
    _check_pcm16(pcm16)
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    if src_rate == dst_rate or not pcm16:
        return bytes(pcm16)
    step = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // step, src_rate // step
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    n_out = round(len(samples) * dst_rate / src_rate)
    cutoff = min(1.0, dst_rate / src_rate) * _ROLLOFF  # in cycles per input sample * 2
    half_width = math.ceil(_ZERO_CROSSINGS / cutoff)  # taps each side, in input samples
    offsets = np.arange(-half_width + 1, half_width + 1)
    padded = np.concatenate([np.zeros(half_width), samples, np.zeros(half_width + 1)])
    # Output n sits at input position n * down / up: sample (n * down) // up plus the
    # fraction ((n * down) % up) / up. Integer arithmetic keeps it exact for long inputs.
    if up <= _MAX_PHASES:
        return _resample_by_phase(padded, n_out, up, down, offsets, cutoff)
    out = np.empty(n_out)
    for start in range(0, n_out, _RESAMPLE_BLOCK):
        n = np.arange(start, min(start + _RESAMPLE_BLOCK, n_out), dtype=np.int64)
        base, phase = (n * down) // up, (n * down) % up
        phases, which = np.unique(phase, return_inverse=True)
        taps = _filter_bank(phases / up, offsets, cutoff)
        window = padded[(base + half_width)[:, None] + offsets[None, :]]
        out[start : start + len(n)] = np.einsum("ij,ij->i", window, taps[which])
    return _to_pcm16(out)


def _resample_by_phase(
    padded: np.ndarray, n_out: int, up: int, down: int, offsets: np.ndarray, cutoff: float
) -> bytes:
    """The common case (few distinct fractions, e.g. 22050 -> 8000 has 160): outputs
    ``r, r + up, r + 2 up, ...`` share one filter and step ``down`` input samples apart, so
    each phase is one strided matrix-vector product over a sliding-window view (no copies).
    """
    taps = _filter_bank(np.arange(up) / up, offsets, cutoff)
    windows = np.lib.stride_tricks.sliding_window_view(padded, len(offsets))
    first_tap = offsets[-1] + offsets[0]  # padding minus the taps before the centre
    out = np.empty(n_out)
    for phase in range(min(up, n_out)):
        count = (n_out - phase + up - 1) // up
        start = (phase * down) // up + first_tap
        fraction = (phase * down) % up
        out[phase::up] = windows[start : start + count * down : down] @ taps[fraction]
    return _to_pcm16(out)


def _to_pcm16(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def pcm16_to_mulaw(pcm16: bytes) -> bytes:
    """Encode 16-bit PCM as 8-bit G.711 mu-law (one byte per sample)."""
    _check_pcm16(pcm16)
    return audioop.lin2ulaw(pcm16, PCM16_WIDTH)


def mulaw_to_pcm16(mulaw: bytes) -> bytes:
    """Decode 8-bit G.711 mu-law to 16-bit PCM."""
    return audioop.ulaw2lin(mulaw, PCM16_WIDTH)


def mulaw_wav(pcm16_8k: bytes) -> bytes:
    """An 8 kHz mono mu-law WAV file (format tag 7) from 8 kHz 16-bit PCM.

    Python's ``wave`` module writes PCM only, so the RIFF header is built here. Non-PCM WAV
    files need a ``fact`` chunk (sample count) and an 18-byte ``fmt `` chunk with cbSize.
    """
    body = pcm16_to_mulaw(pcm16_8k)
    samples = len(body)
    fmt = struct.pack(
        "<HHIIHHH",
        WAVE_FORMAT_MULAW,
        1,  # channels
        TELEPHONY_RATE,
        TELEPHONY_RATE,  # bytes per second: one byte per sample
        1,  # block align
        8,  # bits per sample
        0,  # cbSize: no extra format bytes
    )
    fact = struct.pack("<I", samples)
    pad = b"\x00" if samples & 1 else b""
    chunks = (
        b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"fact" + struct.pack("<I", len(fact)) + fact
        + b"data" + struct.pack("<I", samples) + body + pad
    )  # fmt: skip
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def read_mulaw_wav(data: bytes) -> bytes:
    """Decode a mu-law WAV file (as written by :func:`mulaw_wav`) to 16-bit PCM at its rate."""
    wav, body = _parse(bytes(data), "mu-law WAV data")
    if wav.format_tag != WAVE_FORMAT_MULAW or wav.channels != 1:
        raise ValueError(
            f"mu-law WAV data: expected mono mu-law (format tag 7), "
            f"got format tag {wav.format_tag} with {wav.channels} channel(s)"
        )
    return mulaw_to_pcm16(body)


def duration_seconds(pcm16: bytes, rate: int) -> float:
    """Length in seconds of 16-bit mono PCM at ``rate``."""
    return len(pcm16) / (PCM16_WIDTH * rate)


class AudioFormat(StrEnum):
    """The audio files the product hands out (all WAV, all mono)."""

    MULAW = "mulaw"  # 8 kHz mu-law: what a telephony provider plays (Twilio <Play>)
    PCM8K = "pcm8k"  # 8 kHz 16-bit PCM: telephone-band audio for the simulator and ASR
    PCM16K = "pcm16k"  # 16 kHz 16-bit PCM: what the recognizers' models expect

    @property
    def sample_rate(self) -> int:
        return 16000 if self is AudioFormat.PCM16K else TELEPHONY_RATE

    def matches(self, wav: WavFormat) -> bool:
        """Whether a file with this header is already in this format."""
        tag, bits = (WAVE_FORMAT_MULAW, 8) if self is AudioFormat.MULAW else (WAVE_FORMAT_PCM, 16)
        return (wav.format_tag, wav.bits_per_sample, wav.channels, wav.sample_rate) == (
            tag,
            bits,
            1,
            self.sample_rate,
        )


def encode_wav(pcm16: bytes, rate: int, fmt: AudioFormat) -> bytes:
    """16-bit mono PCM at ``rate`` as a WAV file in ``fmt`` (resampled as needed)."""
    converted = resample(pcm16, rate, fmt.sample_rate)
    if fmt is AudioFormat.MULAW:
        return mulaw_wav(converted)
    return write_wav(None, converted, fmt.sample_rate)


def rms(pcm16: bytes) -> float:
    """Root-mean-square level of 16-bit PCM (0 for silence, up to 32767)."""
    _check_pcm16(pcm16)
    return float(audioop.rms(pcm16, PCM16_WIDTH)) if pcm16 else 0.0
