"""Rules that need the whole plan: targets, reachability, ways out, templates, keys.

Each finding names the line and state it is about, and every finding is reported, not just
the first, so an operator fixes a plan in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path as FsPath

import jinja2

from ivr.dialplan.recovery import phrasing
from ivr.dialplan.schema import Plan, State
from ivr.dialplan.templating import BUILTIN_NAMES, template_names
from ivr.dialplan.yamlio import Path

LOOKUP_RESULTS = ("ok", "not_found", "error")
_E164 = re.compile(r"^\+[1-9][0-9]{4,14}$")


@dataclass(frozen=True)
class Finding:
    path: Path
    state: str | None
    message: str


def check_plan(plan: Plan, audio_dir: FsPath | None = None) -> list[Finding]:
    findings: list[Finding] = []
    findings += _check_plan_fields(plan)
    for name, state in plan.states.items():
        findings += _check_state(plan, name, state, audio_dir)
    findings += _check_reachable(plan)
    findings += _check_loops(plan)
    findings += _check_templates(plan)
    return findings


def _check_plan_fields(plan: Plan) -> Iterator[Finding]:
    if plan.start not in plan.states:
        yield Finding(("start",), None, f"start state {plan.start!r} does not exist")
    if plan.direction == "inbound" and not plan.numbers:
        yield Finding(("direction",), None, "an inbound plan lists the numbers it answers")
    if plan.direction == "outbound" and plan.numbers:
        yield Finding(("numbers",), None, "only inbound plans answer numbers")


def _targets(state: State) -> Iterator[tuple[Path, str]]:
    if state.next is not None:
        yield ("next",), state.next
    for key, target in state.on.items():
        yield ("on", key), target


def _check_state(plan: Plan, name: str, state: State, audio_dir: FsPath | None) -> list[Finding]:
    at = ("states", name)
    findings = [
        Finding((*at, *path), name, f"unknown target state {target!r}")
        for path, target in _targets(state)
        if target not in plan.states
    ]
    if state.listen is not None:
        findings += _check_listen(plan, name, state)
    elif state.lookup is not None:
        findings += _check_lookup(name, state)
    elif state.on:
        findings.append(
            Finding((*at, "on"), name, "on: only a state that listens or looks up has transitions")
        )
    ends = [field for field in ("hangup", "transfer") if getattr(state, field)]
    if ends and state.next is not None:
        findings.append(Finding((*at, "next"), name, f"next is never reached after {ends[0]}"))
    waits = state.listen is not None or state.lookup is not None
    if not (waits or ends or state.next is not None):
        findings.append(
            Finding(at, name, "no way out: add next, hangup, transfer, listen or lookup")
        )
    if state.transfer is not None and "{" not in state.transfer and not _E164.match(state.transfer):
        findings.append(
            Finding((*at, "transfer"), name, f"transfer: {state.transfer!r} is not E.164")
        )
    if state.play is not None and audio_dir is not None and not (audio_dir / state.play).is_file():
        findings.append(Finding((*at, "play"), name, f"play: no file {state.play!r} in audio/"))
    return findings


def _check_listen(plan: Plan, name: str, state: State) -> Iterator[Finding]:
    listen = state.listen
    assert listen is not None
    at = ("states", name)
    if listen.digits is not None:
        if listen.digits.confirm == "always" and phrasing(plan.language) is None:
            yield Finding(
                (*at, "listen", "digits", "confirm"),
                name,
                f"confirm: no read-back phrases for language {plan.language!r}: use never",
            )
        if state.next is None:
            yield Finding((*at, "listen"), name, "digit collection needs next: (where to go)")
        for key in state.on:
            if key != "failed":
                yield Finding((*at, "on", key), name, f"on: {key!r}: digits only have failed")
    else:
        keys: dict[str, str] = {}
        for intent_name, intent in listen.intents.items():
            path = (*at, "listen", "intents", intent_name)
            if not intent.say and intent.press is None:
                yield Finding(path, name, f"intent {intent_name!r} has neither phrases nor keys")
            if intent.press is not None:
                if (other := keys.get(intent.press)) is not None:
                    yield Finding(
                        path,
                        name,
                        f"key {intent.press!r} is bound to both {other!r} and {intent_name!r}",
                    )
                keys[intent.press] = intent_name
            if intent_name not in state.on and intent_name != "repeat":
                yield Finding(path, name, f"intent {intent_name!r} has no transition in on:")
        for key in state.on:
            if key != "failed" and key not in listen.intents:
                yield Finding((*at, "on", key), name, f"on: {key!r} is not an intent of this state")
        if state.next is not None:
            yield Finding(
                (*at, "next"), name, "next is not used when listening for intents: use on"
            )
    if "failed" not in state.on:
        yield Finding(
            (*at, "listen"), name, f"no failed: transition (after {listen.retries} retries)"
        )


def _check_lookup(name: str, state: State) -> Iterator[Finding]:
    at = ("states", name)
    for key in state.on:
        if key not in LOOKUP_RESULTS:
            yield Finding((*at, "on", key), name, f"on: {key!r}: a lookup has ok, not_found, error")
    for required in ("ok", "error"):
        if required not in state.on:
            yield Finding((*at, "lookup"), name, f"lookup needs an on: {required} transition")
    if state.next is not None:
        yield Finding((*at, "next"), name, "next is not used after a lookup: use on")


def _check_reachable(plan: Plan) -> Iterator[Finding]:
    if plan.start not in plan.states:
        return
    seen, todo = {plan.start}, [plan.start]
    while todo:
        for _, target in _targets(plan.states[todo.pop()]):
            if target in plan.states and target not in seen:
                seen.add(target)
                todo.append(target)
    for name in plan.states:
        if name not in seen:
            yield Finding(
                ("states", name), name, f"unreachable: no way leads here from {plan.start!r}"
            )


def _waits(state: State) -> bool:
    """True when the call stops in ``state`` (for the caller, a lookup, or for good)."""
    return bool(state.listen or state.lookup or state.hangup or state.transfer)


def _check_loops(plan: Plan) -> Iterator[Finding]:
    """States that lead back to themselves by ``next`` alone never wait for the caller."""
    reported: set[str] = set()
    for first in plan.states:
        if _waits(plan.states[first]):
            continue
        chain, name = [first], plan.states[first].next
        while name in plan.states and name not in chain:
            state = plan.states[name]
            if _waits(state):
                break
            chain.append(name)
            name = state.next
        if name == first and first not in reported:
            reported.update(chain)
            loop = " -> ".join([*chain, first])
            yield Finding(("states", first), first, f"loop without waiting for the caller: {loop}")


def _templates(plan: Plan) -> Iterator[tuple[Path, str | None, str]]:
    for field in ("fallback_sms", "voicemail"):
        if (source := getattr(plan, field)) is not None:
            yield (field,), None, source
    for name, state in plan.states.items():
        at = ("states", name)
        for var, source in state.set.items():
            yield (*at, "set", var), name, source
        for field in ("say", "sms", "transfer"):
            if (source := getattr(state, field)) is not None:
                yield (*at, field), name, source
        if state.listen is not None:
            for field in ("no_input", "no_match", "key_hint"):
                if (source := getattr(state.listen, field)) is not None:
                    yield (*at, "listen", field), name, source
        if state.lookup is not None:
            yield (*at, "lookup", "url"), name, state.lookup.url
            for key, source in state.lookup.params.items():
                yield (*at, "lookup", "params", key), name, source


def known_variables(plan: Plan) -> set[str]:
    names = set(plan.variables) | set(BUILTIN_NAMES)
    for state in plan.states.values():
        names |= set(state.set)
        if state.lookup is not None:
            names.add(state.lookup.into)
        if state.listen is not None and state.listen.digits is not None:
            names.add(state.listen.into)
    return names


def _check_templates(plan: Plan) -> Iterator[Finding]:
    known = known_variables(plan)
    for path, state, source in _templates(plan):
        try:
            used = template_names(source, plan.language)
        except jinja2.TemplateSyntaxError as exc:
            yield Finding(path, state, f"template: {exc.message}")
            continue
        for name in sorted(used - known):
            yield Finding(path, state, f"template uses undeclared variable {name!r}")
