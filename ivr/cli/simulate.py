"""``ivr simulate``, ``ivr call`` and ``ivr demo``: talking to dial plans without a phone."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from ivr.cli.common import dialplans_dir, resolve_plan
from ivr.demo import main as campaign_demo
from ivr.dialplan.loader import PlanLoadError, load_plans
from ivr.dialplan.schema import Plan
from ivr.dialplan.variables import VariableError, coerce_variables
from ivr.dialplan.vocabulary import (
    AnsweredBy,
    CallerHungUp,
    Event,
    KeysPressed,
    NoInput,
    SpeechRecognized,
)
from ivr.integrations.lookups import http_lookup
from ivr.simulation.call import SimulatedCall
from ivr.simulation.runner import DEFAULT_CALLER, ScenarioError, ScenarioResult, run_scenario
from ivr.simulation.scenario import Scenario, load_scenario, scenario_files
from ivr.simulation.transcript import format_lines


def scenarios_dir() -> Path:
    return Path(os.environ.get("IVR_SCENARIOS", "tests/scenarios"))


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not name=value", param_hint="--var")
        values[name.strip()] = value
    return values


def _load_scenarios(paths: list[Path]) -> list[Scenario]:
    try:
        return [load_scenario(path) for path in paths]
    except PlanLoadError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(plan: Plan, scenario: Scenario, variables: dict[str, str]) -> ScenarioResult:
    try:
        return run_scenario(plan, scenario, variables=dict(variables))
    except VariableError as exc:
        raise click.ClickException(f"{scenario.name}: bad variables: {exc}") from exc
    except ScenarioError as exc:
        raise click.ClickException(f"{scenario.name}: {exc}") from exc


def _print_result(result: ScenarioResult) -> None:
    status = "passed" if result.passed else "FAILED"
    click.echo(f"=== {result.call.plan.id}: {result.scenario.name} ({status}) ===")
    click.echo(format_lines(result.call.lines))
    for failure in result.failures:
        click.echo(f"  FAIL  {failure}")
    click.echo()


@click.command()
@click.argument("plan")
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="A plan variable.")
@click.option(
    "--script",
    "scripts",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Scenario file (default: every scenario of PLAN under tests/scenarios/).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def simulate(plan: str, pairs: tuple[str, ...], scripts: tuple[Path, ...], as_json: bool) -> None:
    """Run scripted conversations through PLAN and print their transcripts."""
    loaded = resolve_plan(plan)
    variables = parse_vars(pairs)
    if scripts:
        scenarios = _load_scenarios(list(scripts))
    else:
        scenarios = [
            s for s in _load_scenarios(scenario_files(scenarios_dir())) if s.plan == loaded.id
        ]
        if not scenarios:
            raise click.ClickException(f"no scenario for {loaded.id} under {scenarios_dir()}/")
    results = [_run(loaded, scenario, variables) for scenario in scenarios]
    if as_json:
        docs = [r.to_json() for r in results]
        click.echo(
            json.dumps(
                docs[0] if len(docs) == 1 else {"results": docs}, ensure_ascii=False, indent=2
            )
        )
    else:
        for result in results:
            _print_result(result)
    if not all(r.passed for r in results):
        sys.exit(1)


def _read_caller_line() -> str | None:
    """One line the caller typed; None at end of input (a pipe or Ctrl-D)."""
    click.echo("caller> ", nl=False)
    line = sys.stdin.readline()
    return line if line else None


def _event_from_line(line: str | None) -> Event:
    if line is None or line.strip() in ("/hangup", "/quit"):
        return CallerHungUp()
    text = line.strip()
    if not text:
        return NoInput()
    if all(ch in "0123456789*#" for ch in text):
        return KeysPressed(text)
    return SpeechRecognized(text, 1.0)


@click.command()
@click.argument("plan")
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="A plan variable.")
@click.option("--answered-by", type=click.Choice(["human", "machine", "unknown"]), default="human")
def call(plan: str, pairs: tuple[str, ...], answered_by: str) -> None:
    """Talk to PLAN in the terminal: type what the caller says, or keys (1, 42#).

    An empty line is silence; /hangup (or end of input) hangs up.
    """
    loaded = resolve_plan(plan)
    try:
        values: dict[str, Any] = coerce_variables(loaded, dict(parse_vars(pairs)))
    except VariableError as exc:
        raise click.ClickException(f"bad variables: {exc}") from exc
    values.setdefault("caller", DEFAULT_CALLER)
    session = SimulatedCall(loaded, values, http_lookup, cast(AnsweredBy, answered_by))
    click.echo(format_lines(session.answer()))
    while not session.ended:
        new = session.send(_event_from_line(_read_caller_line()))
        click.echo(format_lines(line for line in new if line.kind != "caller"))
    click.echo(f"call ended ({session.session.end_reason}); outcome: {session.session.outcome}")


@click.command()
def scenarios() -> None:
    """Run every shipped scenario through the engine; print the transcripts and a summary."""
    plan_set, errors = load_plans([dialplans_dir()])
    if errors:
        raise click.ClickException("\n".join(map(str, errors)))
    results = []
    for scenario in _load_scenarios(scenario_files(scenarios_dir())):
        plan = plan_set.plans.get(scenario.plan)
        if plan is None:
            raise click.ClickException(f"scenario {scenario.name!r}: no plan {scenario.plan!r}")
        result = _run(plan, scenario, {})
        _print_result(result)
        results.append(result)
    table = Table(title="Scripted calls")
    for column in ("plan", "scenario", "outcome", "end", "sms", "result"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.call.plan.id,
            r.scenario.name,
            r.call.session.outcome or "-",
            r.call.session.end_reason or "-",
            str(len(r.call.sms)),
            "passed" if r.passed else "[red]FAILED[/red]",
        )
    # Pipes and CI logs get a wide table rather than one wrapped into unreadable columns.
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    if not all(r.passed for r in results):
        sys.exit(1)


@click.command()
def demo() -> None:
    """A reminder campaign end to end: server, scheduler, simulated phones, offline speech."""
    if not campaign_demo(Path.cwd()):
        sys.exit(1)


COMMANDS = (simulate, call, scenarios, demo)
