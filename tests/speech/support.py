"""Audio and listen specs shared by the speech tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ivr.dialplan.loader import load_plan
from ivr.dialplan.schema import ListenSpec
from ivr.speech.audio import read_wav, resample

PLANS = Path("dialplans")


def speak(text: str, voice: str, tmp_path: Path, rate: int = 150) -> bytes:
    """espeak-ng speech as a telephone carries it: 16-bit PCM at 8 kHz."""
    out = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(out), text], check=True)
    pcm16, source_rate = read_wav(out)
    return resample(pcm16, source_rate, 8000)


def listen_spec(plan_file: str) -> ListenSpec:
    """The listen spec of the ``ask`` state of a shipped plan."""
    plan, errors = load_plan(PLANS / plan_file, Path("audio"))
    assert plan is not None, errors
    spec = plan.states["ask"].listen
    assert spec is not None
    return spec
