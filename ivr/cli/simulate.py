"""``ivr simulate``, ``ivr call`` and ``ivr demo``: talking to dial plans without a phone."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from ivr.calls.recognition import OfflineRecognizer
from ivr.cli.common import dialplans_dir, resolve_plan
from ivr.cli.simulate_server import describe, run_over_server, to_json
from ivr.demo import Media
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
from ivr.simulation.hearing import AudioEars
from ivr.simulation.runner import (
    DEFAULT_CALLER,
    Ears,
    ScenarioError,
    ScenarioResult,
    run_scenario,
    text_ears,
)
from ivr.simulation.scenario import Scenario, load_scenario, scenario_files
from ivr.simulation.transcript import format_lines
from ivr.simulation.voice import CallerVoice

# Where ``audio:`` turns name their recordings when no --audio-dir is given: the spoken digits
# (FSDD) next to the project, see ../shared/data/fsdd/README.md.
DEFAULT_AUDIO_DIRS = (Path("../shared/data/fsdd"),)


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


def _load_scenarios(paths: list[Path]) -> list[tuple[Path, Scenario]]:
    try:
        return [(path, load_scenario(path)) for path in paths]
    except PlanLoadError as exc:
        raise click.ClickException(str(exc)) from exc


class Hearing:
    """How the caller's turns reach the engine: as text, or (``--audio``) as sound decoded by
    the real recognizers, one shared set of engines for all scenarios of the command."""

    def __init__(self, audio: bool, audio_dirs: tuple[Path, ...]) -> None:
        self.recognizer = OfflineRecognizer() if audio else None
        self.audio_dirs = audio_dirs or tuple(d for d in DEFAULT_AUDIO_DIRS if d.is_dir())

    def ears(self, script: Path) -> Ears:
        if self.recognizer is None:
            return text_ears
        # A scenario names its recordings relative to its own folder first.
        return AudioEars(self.recognizer, CallerVoice([script.parent, *self.audio_dirs]))


def _run(
    plan: Plan, scenario: Scenario, variables: dict[str, str], ears: Ears = text_ears
) -> ScenarioResult:
    try:
        return run_scenario(plan, scenario, variables=dict(variables), ears=ears)
    except VariableError as exc:
        raise click.ClickException(f"{scenario.name}: bad variables: {exc}") from exc
    except ScenarioError as exc:
        raise click.ClickException(f"{scenario.name}: {exc}") from exc


AUDIO = click.option(
    "--audio",
    is_flag=True,
    help="Speak the caller's turns and decode them with the offline recognizers.",
)
MEDIA = click.option(
    "--media",
    type=click.Choice(["stream", "record"]),
    default="stream",
    show_default=True,
    help="How the server hears callers: live over Twilio Media Streams (WebSocket, "
    "barge-in) or with <Gather>/<Record>.",
)
AUDIO_DIRS = click.option(
    "--audio-dir",
    "audio_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where audio: turns find their files, after the scenario's folder "
    "(repeatable; default: ../shared/data/fsdd if present).",
)


def _misheard(result: ScenarioResult) -> str:
    """Spoken turns the recognizer got wrong, of those it heard: "1 of 3", "-" for none."""
    heard = [line.data for line in result.call.lines if line.kind == "heard"]
    if not heard:
        return "-"
    wrong = sum(1 for data in heard if data.get("misrecognized") or data.get("heard") is None)
    return f"{wrong} of {len(heard)}"


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
@AUDIO
@AUDIO_DIRS
@click.option(
    "--server",
    is_flag=True,
    help="Run each scenario as a call through the real server and the simulated network "
    "(real HTTP and WebSockets, real audio), not in-process.",
)
@click.option(
    "--media",
    type=click.Choice(["stream", "record"]),
    default=None,
    help="With --server (implies it): how the server hears the caller, live over Media "
    "Streams (the default) or with <Gather>/<Record>.",
)
def simulate(
    plan: str,
    pairs: tuple[str, ...],
    scripts: tuple[Path, ...],
    as_json: bool,
    audio: bool,
    audio_dirs: tuple[Path, ...],
    server: bool,
    media: Media | None,
) -> None:
    """Run scripted conversations through PLAN and print their transcripts.

    With --audio, what the caller says is spoken (espeak-ng, a caller's voice, 8 kHz) or
    played (audio: turns) and decoded by the offline recognizers, as on a phone line; the
    transcript shows what was heard, with its confidence, under each spoken turn.

    With --server, each scenario is a phone call through the real server: the simulator
    places or receives it over HTTP and, with --media stream (the default), talks to the
    server over a Media Stream WebSocket in real time, speaking the caller's turns in the
    espeak-ng caller voice (FSDD recordings for audio: turns). The transcript is the
    caller's side of the line (prompts heard, cut by barge-in), then what the server stored.
    """
    if server or media is not None:
        _simulate_over_server(plan, pairs, scripts, as_json, audio_dirs, media or "stream")
        return
    loaded = resolve_plan(plan)
    variables = parse_vars(pairs)
    scenarios = _plan_scenarios(loaded, scripts)
    hearing = Hearing(audio, audio_dirs)
    results = []
    for path, scenario in scenarios:
        results.append(_run(loaded, scenario, variables, hearing.ears(path)))
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


def _plan_scenarios(plan: Plan, scripts: tuple[Path, ...]) -> list[tuple[Path, Scenario]]:
    if scripts:
        return _load_scenarios(list(scripts))
    found = [
        (path, s)
        for path, s in _load_scenarios(scenario_files(scenarios_dir()))
        if s.plan == plan.id
    ]
    if not found:
        raise click.ClickException(f"no scenario for {plan.id} under {scenarios_dir()}/")
    return found


def _simulate_over_server(
    plan: str,
    pairs: tuple[str, ...],
    scripts: tuple[Path, ...],
    as_json: bool,
    audio_dirs: tuple[Path, ...],
    media: Media,
) -> None:
    loaded = resolve_plan(plan)
    scenarios = _plan_scenarios(loaded, scripts)
    plan_set, errors = load_plans([dialplans_dir()])
    if errors:
        raise click.ClickException("\n".join(map(str, errors)))
    for path, scenario in scenarios:
        if scenario.plan not in plan_set.plans:
            raise click.ClickException(f"{path}: no plan {scenario.plan!r} under {dialplans_dir()}")
        if scenario.text_only and scripts:
            raise click.ClickException(
                f"{path}: it pins a confidence (text mode only); real audio brings its own"
            )
    text_only = [path.name for path, s in scenarios if s.text_only]
    if text_only:  # of the plan's scenarios, those that only make sense as text
        click.echo(
            f"left out (they pin a confidence, text mode only): {', '.join(text_only)}", err=True
        )
        scenarios = [(path, s) for path, s in scenarios if not s.text_only]
    folders = audio_dirs or tuple(d for d in DEFAULT_AUDIO_DIRS if d.is_dir())
    calls = asyncio.run(
        run_over_server(plan_set, scenarios, parse_vars(pairs), media, folders, dialplans_dir())
    )
    if as_json:
        docs = [to_json(c, media) for c in calls]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else {"results": docs},
                              ensure_ascii=False, indent=2))  # fmt: skip
    else:
        for c in calls:
            click.echo("\n".join(describe(c, media)) + "\n")
    if not all(c.passed for c in calls):
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
@AUDIO
@AUDIO_DIRS
def scenarios(audio: bool, audio_dirs: tuple[Path, ...]) -> None:
    """Run every shipped scenario through the engine; print the transcripts and a summary.

    With --audio, caller speech goes through the offline recognizers (see ivr simulate).
    """
    plan_set, errors = load_plans([dialplans_dir()])
    if errors:
        raise click.ClickException("\n".join(map(str, errors)))
    hearing = Hearing(audio, audio_dirs)
    results = []
    for path, scenario in _load_scenarios(scenario_files(scenarios_dir())):
        plan = plan_set.plans.get(scenario.plan)
        if plan is None:
            raise click.ClickException(f"scenario {scenario.name!r}: no plan {scenario.plan!r}")
        result = _run(plan, scenario, {}, hearing.ears(path))
        _print_result(result)
        results.append(result)
    table = Table(title="Scripted calls" + (" (audio)" if audio else ""))
    columns = ["plan", "scenario", "outcome", "end", "sms"] + (["misheard"] if audio else [])
    for column in [*columns, "result"]:
        table.add_column(column)
    for r in results:
        row = [r.call.plan.id, r.scenario.name, r.call.session.outcome or "-",
               r.call.session.end_reason or "-", str(len(r.call.sms))]  # fmt: skip
        if audio:
            row.append(_misheard(r))
        table.add_row(*row, "passed" if r.passed else "[red]FAILED[/red]")
    # Pipes and CI logs get a wide table rather than one wrapped into unreadable columns.
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    if not all(r.passed for r in results):
        sys.exit(1)


@click.command()
@click.option(
    "--console",
    "serve_console",
    is_flag=True,
    help="Keep the server running afterwards, with the campaign in the operator console.",
)
@click.option("--port", type=int, default=None, help="Port of the server (default: a free one).")
@MEDIA
def demo(serve_console: bool, port: int | None, media: Media) -> None:
    """A reminder campaign end to end: server, scheduler, simulated phones, offline speech.

    The server hears callers live over Media Streams (--media stream, the default: barge-in,
    real-time audio frames) or with <Gather>/<Record> (--media record).
    """
    if not campaign_demo(Path.cwd(), serve_console, port, media):
        sys.exit(1)


COMMANDS = (simulate, call, scenarios, demo)
