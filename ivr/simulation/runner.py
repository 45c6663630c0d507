"""Running a scenario through the engine and checking what it expects.

How the caller's turns become events is injected (``Ears``): as text (what they say is
what was recognized) for ``ivr simulate``, or through real audio and the real recognizers
for ``ivr simulate --audio``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.dialplan.schema import Plan
from ivr.dialplan.variables import coerce_variables
from ivr.dialplan.vocabulary import (
    CallerHungUp,
    Event,
    KeysPressed,
    Listen,
    LookupFinished,
    NoInput,
    SpeechRecognized,
)
from ivr.integrations.lookups import ScriptedLookups, http_lookup
from ivr.simulation.call import Line, LookupResolver, SimulatedCall
from ivr.simulation.scenario import Expectations, Scenario, Turn

DEFAULT_CALLER = "+12025550111"
DEFAULT_CALLED = "+12025550100"


class ScenarioError(Exception):
    """The scenario cannot be run as written (not: the plan misbehaved)."""


@dataclass(frozen=True)
class Heard:
    """One caller turn as the robot received it."""

    event: Event
    caller: str | None = None  # the caller's transcript line; None: described from the event
    notes: tuple[Line, ...] = ()  # what a recognizer made of it, shown under the caller's line


Ears = Callable[[Turn, Listen | None, Plan], Heard]


def text_ears(turn: Turn, listening: Listen | None, plan: Plan) -> Heard:
    """Caller turns as text: what they say is recognized with the turn's confidence (default 1)."""
    del listening, plan  # text needs no grammar and no language
    if turn.say is not None:
        return Heard(SpeechRecognized(turn.say, turn.confidence))
    if turn.press is not None:
        return Heard(KeysPressed(turn.press))
    if turn.silence:
        return Heard(NoInput())
    if turn.hangup:
        return Heard(CallerHungUp())
    raise ScenarioError(f"audio {turn.audio!r}: run with --audio to use the recognizers")


@dataclass
class ScenarioResult:
    scenario: Scenario
    call: SimulatedCall
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        session = self.call.session
        return {
            "plan": self.call.plan.id,
            "scenario": self.scenario.name,
            "passed": self.passed,
            "failures": self.failures,
            "outcome": session.outcome,
            "end": session.end_reason,
            "sms": self.call.sms,
            "transfer": self.call.transfer,
            "states": self.call.states,
            "intents": self.call.intents,
            # ``--audio``: what the recognizer made of each spoken turn (also in the transcript)
            "recognitions": [line.data for line in self.call.lines if line.kind == "heard"],
            "variables": session.variables,
            "transcript": [line.to_json() for line in self.call.lines],
        }


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _robot_text(lines: list[Line]) -> str:
    return " ".join(line.text for line in lines if line.kind in ("robot", "play"))


def _check_turn(n: int, turn: Turn, new: list[Line], failures: list[str]) -> None:
    understood = [line.data for line in new if line.kind == "understood"]
    got = understood[0] if understood else {}
    if turn.intent is not None and got.get("intent") != turn.intent:
        failures.append(f"turn {n}: expected intent {turn.intent!r}, got {got.get('intent')!r}")
    if turn.digits is not None and got.get("digits") != turn.digits:
        failures.append(f"turn {n}: expected digits {turn.digits!r}, got {got.get('digits')!r}")


@dataclass(frozen=True)
class CallFacts:
    """What a finished call did, however it was run (in-process, or over HTTP)."""

    outcome: str | None
    end: str | None
    transfer: str | None
    sms: list[str]
    said: str
    states: list[str]


def facts_of(call: SimulatedCall) -> CallFacts:
    session, said = call.session, _robot_text(call.lines)
    ending = (session.outcome, session.end_reason, call.transfer)
    return CallFacts(*ending, call.sms, said, call.states)


def check_expectations(expect: Expectations, facts: CallFacts) -> list[str]:
    """Every way ``facts`` differ from what the scenario expects, as sentences."""
    failures = []
    if expect.outcome is not None and facts.outcome != expect.outcome:
        failures.append(f"expected outcome {expect.outcome!r}, got {facts.outcome!r}")
    if expect.end is not None and facts.end != expect.end:
        failures.append(f"expected the call to end by {expect.end}, got {facts.end}")
    if expect.transfer is not None and facts.transfer != expect.transfer:
        failures.append(f"expected a transfer to {expect.transfer}, got {facts.transfer}")
    if expect.sms is not None:
        if not expect.sms and facts.sms:
            failures.append(f"expected no SMS, got {facts.sms}")
        for text in expect.sms:
            if not any(_normal(text) in _normal(sms) for sms in facts.sms):
                failures.append(f"expected an SMS containing {text!r}, got {facts.sms}")
    said = _normal(facts.said)
    failures += [f"expected the robot to say {t!r}" for t in expect.said if _normal(t) not in said]
    visited = iter(facts.states)
    if not all(state in visited for state in expect.states):
        failures.append(f"expected states {expect.states} in order, visited {facts.states}")
    return failures


def run_scenario(
    plan: Plan,
    scenario: Scenario,
    *,
    variables: dict[str, Any] | None = None,
    ears: Ears = text_ears,
    lookup: LookupResolver | None = None,
) -> ScenarioResult:
    """Run ``scenario`` against ``plan``; variables given here override the scenario's."""
    values = coerce_variables(plan, {**scenario.variables, **(variables or {})})
    values["caller"] = scenario.caller or DEFAULT_CALLER
    values["called"] = scenario.called or (plan.numbers[0] if plan.numbers else DEFAULT_CALLED)
    scripted = None
    if lookup is None and scenario.lookups is not None:
        scripted = ScriptedLookups(LookupFinished(a.status, a.data) for a in scenario.lookups)
    call = SimulatedCall(plan, values, lookup or scripted or http_lookup, scenario.answered_by)
    result = ScenarioResult(scenario, call)
    call.answer()
    mark = 0
    for n, turn in enumerate(scenario.turns, 1):
        said = _normal(_robot_text(call.lines[mark:]))
        for text in turn.expect:
            if _normal(text) not in said:
                result.failures.append(f"turn {n}: expected the robot to say {text!r}")
        if not turn.acts:
            continue
        if call.ended:
            result.failures.append(f"turn {n}: the call already ended ({call.session.end_reason})")
            break
        mark = len(call.lines)
        try:
            heard = ears(turn, call.listening, plan)
        except ScenarioError as exc:
            raise ScenarioError(f"turn {n}: {exc}") from exc
        new = call.send(heard.event, heard.caller, heard.notes)
        _check_turn(n, turn, new, result.failures)
    if not call.ended:
        call.send(CallerHungUp(), "hangs up (end of script)")
    if scripted is not None and scripted.missing:
        result.failures.append(f"{scripted.missing} lookup(s) had no scripted answer")
    result.failures += check_expectations(scenario.expect, facts_of(call))
    return result
