"""The Mermaid diagram of a plan shows every state and every transition."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.dialplan.graph import mermaid
from ivr.dialplan.loader import load_plan, load_plan_text
from ivr.dialplan.schema import Plan
from tests.dialplan.support import SHIPPED_PLANS


def _load(path: Path) -> Plan:
    plan, errors = load_plan(path)
    assert errors == []
    assert plan is not None
    return plan


@pytest.mark.parametrize("path", SHIPPED_PLANS, ids=[p.stem for p in SHIPPED_PLANS])
def test_every_state_and_transition_is_drawn(path: Path) -> None:
    plan = _load(path)
    lines = mermaid(plan).splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1] == f"    %% {plan.id} ({plan.direction}, {plan.language})"
    assert f"    [*] --> {plan.start}" in lines
    arrows = [line.strip() for line in lines if "-->" in line]
    for name, state in plan.states.items():
        assert any(name in arrow.split(" : ")[0].split(" --> ") for arrow in arrows), name
        if state.next is not None:
            assert any(a.startswith(f"{name} --> {state.next}") for a in arrows), name
        for event, target in state.on.items():
            assert any(a.startswith(f"{name} --> {target} : {event}") for a in arrows), (
                f"{name} -{event}-> {target}"
            )
        if state.outcome:
            assert f"    {name} : outcome {state.outcome}" in lines
    transitions = sum(len(s.on) + (s.next is not None) for s in plan.states.values())
    endings = sum(
        1
        for s in plan.states.values()
        if s.transfer or s.hangup or not (s.next or s.listen or s.lookup)
    )
    assert len(arrows) == 1 + transitions + endings
    assert mermaid(plan).endswith("\n")


def test_order_status_line_diagram() -> None:
    plan = _load(next(p for p in SHIPPED_PLANS if p.stem == "order_status_line"))
    lines = mermaid(plan).splitlines()
    for expected in (
        "    menu --> ask_number : order (1)",
        "    menu --> transfer : failed",
        "    ask_number --> find_order : digits",
        "    find_order --> not_found : not_found",
        "    tell_status : outcome status_told",
        "    tell_status --> anything_else",
        "    transfer --> [*] : transfer {{ operator }}",
        "    goodbye --> [*] : hang up",
    ):
        assert expected in lines


def test_labels_are_safe_for_mermaid() -> None:
    plan = load_plan_text(
        """
id: odd
direction: outbound
language: en-US
start: ask
states:
  ask:
    listen:
      intents:
        yes: {say: [yes]}
    on: {yes: out, failed: out}
  out:
    transfer: "+12025550123"
"""
    )
    text = mermaid(plan)
    assert "    ask --> out : yes\n" in text
    assert "    out --> [*] : transfer +12025550123\n" in text


def test_graph_command_prints_the_diagram() -> None:
    path = next(p for p in SHIPPED_PLANS if p.stem == "appointment_reminder")
    result = CliRunner().invoke(main, ["graph", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == mermaid(_load(path)) + "\n"
