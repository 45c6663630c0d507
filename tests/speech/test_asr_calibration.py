"""Digit confidence on voices the calibration was not fitted on.

The committed calibration (ivr/speech/data/digit_calibration.json) is fitted by
bench/asr_speakers.py on george, jackson and takes 0-44 of theo and yweweler; takes 45-49 of
theo (very quiet recordings) and yweweler are never fitted on. At the default
``min_confidence`` these fixed recordings must stay mostly accepted and right, and rarely
accepted and wrong: a calibration that regressed for a new voice fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.speech.asr import Grammar, recognize_many, shutdown_pools
from ivr.speech.audio import read_wav
from ivr.speech.calibration import Calibration, DigitEvidence, calibrations, fit_logistic
from ivr.speech.sphinx_engine import PocketSphinxRecognizer

MORE = Path("../shared/data/fsdd_more")
# (speaker, at least right and accepted, at most wrong and accepted) of 20 recordings (takes
# 45-46, digits 0-9) in the one-digit grammar at min_confidence 0.5. Measured: theo 18 right,
# 0 wrong; yweweler 16 right, 2 wrong (bench/asr_speakers.py); one recording of slack each.
HELD_OUT = [("theo", 17, 1), ("yweweler", 15, 3)]


def _accepted(speaker: str) -> tuple[int, int]:
    files = [MORE / f"{digit}_{speaker}_{take}.wav" for take in (45, 46) for digit in range(10)]
    audio = [read_wav(path) for path in files]
    grammar = Grammar.for_digits("en-US", 1, 1)
    results = list(recognize_many(PocketSphinxRecognizer(), audio, grammar, workers=2))
    right = sum(r.digits == f.name[0] for f, r in zip(files, results, strict=True))
    wrong = sum(r.digits not in (None, f.name[0]) for f, r in zip(files, results, strict=True))
    return right, wrong


@pytest.mark.slow
@pytest.mark.parametrize(("speaker", "least_right", "most_wrong"), HELD_OUT)
def test_held_out_speaker_at_default_threshold(
    speaker: str, least_right: int, most_wrong: int
) -> None:
    try:
        right, wrong = _accepted(speaker)
    finally:
        shutdown_pools()
    assert right >= least_right, (speaker, right, wrong)
    assert wrong <= most_wrong, (speaker, right, wrong)


def test_committed_calibrations_load_and_are_monotonic_in_fit() -> None:
    committed = calibrations()
    assert set(committed) == {"digit", "digit_string"}
    for calibration in committed.values():
        good = DigitEvidence(fit=-2.0, loop=-0.001, frames=40, snr_db=30.0, share=1.0, count=1)
        bad = DigitEvidence(fit=-8.0, loop=-0.001, frames=40, snr_db=30.0, share=1.0, count=1)
        assert calibration.confidence(good) > calibration.confidence(bad)


def test_calibration_json_round_trip_and_errors() -> None:
    calibration = Calibration(("fit", "snr"), (2.0, 0.5), 8.0)
    assert Calibration.from_json(json.loads(json.dumps(calibration.as_json()))) == calibration
    with pytest.raises(ValueError, match="bad calibration"):
        Calibration(("fit", "shoe size"), (1.0, 1.0), 0.0)
    with pytest.raises(ValueError, match="bad calibration"):
        Calibration(("fit",), (1.0, 1.0), 0.0)


def test_fit_logistic_recovers_a_known_model() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - 0.5 * x[:, 1] + 0.3)))
    y = (rng.random(4000) < p).astype(float)
    coefficients, bias = fit_logistic(x, y, l2=0.0)
    assert np.allclose(coefficients, [1.5, -0.5], atol=0.15)
    assert abs(bias - 0.3) < 0.15
