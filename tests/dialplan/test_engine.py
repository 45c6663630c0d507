"""The pure engine: ``step(plan, session, event) -> (session, outputs)``."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ivr.dialplan.engine import MAX_HOPS, step
from ivr.dialplan.loader import load_plan, load_plan_text
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session, Waiting, new_session
from ivr.dialplan.vocabulary import (
    CallAnswered,
    CallerHungUp,
    Entered,
    Event,
    HangUp,
    KeysPressed,
    Listen,
    Lookup,
    LookupFinished,
    NoInput,
    Output,
    Play,
    Problem,
    Say,
    SendSms,
    SetOutcome,
    SpeechRecognized,
    Transfer,
    Understood,
)
from tests.dialplan.support import DIALPLANS

REMINDER_VARS = {"name": "Ann", "clinic": "Northside Clinic", "when": "2026-11-24T10:00:00"}
GREETING = (
    "Hello Ann. This is Northside Clinic. Your appointment is on Tuesday, November 24 at 10:00 AM."
)
QUESTION = "Say yes to confirm, no to cancel, or repeat. You can also press 1, 2 or 3."
MENU = (
    "Thank you for calling Northside Shop. To check an order, say order or press 1. "
    "To speak to someone, say operator or press 0."
)
REMINDER_KEYS = "You can also press 1 for yes, 2 for no, 3 for repeat, or 9 for stop."
KEYPAD = "You can also type the number on your keypad."
ASK_NUMBER = "Please say or type your order number, then press pound."
SHOP_VARS = {"shop": "Northside Shop", "operator": "+12025550123", "orders_api": "http://crm.test"}


@cache
def shipped(plan_id: str) -> Plan:
    plan, errors = load_plan(DIALPLANS / f"{plan_id}.yaml")
    assert errors == []
    assert plan is not None
    return plan


def inline(text: str) -> Plan:
    return load_plan_text(textwrap.dedent(text))


def unvalidated(data: dict[str, Any]) -> Plan:
    """A plan that passed the schema but skipped the whole-plan checks."""
    return Plan.model_validate({"direction": "outbound", "language": "en-US", **data})


def run(
    plan: Plan,
    events: Sequence[Event],
    variables: dict[str, Any] | None = None,
    session: Session | None = None,
) -> tuple[Session, list[list[Output]]]:
    s = session if session is not None else new_session(plan.id, variables)
    steps = []
    for event in events:
        s, out = step(plan, s, event)
        steps.append(out)
    return s, steps


def said(out: Sequence[Output]) -> list[str]:
    return [o.text for o in out if isinstance(o, Say)]


def entered(out: Sequence[Output]) -> list[str]:
    return [o.state for o in out if isinstance(o, Entered)]


def problems(out: Sequence[Output]) -> list[str]:
    return [o.message for o in out if isinstance(o, Problem)]


def heard_of(event: KeysPressed | SpeechRecognized) -> tuple[str, float]:
    if isinstance(event, KeysPressed):
        return event.keys, 1.0
    return event.text, event.confidence


def listen_of(plan: Plan, state: str) -> Listen:
    spec = plan.states[state].listen
    assert spec is not None
    return Listen(state, spec, plan.language)


def reminder_at_question(*events: Event) -> tuple[Session, list[list[Output]]]:
    return run(shipped("appointment_reminder"), [CallAnswered(), *events], REMINDER_VARS)


def shop_at(*events: Event) -> tuple[Session, list[list[Output]]]:
    return run(shipped("order_status_line"), [CallAnswered(), *events], SHOP_VARS)


# -- answering ----------------------------------------------------------------------------------


def test_human_answer_greets_and_listens() -> None:
    plan = shipped("appointment_reminder")
    s, [out] = reminder_at_question()
    assert out == [
        Entered("greet", None, "answered"),
        Say(GREETING, "en-US"),
        Entered("ask", "greet", "next"),
        Say(QUESTION, "en-US"),
        listen_of(plan, "ask"),
    ]
    assert (s.state, s.waiting, s.answered_by, s.turns, s.retries) == (
        "ask",
        "input",
        "human",
        0,
        0,
    )
    assert s.variables == REMINDER_VARS


def test_unknown_answerer_is_treated_as_a_person() -> None:
    s, [out] = run(shipped("appointment_reminder"), [CallAnswered("unknown")], REMINDER_VARS)
    assert said(out) == [GREETING, QUESTION]
    assert (s.answered_by, s.waiting) == ("unknown", "input")


def test_machine_answer_plays_voicemail_and_hangs_up() -> None:
    s, [out] = run(shipped("appointment_reminder"), [CallAnswered("machine")], REMINDER_VARS)
    assert out == [
        Say(
            "Hello Ann, this is Northside Clinic reminding you of your appointment on "
            "Tuesday, November 24 at 10:00 AM. We will also send you a text message. Goodbye.",
            "en-US",
        ),
        SetOutcome("voicemail"),
        HangUp(),
    ]
    assert (s.outcome, s.end_reason, s.waiting, s.answered_by, s.state) == (
        "voicemail",
        "voicemail",
        "done",
        "machine",
        None,
    )


def test_machine_answer_without_voicemail_text_just_hangs_up() -> None:
    plan = inline(
        """
        id: quiet
        direction: outbound
        language: en-US
        start: s
        states:
          s: {say: Hi, hangup: true}
        """
    )
    s, [out] = run(plan, [CallAnswered("machine")])
    assert out == [SetOutcome("voicemail"), HangUp()]
    assert (s.outcome, s.end_reason) == ("voicemail", "voicemail")


def test_inbound_plan_ignores_machine_detection() -> None:
    plan = shipped("order_status_line")
    s, [out] = run(plan, [CallAnswered("machine")], SHOP_VARS)
    assert out == [Entered("menu", None, "answered"), Say(MENU, "en-US"), listen_of(plan, "menu")]
    assert (s.waiting, s.outcome, s.answered_by) == ("input", None, "machine")


# -- intents ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "intent", "outcome"),
    [
        (KeysPressed("1"), "confirm", "confirmed"),
        (KeysPressed("2#"), "cancel", "cancelled"),
        (SpeechRecognized("Yes, that's right", 0.9), "confirm", "confirmed"),
        (SpeechRecognized("no stop calling me", 0.8), "stop", "opted_out"),
        (SpeechRecognized("I can't come", 0.5), "cancel", "cancelled"),
    ],
)
def test_intent_leads_to_its_state(
    event: KeysPressed | SpeechRecognized, intent: str, outcome: str
) -> None:
    s, [_, out] = reminder_at_question(event)
    heard, confidence = heard_of(event)
    assert out[0] == Understood("ask", intent, None, heard, confidence)
    assert out[1] == Entered(
        {"confirmed": "confirmed", "cancelled": "cancelled", "opted_out": "opt_out"}[outcome],
        "ask",
        f"intent {intent}",
    )
    assert out[-2:] == [SetOutcome(outcome), HangUp()]
    assert (s.outcome, s.end_reason, s.waiting, s.turns) == (outcome, "hangup", "done", 1)


def test_mapped_repeat_replays_the_greeting() -> None:
    plan = shipped("appointment_reminder")
    s, [first, again] = reminder_at_question(SpeechRecognized("say that again"))
    assert again[0] == Understood("ask", "repeat", None, "say that again", 1.0)
    assert again[1:] == [
        Entered("greet", "ask", "intent repeat"),
        Say(GREETING, "en-US"),
        Entered("ask", "greet", "next"),
        Say(QUESTION, "en-US"),
        listen_of(plan, "ask"),
    ]
    assert again[2:] == first[1:]
    assert (s.state, s.waiting, s.turns) == ("ask", "input", 1)


def test_unmapped_repeat_replays_the_last_prompt() -> None:
    plan = shipped("delivery_notice")
    variables = {
        "name": "Bo",
        "company": "Fast Post",
        "slot_start": "2026-11-24T09:00:00",
        "slot_end": "2026-11-24T11:00:00",
        "order": "5521",
    }
    s, [first, once, twice] = run(
        plan, [CallAnswered(), KeysPressed("3"), SpeechRecognized("again please")], variables
    )
    assert said(first) == [
        "Hello Bo, this is Fast Post. Your order five five two one will be delivered on "
        "Tuesday, November 24 between 9:00 AM and 11:00 AM.",
        "To keep this time, say yes or press 1. For another day, say another day or press 2.",
    ]
    assert once == [
        Understood("ask", "repeat", None, "3", 1.0),
        Say(said(first)[1], "en-US"),
        listen_of(plan, "ask"),
    ]
    assert twice[1:] == once[1:]
    assert (s.state, s.retries, s.turns) == ("ask", 0, 2)


def test_unmapped_repeat_replays_a_played_prompt_or_only_listens() -> None:
    plan = inline(
        """
        id: menu
        direction: outbound
        language: en-US
        start: played
        states:
          played:
            play: menu.wav
            listen:
              intents:
                go: {say: [go]}
                repeat: {say: [repeat]}
            on: {go: silent, failed: silent}
          silent:
            listen:
              intents:
                end: {press: "1"}
                repeat: {press: "2"}
            on: {end: bye, failed: bye}
          bye:
            hangup: true
        """
    )
    s, [first, again, _, silent_again] = run(
        plan,
        [CallAnswered(), SpeechRecognized("repeat"), SpeechRecognized("go"), KeysPressed("2")],
    )
    assert first[1:] == [Play("menu.wav"), listen_of(plan, "played")]
    assert again[1:] == first[1:]
    assert silent_again == [
        Understood("silent", "repeat", None, "2", 1.0),
        listen_of(plan, "silent"),
    ]
    assert s.state == "silent"


# -- retries ------------------------------------------------------------------------------------


def test_no_input_and_no_match_apologise_then_re_prompt_then_fail() -> None:
    plan = shipped("appointment_reminder")
    s, [_, no_input, no_match, failed] = reminder_at_question(
        NoInput(), SpeechRecognized("what is this about"), NoInput()
    )
    assert no_input == [
        Say("Sorry, I did not hear you.", "en-US"),
        Say(QUESTION, "en-US"),
        listen_of(plan, "ask"),
    ]
    assert no_match == [
        Understood("ask", None, None, "what is this about", 1.0),
        Say("Sorry, I did not understand.", "en-US"),
        Say(REMINDER_KEYS, "en-US"),
        Say(QUESTION, "en-US"),
        listen_of(plan, "ask"),
    ]
    assert failed == [
        Entered("goodbye", "ask", "failed after no input"),
        Say(
            "We could not get your answer. We will send you a text message instead. Goodbye.",
            "en-US",
        ),
        SendSms(
            "Northside Clinic: your visit is on Tuesday, November 24 at 10:00 AM. "
            "Reply C to confirm or X to cancel."
        ),
        SetOutcome("no_answer"),
        HangUp(),
    ]
    assert (s.outcome, s.state, s.end_reason, s.turns) == ("no_answer", "goodbye", "hangup", 3)


def test_retries_are_counted_per_state() -> None:
    s, _ = reminder_at_question(NoInput())
    assert s.retries == 1
    s, _ = reminder_at_question(NoInput(), NoInput())
    assert s.retries == 2
    s, _ = reminder_at_question(NoInput(), KeysPressed("3"))  # repeat enters greet again
    assert (s.state, s.retries) == ("ask", 0)


def test_failed_after_no_match_names_the_reason() -> None:
    _, steps = reminder_at_question(KeysPressed("7"), KeysPressed("*"), KeysPressed("#"))
    assert steps[-1][0] == Understood("ask", None, None, "#", 1.0)
    assert steps[-1][1] == Entered("goodbye", "ask", "failed after no match")


def test_re_prompt_without_apology_text() -> None:
    plan = shipped("order_status_line")
    s, steps = shop_at(KeysPressed("1"), KeysPressed("4207#"), LookupFinished("error"), NoInput())
    assert entered(steps[3]) == ["lookup_failed", "offer_operator"]
    offer = "Would you like to speak to someone? Say yes or press 1, or say no or press 2."
    assert steps[4] == [Say(offer, "en-US"), listen_of(plan, "offer_operator")]
    s, _ = step(plan, s, SpeechRecognized("no thanks"))
    assert (s.state, s.end_reason) == ("goodbye", "hangup")


def test_low_confidence_speech_is_no_match() -> None:
    s, [_, low, enough] = reminder_at_question(
        SpeechRecognized("yes", 0.49), SpeechRecognized("yes", 0.5)
    )
    assert low[0] == Understood("ask", None, None, "yes", 0.49)
    assert said(low) == ["Sorry, I did not understand.", REMINDER_KEYS, QUESTION]
    assert enough[0] == Understood("ask", "confirm", None, "yes", 0.5)
    assert s.outcome == "confirmed"


def test_tied_phrases_are_no_match() -> None:
    # "no" (cancel) and "stop" (stop) are equally long: the caller is asked again.
    s, [_, out] = reminder_at_question(SpeechRecognized("no stop"))
    assert out[0] == Understood("ask", None, None, "no stop", 1.0)
    assert (s.state, s.retries) == ("ask", 1)


# -- digits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "digits"),
    [
        (KeysPressed("4207#"), "4207"),
        (KeysPressed("42#07"), None),
        (KeysPressed("123456789012"), "1234567890"),
        (KeysPressed("12345#678"), "12345"),
        (KeysPressed("4*2*0*7"), "4207"),
        (SpeechRecognized("four two oh seven"), "4207"),
        (SpeechRecognized("my order is double four five six", 0.85), "4456"),
        (SpeechRecognized("zero one two three four five six seven eight nine ten"), "0123456789"),
        (SpeechRecognized("four two"), None),
        (SpeechRecognized("I do not know"), None),
        (SpeechRecognized("four two oh seven", 0.2), None),
    ],
)
def test_digit_collection(event: KeysPressed | SpeechRecognized, digits: str | None) -> None:
    plan = shipped("order_status_line")
    s, steps = shop_at(KeysPressed("1"), event)
    out = steps[-1]
    heard, confidence = heard_of(event)
    assert out[0] == Understood("ask_number", None, digits, heard, confidence)
    if digits is None:
        # a spoken answer turned away also reminds the caller of the keypad
        hint = [Say(KEYPAD, "en-US")] if isinstance(event, SpeechRecognized) else []
        assert out[1:] == [
            Say("Sorry, an order number has 4 to 10 digits.", "en-US"),
            *hint,
            Say(ASK_NUMBER, "en-US"),
            listen_of(plan, "ask_number"),
        ]
        assert "order_number" not in s.variables
        assert (s.state, s.retries) == ("ask_number", 1)
    else:
        assert out[1:] == [
            Entered("find_order", "ask_number", f"digits {digits}"),
            Lookup("GET", f"http://crm.test/orders/{digits}", {}, 3.0),
        ]
        assert s.variables["order_number"] == digits
        assert (s.state, s.waiting) == ("find_order", "lookup")


def test_digits_no_input_then_failed_path() -> None:
    _, steps = shop_at(KeysPressed("1"), NoInput(), NoInput(), NoInput())
    assert said(steps[2]) == ["Sorry, I did not hear a number.", ASK_NUMBER]
    assert entered(steps[4]) == ["offer_operator"]
    assert steps[4][0] == Entered("offer_operator", "ask_number", "failed after no input")


DIGITS_PLAN = """
id: pin
direction: outbound
language: {language}
start: ask
states:
  ask:
    listen:
      digits: {{min: 4, max: 4, finish_on: {finish}}}
      into: pin
      min_confidence: 0.6
    next: done
    on: {{failed: done}}
  done:
    say: "{{{{ pin | digits }}}}"
    hangup: true
"""


@pytest.mark.parametrize(
    ("language", "event", "pin", "spoken"),
    [
        ("ru-RU", SpeechRecognized("четыре два ноль семь"), "4207", "четыре два ноль семь"),
        ("ru-RU", SpeechRecognized("один, две, три, девять"), "1239", "один два три девять"),
        ("ko-KR", SpeechRecognized("사 이 공 칠"), "4207", "사 이 공 칠"),
        ("ko-KR", SpeechRecognized("사이공칠"), "4207", "사 이 공 칠"),
        ("ko-KR", SpeechRecognized("하나 둘 셋 넷"), "1234", "일 이 삼 사"),
        ("en-US", KeysPressed("12#34"), "1234", "one two three four"),
        ("en-US", KeysPressed("1234*"), "1234", "one two three four"),
    ],
)
def test_spoken_digits_per_language_and_finish_key(
    language: str, event: KeysPressed | SpeechRecognized, pin: str, spoken: str
) -> None:
    finish = '"*"' if isinstance(event, KeysPressed) and "*" in event.keys else "null"
    plan = load_plan_text(DIGITS_PLAN.format(language=language, finish=finish))
    s, [_, out] = run(plan, [CallAnswered(), event])
    assert out[0] == Understood("ask", None, pin, *heard_of(event))
    assert s.variables["pin"] == pin
    assert said(out) == [spoken]


def test_digits_below_the_confidence_threshold_are_no_match() -> None:
    plan = load_plan_text(DIGITS_PLAN.format(language="en-US", finish='"#"'))
    s, [_, low, ok] = run(
        plan,
        [CallAnswered(), SpeechRecognized("one two three four", 0.59), KeysPressed("1234")],
    )
    assert low == [
        Understood("ask", None, None, "one two three four", 0.59),
        Say(KEYPAD, "en-US"),
        listen_of(plan, "ask"),
    ]
    assert ok[0] == Understood("ask", None, "1234", "1234", 1.0)
    assert s.variables["pin"] == "1234"


# -- lookups ------------------------------------------------------------------------------------


def test_lookup_ok_puts_the_answer_into_variables() -> None:
    plan = shipped("order_status_line")
    s, steps = shop_at(
        KeysPressed("1"), KeysPressed("4207#"), LookupFinished("ok", {"status": "shipped"})
    )
    assert steps[-1] == [
        Entered("tell_status", "find_order", "lookup ok"),
        Say("Order four two zero seven is shipped.", "en-US"),
        SetOutcome("status_told"),
        Entered("anything_else", "tell_status", "next"),
        Say(
            "To check another order, say order or press 1. To speak to someone, say operator "
            "or press 0. Otherwise, say goodbye.",
            "en-US",
        ),
        listen_of(plan, "anything_else"),
    ]
    assert s.variables["order"] == {"status": "shipped"}
    assert (s.outcome, s.waiting) == ("status_told", "input")


def test_lookup_not_found_and_error() -> None:
    s, steps = shop_at(KeysPressed("1"), KeysPressed("4207#"), LookupFinished("not_found"))
    assert entered(steps[-1]) == ["not_found", "anything_else"]
    assert said(steps[-1])[0] == "I could not find order four two zero seven."
    assert "order" not in s.variables
    s, steps = shop_at(KeysPressed("1"), KeysPressed("4207"), LookupFinished("error", {"x": 1}))
    assert steps[-1][0] == Entered("lookup_failed", "find_order", "lookup error")
    assert said(steps[-1])[0] == "Sorry, I cannot look up orders right now."
    assert (s.outcome, s.state, "order" in s.variables) == (
        "lookup_failed",
        "offer_operator",
        False,
    )


LOOKUP_PLAN = """
id: crm
direction: inbound
language: en-US
numbers: ["+12025550100"]
variables: {api: str}
start: find
states:
  find:
    lookup:
      url: "{{ api }}/callers"
      method: POST
      params: {phone: "{{ caller }}", line: "{{ called }}"}
      timeout: 1500ms
    on: {ok: known, error: unknown}
  known:
    say: "Hello {{ result.name }}."
    hangup: true
  unknown:
    say: Hello stranger.
    hangup: true
"""


def test_lookup_posts_rendered_params_and_not_found_falls_back_to_error() -> None:
    plan = load_plan_text(LOOKUP_PLAN)
    variables = {"api": "https://crm.test", "caller": "+12025550150", "called": "+12025550100"}
    s, [out] = run(plan, [CallAnswered()], variables)
    assert out == [
        Entered("find", None, "answered"),
        Lookup(
            "POST",
            "https://crm.test/callers",
            {"phone": "+12025550150", "line": "+12025550100"},
            1.5,
        ),
    ]
    assert s.waiting == "lookup"
    ended, [missing] = run(plan, [LookupFinished("not_found")], session=s)
    assert missing[0] == Entered("unknown", "find", "lookup not_found")
    assert said(missing) == ["Hello stranger."]
    ended, [found] = run(plan, [LookupFinished("ok", {"name": "Dee"})], session=s)
    assert said(found) == ["Hello Dee."]
    assert ended.variables["result"] == {"name": "Dee"}


# -- transfer, sms, set, outcome ----------------------------------------------------------------


def test_transfer_to_the_operator() -> None:
    s, [_, out] = shop_at(SpeechRecognized("a person please"))
    assert out == [
        Understood("menu", "operator", None, "a person please", 1.0),
        Entered("transfer", "menu", "intent operator"),
        Say("Connecting you now. Please hold.", "en-US"),
        Transfer("+12025550123"),
    ]
    assert (s.waiting, s.end_reason, s.outcome) == ("done", "transfer", None)


def test_set_sms_and_outcome_run_in_order() -> None:
    plan = inline(
        """
        id: order
        direction: outbound
        language: en-US
        variables: {name: str, total: float}
        start: tell
        states:
          tell:
            set: {who: "{{ name | upper }}", amount: "{{ total | money }}"}
            say: "{{ who }}, you owe {{ amount }}."
            sms: "Pay {{ amount }} at shop.test"
            outcome: told
            next: bye
          bye:
            play: bye.wav
            outcome: done
            hangup: true
        """
    )
    s, [out] = run(plan, [CallAnswered()], {"name": "Cy", "total": 12.5})
    assert out == [
        Entered("tell", None, "answered"),
        Say("CY, you owe $12.50.", "en-US"),
        SendSms("Pay $12.50 at shop.test"),
        SetOutcome("told"),
        Entered("bye", "tell", "next"),
        Play("bye.wav"),
        SetOutcome("done"),
        HangUp(),
    ]
    assert s.variables == {"name": "Cy", "total": 12.5, "who": "CY", "amount": "$12.50"}
    assert (s.outcome, s.end_reason) == ("done", "hangup")


def test_template_failing_at_run_time_is_a_problem_and_the_call_carries_on() -> None:
    plan = inline(
        """
        id: broken
        direction: outbound
        language: en-US
        variables: {when: datetime, n: int}
        start: a
        states:
          a:
            set: {share: "{{ 100 // n }}"}
            say: "See you {{ when | date }}."
            sms: "Visit on {{ when | date }}"
            next: b
          b:
            say: Goodbye.
            hangup: true
        """
    )
    s, [out] = run(plan, [CallAnswered()], {"when": "someday", "n": 0})
    assert out == [
        Entered("a", None, "answered"),
        Problem(
            "a", "template '{{ 100 // n }}': ZeroDivisionError: integer division or modulo by zero"
        ),
        Problem(
            "a",
            "template 'See you {{ when | date }}.': "
            "ValueError: not an ISO 8601 date or time: 'someday'",
        ),
        Problem(
            "a",
            "template 'Visit on {{ when | date }}': "
            "ValueError: not an ISO 8601 date or time: 'someday'",
        ),
        Entered("b", "a", "next"),
        Say("Goodbye.", "en-US"),
        HangUp(),
    ]
    assert s.variables["share"] == ""
    assert s.end_reason == "hangup"


def test_voicemail_template_failing_still_hangs_up() -> None:
    s, [out] = run(shipped("appointment_reminder"), [CallAnswered("machine")], {"name": "Ann"})
    assert problems(out) == [
        "template "
        + repr(shipped("appointment_reminder").voicemail)
        + ": ValueError: not an ISO 8601 date or time: ''"
    ]
    assert out[1:] == [SetOutcome("voicemail"), HangUp()]
    assert s.end_reason == "voicemail"


# -- the end of a call --------------------------------------------------------------------------


def test_max_turns_ends_the_call() -> None:
    plan = inline(
        """
        id: chatty
        direction: outbound
        language: en-US
        max_turns: 3
        start: ask
        states:
          ask:
            say: Say anything.
            listen:
              intents:
                repeat: {say: [repeat]}
                done: {press: "1"}
            on: {done: bye, failed: bye}
          bye:
            hangup: true
        """
    )
    s, steps = run(plan, [CallAnswered(), *[SpeechRecognized("repeat")] * 4])
    assert [said(out) for out in steps[1:4]] == [["Say anything."]] * 3
    assert steps[4] == [Problem("ask", "more than 3 turns: hanging up"), HangUp()]
    assert (s.waiting, s.end_reason, s.turns) == ("done", "max_turns", 4)


def test_max_turns_also_bounds_lookups() -> None:
    plan = load_plan_text(LOOKUP_PLAN.replace("start: find", "max_turns: 1\nstart: find"))
    s = Session(plan_id="crm", state="find", waiting="lookup", turns=1)
    s, [out] = run(plan, [LookupFinished("ok")], session=s)
    assert out == [Problem("find", "more than 1 turns: hanging up"), HangUp()]
    assert s.end_reason == "max_turns"


@pytest.mark.parametrize(
    "event",
    [CallAnswered(), KeysPressed("1"), SpeechRecognized("yes"), NoInput(), CallerHungUp()],
)
def test_events_after_the_end_are_ignored(event: Event) -> None:
    ended, _ = reminder_at_question(KeysPressed("1"))
    after, out = step(shipped("appointment_reminder"), ended, event)
    assert out == [Problem("confirmed", f"{type(event).__name__} after the call ended: ignored")]
    assert after == ended


def test_caller_hang_up_ends_the_call_quietly() -> None:
    s, [_, out] = reminder_at_question(CallerHungUp())
    assert out == []
    assert (s.waiting, s.end_reason, s.state, s.outcome) == ("done", "caller_hangup", "ask", None)
    s, [out] = run(shipped("appointment_reminder"), [CallerHungUp()])
    assert out == []
    assert (s.waiting, s.end_reason, s.state) == ("done", "caller_hangup", None)


@pytest.mark.parametrize(
    ("events", "unexpected", "waiting"),
    [
        ([], KeysPressed("1"), "answer"),
        ([], LookupFinished("ok"), "answer"),
        ([CallAnswered()], CallAnswered(), "input"),
        ([CallAnswered()], CallAnswered("machine"), "input"),
        ([CallAnswered()], LookupFinished("ok", {"status": "lost"}), "input"),
        ([CallAnswered(), KeysPressed("1"), KeysPressed("4207")], KeysPressed("1"), "lookup"),
        ([CallAnswered(), KeysPressed("1"), KeysPressed("4207")], NoInput(), "lookup"),
        ([CallAnswered(), KeysPressed("1"), KeysPressed("4207")], CallAnswered(), "lookup"),
        (
            [CallAnswered(), KeysPressed("1"), KeysPressed("4207")],
            SpeechRecognized("operator"),
            "lookup",
        ),
    ],
)
def test_unexpected_events_change_nothing(
    events: list[Event], unexpected: Event, waiting: str
) -> None:
    plan = shipped("order_status_line")
    before, _ = run(plan, events, SHOP_VARS)
    assert before.waiting == waiting
    after, out = step(plan, before, unexpected)
    assert out == [
        Problem(before.state, f"{type(unexpected).__name__} while waiting for {waiting}")
    ]
    assert after == before


# -- purity and resuming ------------------------------------------------------------------------

SHOP_CALL: list[Event] = [
    CallAnswered(),
    SpeechRecognized("hmm", 0.9),
    KeysPressed("1"),
    SpeechRecognized("it is four two oh seven"),
    KeysPressed("9"),
    LookupFinished("ok", {"status": "on its way", "items": [1, 2.5, None, True]}),
    NoInput(),
    SpeechRecognized("another order"),
    KeysPressed("12"),
    KeysPressed("55555#"),
    LookupFinished("not_found"),
    KeysPressed("0"),
]
REMINDER_CALL: list[Event] = [
    CallAnswered(),
    NoInput(),
    SpeechRecognized("again"),
    SpeechRecognized("pardon", 0.3),
    KeysPressed("2"),
]


def test_step_does_not_modify_its_input() -> None:
    plan = shipped("order_status_line")
    s = new_session(plan.id, SHOP_VARS)
    for event in SHOP_CALL:
        snapshot = s.model_copy(deep=True)
        variables = dict(s.variables)
        new, _ = step(plan, s, event)
        assert s == snapshot
        assert s.variables == variables
        assert new is not s
        assert new.variables is not s.variables
        s = new
    assert s.end_reason == "transfer"


def test_same_events_same_outputs() -> None:
    plan = shipped("order_status_line")
    assert run(plan, SHOP_CALL, SHOP_VARS) == run(plan, SHOP_CALL, SHOP_VARS)


@pytest.mark.parametrize(
    ("plan_id", "variables", "events", "end_reason"),
    [
        ("order_status_line", SHOP_VARS, SHOP_CALL, "transfer"),
        ("appointment_reminder", REMINDER_VARS, REMINDER_CALL, "hangup"),
    ],
)
def test_a_session_resumed_from_json_behaves_the_same(
    plan_id: str, variables: dict[str, Any], events: list[Event], end_reason: str
) -> None:
    plan = shipped(plan_id)
    whole, whole_steps = run(plan, events, variables)
    assert whole.end_reason == end_reason
    for cut in range(len(events) + 1):
        head, head_steps = run(plan, events[:cut], variables)
        stored = head.to_json()
        resumed = Session.from_json(stored.encode())
        assert resumed == head
        tail, tail_steps = run(plan, events[cut:], session=resumed)
        assert head_steps + tail_steps == whole_steps
        assert tail == whole


# -- sessions and plans the validator would reject ----------------------------------------------


def test_session_on_a_state_the_plan_no_longer_has_hangs_up() -> None:
    plan = shipped("appointment_reminder")
    cases: list[tuple[Waiting, Event]] = [
        ("input", KeysPressed("1")),
        ("lookup", LookupFinished("ok")),
    ]
    for waiting, event in cases:
        s = Session(plan_id=plan.id, state="old_menu", waiting=waiting)
        after, out = step(plan, s, event)
        assert out == [
            Problem("old_menu", "no state 'old_menu' in plan 'appointment_reminder': hanging up"),
            HangUp(),
        ]
        assert (after.waiting, after.end_reason) == ("done", "error")


def test_input_for_a_state_that_no_longer_listens_is_ignored() -> None:
    plan = shipped("appointment_reminder")
    s = Session(plan_id=plan.id, state="greet", waiting="input")
    after, out = step(plan, s, SpeechRecognized("yes"))
    assert out == [Problem("greet", "input for a state that does not listen: ignored")]
    assert (after.state, after.waiting, after.turns) == ("greet", "input", 1)


def test_session_without_a_state_uses_the_start_state() -> None:
    plan = shipped("order_status_line")
    s = Session(plan_id=plan.id, state=None, waiting="input", variables=SHOP_VARS)
    after, out = step(plan, s, KeysPressed("1"))
    assert out[0] == Understood("", "order", None, "1", 1.0)
    assert out[1] == Entered("ask_number", None, "intent order")
    assert after.state == "ask_number"


def test_lookup_result_for_a_state_that_no_longer_looks_up() -> None:
    plan = shipped("appointment_reminder")
    s = Session(plan_id=plan.id, state="ask", waiting="lookup")
    after, out = step(plan, s, LookupFinished("ok", {"a": 1}))
    assert after.variables == {"result": {"a": 1}}
    assert out == [Problem("ask", "no state None to go to: hanging up"), HangUp()]
    assert after.end_reason == "error"


def test_missing_start_state_hangs_up() -> None:
    plan = unvalidated({"id": "x", "start": "nowhere", "states": {"s": {"hangup": True}}})
    s, [out] = run(plan, [CallAnswered()])
    assert out == [Problem(None, "no state 'nowhere' to go to: hanging up"), HangUp()]
    assert (s.waiting, s.end_reason) == ("done", "error")


def test_missing_failed_transition_hangs_up() -> None:
    plan = unvalidated(
        {
            "id": "x",
            "start": "ask",
            "states": {"ask": {"listen": {"intents": {"a": {"press": "1"}}, "retries": 0}}},
        }
    )
    s, [_, out] = run(plan, [CallAnswered(), NoInput()])
    assert out == [Problem("ask", "no state None to go to: hanging up"), HangUp()]
    assert s.end_reason == "error"


def test_state_without_a_way_out_hangs_up() -> None:
    plan = unvalidated({"id": "x", "start": "s", "states": {"s": {"say": "Bye."}}})
    s, [out] = run(plan, [CallAnswered()])
    assert out == [Entered("s", None, "answered"), Say("Bye.", "en-US"), HangUp()]
    assert s.end_reason == "hangup"


def test_a_loop_without_waiting_stops_after_max_hops() -> None:
    plan = unvalidated(
        {
            "id": "x",
            "start": "a",
            "states": {"a": {"say": "A", "next": "b"}, "b": {"next": "a"}},
        }
    )
    s, [out] = run(plan, [CallAnswered()])
    assert entered(out) == ["a", "b"] * (MAX_HOPS // 2)
    assert said(out) == ["A"] * (MAX_HOPS // 2)
    assert out[-2:] == [
        Problem("b", f"{MAX_HOPS} states in a row without waiting: hanging up"),
        HangUp(),
    ]
    assert (s.waiting, s.end_reason) == ("done", "error")


def test_outputs_for_sessions_loaded_from_disk(tmp_path: Path) -> None:
    plan = shipped("appointment_reminder")
    s, _ = reminder_at_question(NoInput())
    (tmp_path / "call.json").write_text(s.to_json())
    resumed = Session.from_json((tmp_path / "call.json").read_text())
    assert resumed.ended is False
    after, out = step(plan, resumed, KeysPressed("1"))
    assert after.ended is True
    assert out[-1] == HangUp()
