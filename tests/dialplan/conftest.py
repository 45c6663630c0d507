"""Fixtures for the dial-plan tests: writing plans to files and reading their errors."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.dialplan.loader import load_plan
from tests.dialplan.support import WritePlan, short


@pytest.fixture
def write_plan(tmp_path: Path) -> WritePlan:
    """Write dedented YAML to ``tmp_path/name`` and return the path."""

    def write(text: str, name: str = "plan.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def plan_errors(write_plan: WritePlan) -> Callable[[str], list[str]]:
    """Load dedented YAML as a plan file; its errors as ``line: state: message``."""

    def errors(text: str) -> list[str]:
        path = write_plan(text)
        plan, found = load_plan(path)
        assert plan is None, "a plan with errors must not be returned"
        assert found, "expected errors"
        assert {e.file for e in found} == {str(path)}
        return [short(e) for e in found]

    return errors
