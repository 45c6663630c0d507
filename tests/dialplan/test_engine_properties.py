"""Random callers on every shipped plan: the engine never raises and every call ends.

A caller here presses random keys, says the plan's own phrases mixed with random words at
random confidence, stays silent, and the integrator answers lookups with random JSON. Some
events arrive when the call is not waiting for them (late or repeated webhooks): those must
change nothing. Every call must end within ``max_turns + 2`` expected events (the answer,
``max_turns`` turns, and the one that goes over) plus the unexpected ones. Some callers keep
asking to hear it again and some plans get a small ``max_turns``, so that random calls also
run into that limit.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.dialplan.digits import digit_words
from ivr.dialplan.engine import step
from ivr.dialplan.loader import load_plan
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session, Waiting, new_session
from ivr.dialplan.vocabulary import (
    Action,
    CallAnswered,
    CallerHungUp,
    Event,
    HangUp,
    KeysPressed,
    Listen,
    Lookup,
    LookupFinished,
    NoInput,
    Note,
    Output,
    Problem,
    SpeechRecognized,
    Transfer,
)
from tests.dialplan.support import SHIPPED_PLANS

KEYPAD = "0123456789*#"
NOISE = 6  # events a call may get while not waiting for them
OUTPUT_TYPES = (*typing.get_args(Action), *typing.get_args(Note))
SAMPLE_VALUES = {
    "str": "Sam",
    "datetime": "2026-11-24T10:00:00",
    "date": "2026-11-24",
    "time": "10:00:00",
    "digits": "4207",
    "phone": "+12025550123",
    "int": 3,
    "float": 2.5,
    "money": "12.50",
    "bool": True,
    "json": {"a": 1},
}

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@cache
def plan_at(path: Path) -> Plan:
    plan, errors = load_plan(path)
    assert errors == []
    assert plan is not None
    return plan


def variables_for(plan: Plan) -> dict[str, Any]:
    return {
        name: spec.default if spec.default is not None else SAMPLE_VALUES[spec.type]
        for name, spec in plan.variables.items()
    }


def phrases_of(plan: Plan) -> list[str]:
    phrases = {
        phrase
        for state in plan.states.values()
        if state.listen is not None
        for intent in state.listen.intents.values()
        for phrase in intent.say
    }
    return sorted(phrases | set(digit_words(plan.language)))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@dataclasses.dataclass(frozen=True)
class Caller:
    """Strategies for the events of one plan, by what the call waits for."""

    answer: st.SearchStrategy[Event]
    input: st.SearchStrategy[Event]
    lookup: st.SearchStrategy[Event]
    repeat: st.SearchStrategy[Event]  # "say that again" by key or phrase, keeps a call going

    def expected(self, waiting: Waiting) -> st.SearchStrategy[Event]:
        return {"answer": self.answer, "input": self.input, "lookup": self.lookup}[waiting]

    def unexpected(self, waiting: Waiting) -> st.SearchStrategy[Event]:
        kinds = {"answer": self.answer, "input": self.input, "lookup": self.lookup}
        return st.one_of(*(s for name, s in kinds.items() if name != waiting))


@cache
def caller_for(path: Path) -> Caller:
    plan = plan_at(path)
    word = st.sampled_from(phrases_of(plan)) | st.text(
        alphabet=st.characters(categories=["L", "N", "Zs"]), max_size=6
    )
    speech = st.builds(
        SpeechRecognized,
        text=st.lists(word, max_size=3).map(" ".join),
        confidence=st.floats(min_value=0.0, max_value=1.0),
    )
    keys = st.builds(KeysPressed, st.text(alphabet=KEYPAD, max_size=11))
    data = st.fixed_dictionaries(
        {}, optional={"status": JSON, "name": JSON, "eta": JSON, "": JSON, "ключ": JSON}
    )
    repeats: list[Event] = []
    for state in plan.states.values():
        if state.listen is not None and (intent := state.listen.intents.get("repeat")):
            repeats += [SpeechRecognized(phrase) for phrase in intent.say]
            repeats += [KeysPressed(intent.press)] if intent.press else []
    return Caller(
        repeat=st.sampled_from(repeats),
        answer=st.builds(CallAnswered, st.sampled_from(["human", "machine", "unknown"])),
        input=st.one_of(keys, speech, st.just(NoInput())),
        lookup=st.builds(LookupFinished, st.sampled_from(["ok", "not_found", "error"]), data),
    )


def expected_event(waiting: Waiting, event: Event) -> bool:
    kinds: dict[str, tuple[type, ...]] = {
        "answer": (CallAnswered,),
        "input": (KeysPressed, SpeechRecognized, NoInput),
        "lookup": (LookupFinished,),
        "done": (),
    }
    return isinstance(event, (CallerHungUp, *kinds[waiting]))


def checked_step(plan: Plan, s: Session, event: Event) -> tuple[Session, list[Output]]:
    """One step, with the properties every step must have."""
    before = s.model_copy(deep=True)
    new, out = step(plan, s, event)
    assert s == before, "step changed its input session"
    assert all(isinstance(o, OUTPUT_TYPES) for o in out), out
    # The session survives a restart: resumed from JSON, the same event gives the same result.
    assert Session.from_json(new.to_json()) == new
    assert step(plan, Session.from_json(s.to_json()), event) == (new, out)
    if not expected_event(s.waiting, event):
        assert out == [Problem(s.state, f"{type(event).__name__} while waiting for {s.waiting}")]
        assert new == s
    elif isinstance(event, CallerHungUp):
        assert (out, new.waiting, new.end_reason) == ([], "done", "caller_hangup")
    elif new.waiting == "input":
        assert isinstance(out[-1], Listen)
        assert out[-1].state == new.state
    elif new.waiting == "lookup":
        assert isinstance(out[-1], Lookup)
    else:
        assert isinstance(out[-1], HangUp | Transfer)
    if s.waiting in ("input", "lookup") and expected_event(s.waiting, event):
        assert new.turns == s.turns + (not isinstance(event, CallerHungUp))
    else:
        assert new.turns == s.turns
    return new, out


@pytest.mark.parametrize("path", SHIPPED_PLANS, ids=[p.stem for p in SHIPPED_PLANS])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_random_callers_never_break_a_call(path: Path, data: st.DataObject) -> None:
    caller = caller_for(path)
    plan = plan_at(path)
    # A small max_turns makes random calls run into it, wherever they are.
    if (max_turns := data.draw(st.none() | st.integers(1, 8), label="max_turns")) is not None:
        plan = plan.model_copy(update={"max_turns": max_turns})
    # How often, in tenths, the caller asks to hear it again (which keeps a call going).
    stubbornness = data.draw(st.integers(0, 10), label="stubbornness")
    bound = plan.max_turns + 2 + NOISE
    hang_up_at = data.draw(st.none() | st.integers(0, bound), label="hang up at")
    s = new_session(plan.id, variables_for(plan))
    noise = NOISE
    for count in range(bound):
        if s.ended:
            break
        if count == hang_up_at:
            event: Event = CallerHungUp()
        elif noise and data.draw(st.booleans(), label="late webhook"):
            noise -= 1
            event = data.draw(caller.unexpected(s.waiting), label="unexpected")
        elif s.waiting == "input" and data.draw(st.integers(1, 10)) <= stubbornness:
            event = data.draw(caller.repeat, label="repeat")
        else:
            event = data.draw(caller.expected(s.waiting), label="event")
        s, _ = checked_step(plan, s, event)
    assert s.ended, f"not over after {bound} events: {s}"
    assert s.end_reason in ("hangup", "transfer", "voicemail", "caller_hangup", "max_turns")
    assert s.turns <= plan.max_turns + 1
    hypothesis.event(f"ended by {s.end_reason}")
    hypothesis.event(f"max_turns reached: {s.end_reason == 'max_turns'}")
    # After the end every event is ignored.
    event = data.draw(caller.input | caller.answer | caller.lookup, label="after the end")
    after, out = step(plan, s, event)
    assert after == s
    assert out == [Problem(s.state, f"{type(event).__name__} after the call ended: ignored")]


@pytest.mark.parametrize("path", SHIPPED_PLANS, ids=[p.stem for p in SHIPPED_PLANS])
def test_a_caller_who_keeps_asking_to_repeat_is_hung_up_after_max_turns(path: Path) -> None:
    plan = plan_at(path)
    start = plan.states[plan.start]
    listening = start if start.listen is not None else plan.states[start.next or ""]
    assert listening.listen is not None
    repeat = listening.listen.intents["repeat"]
    assert repeat.press is not None
    s, _ = checked_step(plan, new_session(plan.id, variables_for(plan)), CallAnswered())
    for _ in range(plan.max_turns):
        s, out = checked_step(plan, s, KeysPressed(repeat.press))
        assert not s.ended
    s, out = checked_step(plan, s, KeysPressed(repeat.press))
    assert out == [Problem(s.state, f"more than {plan.max_turns} turns: hanging up"), HangUp()]
    assert (s.end_reason, s.turns) == ("max_turns", plan.max_turns + 1)
