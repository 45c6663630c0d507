"""``ivr demo`` (what ``make demo`` runs) works on this machine and ends as it says."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_demo_campaign_runs_end_to_end() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "ivr", "demo"],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    out = " ".join(process.stdout.split())
    assert process.returncode == 0, process.stdout + process.stderr
    assert "Outcomes as expected" in out
    assert "Eve's later marketing call: skipped" in out
    assert "Hi Cat, Sunrise Clinic reminds you" in out  # the SMS after no answer
    assert "CALLER 'confirm' -> confirm" in out  # recognized offline
