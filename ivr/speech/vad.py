"""Voice activity detection for live telephone audio: is this 20 ms frame speech?

Every detector takes 8 kHz 16-bit mono PCM in frames of :data:`FRAME_BYTES` (20 ms, what a
Twilio media message carries) and answers per frame. A detector keeps state between frames
(noise floor, a neural network's memory), so each listening turn builds its own; none of them
is thread-safe and none needs to be: they run on the event loop, costing microseconds (WebRTC,
energy) to a third of a millisecond (Silero) per frame, measured in bench/vad.py.

Detectors (``IVR_VAD``):

- ``webrtc``: the WebRTC VAD (Gaussian mixtures on band energies), from ``webrtcvad-wheels``.
- ``silero``: the Silero VAD neural network (ONNX) run by ``onnxruntime``. The ``silero-vad``
  package needs PyTorch to import, 2 GB that the product does not need: only its shipped ONNX
  file is used, located without importing the package.
- ``energy``: frame level against an adaptive noise floor, no dependency.

The default is Silero (chosen on numbers in bench/vad.py: fewest missed answers, no barge-in
on noise); without its model installed WebRTC serves, with one warning. Silero's ONNX session
takes about a second to load: :func:`warm_up` does it off the event loop at start-up.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2


class VoiceActivityDetector(Protocol):
    """Classifies consecutive 20 ms frames of 8 kHz PCM16 (``FRAME_BYTES`` each)."""

    @property
    def name(self) -> str: ...

    def is_speech(self, frame: bytes) -> bool: ...


def _check_frame(frame: bytes) -> None:
    if len(frame) != FRAME_BYTES:
        raise ValueError(
            f"a VAD frame is {FRAME_MS} ms of 8 kHz 16-bit PCM ({FRAME_BYTES} bytes), "
            f"got {len(frame)} bytes"
        )


def frame_dbfs(frame: bytes) -> float:
    """The frame's RMS level in dB below full scale (-100 for digital silence)."""
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    power = float(np.mean(samples * samples)) if samples.size else 0.0
    if power <= 0.0:
        return -100.0
    return 10.0 * math.log10(power / (32768.0 * 32768.0))


class EnergyVad:
    """Speech when a frame is ``margin_db`` above the noise floor and above ``min_dbfs``.

    The floor follows quieter frames at once and louder ones slowly (``rise_db_per_s``, four
    times faster for frames that are not speech), so a steady noise (a fan, a car) is absorbed
    within a second or two while a word, which lasts a few hundred milliseconds, is not. The
    floor starts at the first frame's level: a listening turn opens on the caller's silence
    (or noise), which is what the floor should be.
    """

    name = "energy"

    def __init__(
        self, margin_db: float = 8.0, min_dbfs: float = -50.0, rise_db_per_s: float = 3.0
    ) -> None:
        self.margin_db = margin_db
        self.min_dbfs = min_dbfs
        self._rise = rise_db_per_s * FRAME_MS / 1000
        self._floor: float | None = None

    def is_speech(self, frame: bytes) -> bool:
        _check_frame(frame)
        level = frame_dbfs(frame)
        floor = level if self._floor is None else self._floor
        speech = level >= self.min_dbfs and level >= floor + self.margin_db
        if level <= floor:
            self._floor = level
        else:
            self._floor = min(level, floor + self._rise * (1 if speech else 4))
        return speech


class WebRtcVad:
    """The WebRTC VAD; ``aggressiveness`` 0 (most speech kept) to 3 (most noise rejected)."""

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"WebRTC VAD aggressiveness is 0-3, got {aggressiveness}")
        self.aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)

    @property
    def name(self) -> str:
        return f"webrtc:{self.aggressiveness}"

    def is_speech(self, frame: bytes) -> bool:
        _check_frame(frame)
        return bool(self._vad.is_speech(frame, SAMPLE_RATE))


# Silero's 8 kHz model reads windows of 256 samples (32 ms) plus 32 samples of context from the
# previous window; its answer holds for each 20 ms frame until the next window is complete.
_SILERO_WINDOW = 256
_SILERO_CONTEXT = 32
_silero_sessions: dict[Path, Any] = {}


def silero_model_path() -> Path:
    """The ONNX file inside the installed ``silero-vad`` package (the package is not imported:
    its ``__init__`` imports PyTorch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "IVR_VAD=silero needs the silero-vad package's ONNX model: "
            "pip install --no-deps silero-vad onnxruntime"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise RuntimeError(f"silero-vad is installed but has no ONNX model at {path}")
    return path


def _silero_session(path: Path) -> Any:
    """One ONNX session per process, shared by every call (a session's ``run`` is
    thread-safe and the per-call memory is passed in and out as ``state``)."""
    session = _silero_sessions.get(path)
    if session is None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: 50 calls on 2 cores each run a tiny network, intra-op threads only
        # add contention.
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        _silero_sessions[path] = session
    return session


class SileroVad:
    """The Silero VAD network at 8 kHz; speech when its probability reaches ``threshold``."""

    def __init__(self, threshold: float = 0.5, model: Path | None = None) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"Silero VAD threshold is between 0 and 1, got {threshold}")
        self.threshold = threshold
        self._session = _silero_session(model or silero_model_path())
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(_SILERO_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._rate = np.array(SAMPLE_RATE, dtype=np.int64)
        self.probability = 0.0

    @property
    def name(self) -> str:
        return f"silero:{self.threshold:g}"

    def is_speech(self, frame: bytes) -> bool:
        _check_frame(frame)
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        self._pending = np.concatenate((self._pending, samples))
        while self._pending.size >= _SILERO_WINDOW:
            window = self._pending[:_SILERO_WINDOW]
            self._pending = self._pending[_SILERO_WINDOW:]
            model_input = np.concatenate((self._context, window))[np.newaxis, :]
            out, self._state = self._session.run(
                None, {"input": model_input, "state": self._state, "sr": self._rate}
            )
            self._context = window[-_SILERO_CONTEXT:]
            self.probability = float(out[0][0])
        return self.probability >= self.threshold


DETECTORS: dict[str, Callable[[], VoiceActivityDetector]] = {
    "webrtc": WebRtcVad,
    "silero": SileroVad,
    "energy": EnergyVad,
}
# Chosen on numbers (bench/vad.py, README "Voice activity detection"): Silero missed fewest
# answers and never barged in on noise, for ~6 ms of CPU per second of call audio.
DEFAULT_DETECTOR = "silero"
_FALLBACK_DETECTOR = "webrtc"
_fallback_warned = False


def silero_available() -> bool:
    try:
        silero_model_path()
        import onnxruntime  # noqa: F401
    except (RuntimeError, ImportError):
        return False
    return True


def detector_kind(kind: str | None = None) -> str:
    """The detector ``make_vad(kind)`` builds: ``kind``, else ``IVR_VAD``, else the default,
    which falls back to WebRTC (with one warning) where Silero's model is not installed."""
    global _fallback_warned
    chosen = (kind or os.environ.get("IVR_VAD") or "").strip().lower()
    if chosen:
        if chosen not in DETECTORS:
            raise ValueError(
                f"unknown voice activity detector {chosen!r}: use one of {sorted(DETECTORS)}"
            )
        return chosen
    if DEFAULT_DETECTOR == "silero" and not silero_available():
        if not _fallback_warned:
            _fallback_warned = True
            log.warning(
                "Silero VAD is not installed (pip install --no-deps silero-vad onnxruntime): "
                "live calls use the WebRTC detector, which misses more short answers and "
                "takes more noise for speech (README, Voice activity detection)"
            )
        return _FALLBACK_DETECTOR
    return DEFAULT_DETECTOR


def make_vad(kind: str | None = None) -> VoiceActivityDetector:
    """A new detector (one per listening turn: detectors keep state) of ``detector_kind``."""
    return DETECTORS[detector_kind(kind)]()


async def warm_up(kind: str | None = None) -> str:
    """Load the detector's model off the event loop (Silero's ONNX session takes about a
    second the first time; call this at start-up). Returns the detector's name."""
    import asyncio

    return (await asyncio.to_thread(make_vad, kind)).name
