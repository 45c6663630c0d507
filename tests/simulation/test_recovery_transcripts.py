"""Recovery in simulated calls: the key hint and the read-back as a transcript shows them."""

from __future__ import annotations

from ivr.dialplan.loader import PlanSet
from ivr.simulation.runner import run_scenario
from ivr.simulation.scenario import Scenario
from ivr.simulation.transcript import format_lines


def test_key_hint_and_read_back_in_the_transcript(shipped_plans: PlanSet) -> None:
    scenario = Scenario.model_validate(
        {
            "plan": "order_status_line",
            "name": "mumbles, then types",
            "lookups": [{"status": "not_found"}],
            "turns": [
                {"say": "pizza please"},
                {"expect": "You can also press 1 for order, 0 for operator, or 9 for repeat."},
                {"press": "1", "intent": "order"},
                {"say": "my number is one two three four", "confidence": 0.6, "digits": "1234"},
                {"expect": "I heard one two three four.", "say": "no", "intent": "no"},
                {"say": "I am not sure"},
                # typed digits are sure: no read-back, straight to the lookup
                {"expect": "You can also type the number on your keypad.", "press": "9876#"},
                {"expect": "I could not find order nine eight seven six", "say": "goodbye"},
            ],
            "expect": {"outcome": "order_not_found", "end": "hangup"},
        }
    )
    result = run_scenario(shipped_plans.plans["order_status_line"], scenario)
    assert result.failures == []
    text = format_lines(result.call.lines)
    assert (
        'CALLER  says "pizza please"\n'
        "        understood: no match (confidence 1.00)\n"
        "ROBOT   Sorry, I did not get that.\n"
        "ROBOT   You can also press 1 for order, 0 for operator, or 9 for repeat.\n"
    ) in text
    assert (
        "ROBOT   I heard one two three four. Press 1 if that is right, or 2 to try again.\n"
        "        listening for yes (1), no (2)\n"
        'CALLER  says "no"\n'
        "        understood: intent no (confidence 1.00)\n"
        "ROBOT   Please say or type your order number, then press pound.\n"
    ) in text
    assert result.call.session.variables["order_number"] == "9876"
