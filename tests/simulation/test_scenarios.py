"""Every shipped scenario passes, and together they exercise every state and intent."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.dialplan.loader import PlanSet
from ivr.simulation.runner import ScenarioResult, run_scenario
from ivr.simulation.scenario import load_scenario, scenario_files
from tests.conftest import SCENARIOS

SCENARIO_FILES = scenario_files(SCENARIOS)


def _run(path: Path, plans: PlanSet) -> ScenarioResult:
    scenario = load_scenario(path)
    return run_scenario(plans.plans[scenario.plan], scenario)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_scenario_passes(path: Path, shipped_plans: PlanSet) -> None:
    result = _run(path, shipped_plans)
    assert result.failures == []
    assert result.call.ended


def test_every_plan_has_scenarios(shipped_plans: PlanSet) -> None:
    covered = {load_scenario(path).plan for path in SCENARIO_FILES}
    assert covered == set(shipped_plans.plans)


def test_scenarios_visit_every_state_and_intent(shipped_plans: PlanSet) -> None:
    visited: dict[str, set[str]] = {plan_id: set() for plan_id in shipped_plans.plans}
    intents: dict[str, set[str]] = {plan_id: set() for plan_id in shipped_plans.plans}
    for path in SCENARIO_FILES:
        result = _run(path, shipped_plans)
        visited[result.call.plan.id] |= set(result.call.states)
        intents[result.call.plan.id] |= {
            f"{line.data['state']}:{line.data['intent']}"
            for line in result.call.lines
            if line.kind == "understood" and line.data["intent"]
        }
    missing = []
    for plan_id, plan in shipped_plans.plans.items():
        for state in plan.states:
            if state not in visited[plan_id]:
                missing.append(f"{plan_id}: state {state} is visited by no scenario")
        for state_name, state in plan.states.items():
            for intent in state.listen.intents if state.listen else {}:
                if f"{state_name}:{intent}" not in intents[plan_id]:
                    missing.append(f"{plan_id}: {state_name}: intent {intent} is exercised by none")
    assert missing == []
