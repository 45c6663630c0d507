"""The simulation commands as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from ivr.cli import main
from tests.conftest import ROOT, SCENARIOS


def test_simulate_json_is_one_document() -> None:
    script = SCENARIOS / "appointment_confirm_by_voice.yaml"
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "appointment_reminder",
            "--script",
            str(script),
            "--json",
            "--var",
            "name=Zoe",
        ],
    )
    assert result.exit_code == 1  # the script expects "Hello Anna"; --var made it Zoe
    doc = json.loads(result.output)
    assert doc["outcome"] == "confirmed"
    assert doc["passed"] is False
    assert doc["failures"] == ["turn 1: expected the robot to say 'Hello Anna'"]
    assert doc["states"] == ["greet", "ask", "confirmed"]
    assert doc["transcript"][1] == {
        "kind": "robot",
        "text": "Hello Zoe. This is Sunrise Clinic. "
        "Your appointment is on Tuesday, November 24 at 10:00 AM.",
        "language": "en-US",
    }


def test_simulate_exit_code_follows_expectations() -> None:
    script = SCENARIOS / "appointment_confirm_by_voice.yaml"
    ok = CliRunner().invoke(main, ["simulate", "appointment_reminder", "--script", str(script)])
    assert ok.exit_code == 0
    assert 'CALLER  says "yes, I\'ll be there"' in ok.output
    assert "understood: intent confirm (confidence 1.00)" in ok.output
    assert "outcome: confirmed" in ok.output
    bad = CliRunner().invoke(
        main, ["simulate", "appointment_reminder", "--script", str(script), "--var", "name=Zoe"]
    )
    assert bad.exit_code == 1
    assert "FAIL  turn 1: expected the robot to say 'Hello Anna'" in bad.output


def test_simulate_runs_all_scenarios_of_a_plan_and_rejects_bad_vars() -> None:
    result = CliRunner().invoke(main, ["simulate", "delivery_notice", "--json"])
    assert result.exit_code == 0
    assert {r["scenario"] for r in json.loads(result.output)["results"]} >= {
        "voicemail",
        "keeps the slot by voice",
    }
    bad = CliRunner().invoke(main, ["simulate", "delivery_notice", "--var", "order=12a"])
    assert bad.exit_code == 1
    assert "order: expected digits only, got '12a'" in bad.output
    unknown = CliRunner().invoke(main, ["simulate", "no_such_plan"])
    assert unknown.exit_code == 1
    assert "no plan 'no_such_plan'" in unknown.output


def test_call_is_interactive_over_stdin() -> None:
    variables = ["--var", "name=Ann", "--var", "clinic=Sunrise", "--var", "when=2026-11-24T09:30"]
    process = subprocess.run(
        [sys.executable, "-m", "ivr", "call", "appointment_reminder", *variables],
        input="\nmaybe\n3\nyes\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    out = process.stdout
    assert "Sorry, I did not hear you." in out
    assert "Sorry, I did not understand." in out
    assert out.count("Your appointment is on Tuesday, November 24 at 9:30 AM") == 2
    assert "call ended (hangup); outcome: confirmed" in out


def test_call_ends_when_input_ends() -> None:
    result = CliRunner().invoke(main, ["call", "order_status_line"], input="0\n")
    assert result.exit_code == 0
    assert "transfer to +12025550123" in result.output
    hung = CliRunner().invoke(main, ["call", "order_status_line"], input="")
    assert "call ended (caller_hangup)" in hung.output


def test_scenarios_command_runs_every_scenario() -> None:
    result = CliRunner().invoke(main, ["scenarios"])
    assert result.exit_code == 0, result.output
    assert result.output.count("(passed) ===") == len(list(SCENARIOS.glob("*.yaml")))


def test_graph_draws_the_plan() -> None:
    result = CliRunner().invoke(main, ["graph", "order_status_line"])
    assert result.exit_code == 0
    assert "stateDiagram-v2" in result.output
    assert "menu --> ask_number : order (1)" in result.output
    assert "transfer --> [*] : transfer {{ operator }}" in result.output
