"""Constants and helpers shared by the dial-plan tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ivr.dialplan.loader import PlanError

REPO = Path(__file__).resolve().parents[2]
DIALPLANS = REPO / "dialplans"
SHIPPED_PLANS = sorted(DIALPLANS.glob("*.yaml"))

WritePlan = Callable[..., Path]


def short(error: PlanError) -> str:
    """``line: state: message`` (the file is checked separately)."""
    return f"{error.line}: {error.state or '(plan)'}: {error.message}"
