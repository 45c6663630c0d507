"""Shared fixtures: the project root, shipped plans and scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.dialplan.loader import PlanSet, load_plans_or_raise

ROOT = Path(__file__).resolve().parent.parent
DIALPLANS = ROOT / "dialplans"
SCENARIOS = ROOT / "tests" / "scenarios"
FSDD = ROOT.parent / "shared" / "data" / "fsdd"


@pytest.fixture(scope="session")
def shipped_plans() -> PlanSet:
    return load_plans_or_raise([DIALPLANS], ROOT / "audio")
