"""Digit confidence as data: a logistic curve over measurements of each recognized digit,
chosen across speakers (``bench/asr_speakers.py``, leave one speaker out).

The recognizer's evidence for a digit (:class:`DigitEvidence`) is how well it fits against a
free phone loop, per frame and over its own frames (already normalized per utterance and per
frame: a voice the model hears badly fits badly both ways), plus its length, the phone loop's
own fit and the recording's signal-to-noise ratio. A :class:`Calibration` maps the evidence to
a confidence with weights and a bias stored in ``ivr/speech/data/digit_calibration.json``.
Measured on four FSDD speakers, the fit alone (logistic((fit - offset) / 0.5)) carries across
voices best: logistic models fitted on three speakers with the other measurements did worse
on the fourth (length follows the speaking rate, SNR the recording, not the answer), so the
committed calibrations use the fit only, with the offsets chosen by leave one speaker out.
A deployment picks ``min_confidence`` on its own callers with ``ivr asr evaluate``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

CALIBRATION_FILE = Path(__file__).parent / "data" / "digit_calibration.json"


@dataclass(frozen=True)
class DigitEvidence:
    """Measurements of one recognized digit (frames are 10 ms; scores natural log)."""

    fit: float  # per frame: the digit's acoustic score minus the phone loop's, same frames
    loop: float  # per frame: the phone loop's own acoustic score over the digit's frames
    frames: int  # the digit's length
    snr_db: float  # the recording's loud frames over its quiet ones, before conditioning
    share: float  # how much of the phone loop's speech all digits heard span (at most 1)
    count: int  # how many digits were heard in the utterance

    def features(self, names: tuple[str, ...]) -> list[float]:
        return [_FEATURES[name](self) for name in names]


_FEATURES: dict[str, Callable[[DigitEvidence], float]] = {
    "fit": lambda e: e.fit,
    "loop": lambda e: e.loop,
    "log_frames": lambda e: math.log(max(1, e.frames)),
    "snr": lambda e: min(60.0, e.snr_db) / 10.0,
    "share": lambda e: e.share,
}
FEATURE_NAMES = tuple(_FEATURES)


@dataclass(frozen=True)
class Calibration:
    """confidence = logistic(bias + sum(weight x feature))."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(_FEATURES)
        if unknown or len(self.features) != len(self.weights):
            raise ValueError(f"bad calibration: features {self.features}, weights {self.weights}")

    def confidence(self, evidence: DigitEvidence) -> float:
        z = self.bias + sum(
            w * x for w, x in zip(self.weights, evidence.features(self.features), strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def as_json(self) -> dict[str, object]:
        return {"features": list(self.features), "weights": list(self.weights), "bias": self.bias}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Calibration:
        features = data["features"]
        weights = data["weights"]
        bias = data["bias"]
        if not isinstance(features, list) or not isinstance(weights, list):
            raise ValueError("calibration: features and weights must be lists")
        if not isinstance(bias, int | float):
            raise ValueError("calibration: bias must be a number")
        return cls(tuple(str(f) for f in features), tuple(float(w) for w in weights), float(bias))


@cache
def calibrations(path: Path = CALIBRATION_FILE) -> dict[str, Calibration]:
    """The committed calibrations by search kind: ``"digit"`` (fixed length) and
    ``"digit_string"`` (variable length, its own decoder penalties)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {kind: Calibration.from_json(entry) for kind, entry in data["calibrations"].items()}


def fit_logistic(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, l2: float = 1e-2
) -> tuple[np.ndarray, float]:
    """Weighted, L2-regularized logistic regression by Newton's method (a handful of features,
    a few thousand rows: no need for a library). Returns (coefficients, bias)."""
    rows, cols = x.shape
    design = np.hstack([x, np.ones((rows, 1))])
    w = np.ones(rows) if weights is None else weights
    beta = np.zeros(cols + 1)
    penalty = np.full(cols + 1, l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -50, 50)))
        gradient = design.T @ (w * (p - y)) + penalty * beta
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-9 * np.eye(cols + 1), gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[:-1], float(beta[-1])
