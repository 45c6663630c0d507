"""Dialogue that recovers: the key hint after a spoken answer is turned away, and digits read
back for confirmation (``listen.digits.confirm``), through the pure engine."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

import pytest

from ivr.dialplan.engine import pending_listen, step
from ivr.dialplan.loader import load_plan_text
from ivr.dialplan.recovery import confirm_listen, digits_hint, key_hint, read_back
from ivr.dialplan.schema import Intent, ListenSpec, Plan
from ivr.dialplan.session import Session, new_session
from ivr.dialplan.vocabulary import (
    CallAnswered,
    Entered,
    Event,
    KeysPressed,
    Listen,
    NoInput,
    Output,
    Say,
    SpeechRecognized,
    Understood,
)

ASK = "Say or type your number."


def digits_plan(language: str = "en-US", digits: str = "{min: 4, max: 6}", extra: str = "") -> Plan:
    return load_plan_text(
        textwrap.dedent(
            f"""\
            id: pin
            direction: outbound
            language: {language}
            start: ask
            states:
              ask:
                say: {ASK}
                listen:
                  digits: {digits}
                  into: number
                  no_input: Nothing heard.
                  no_match: Not understood.
            {extra}
                next: done
                on: {{failed: failed}}
              done:
                say: "Got {{{{ number }}}}."
                hangup: true
              failed:
                say: Failed.
                hangup: true
            """
        )
    )


def menu_plan(language: str = "en-US", extra: str = "") -> Plan:
    return load_plan_text(
        textwrap.dedent(
            f"""\
            id: menu
            direction: outbound
            language: {language}
            start: ask
            states:
              ask:
                say: Choose.
                listen:
                  intents:
                    order: {{say: [order, my order], press: "1"}}
                    agent: {{press: "0"}}
                    help: {{say: [help]}}
                  no_match: Not understood.
                  retries: 1
            {extra}
                on: {{order: bye, agent: bye, help: bye, failed: bye}}
              bye:
                hangup: true
            """
        )
    )


def run(plan: Plan, *events: Event) -> tuple[Session, list[list[Output]]]:
    s = new_session(plan.id)
    steps = []
    for event in (CallAnswered(), *events):
        s, out = step(plan, s, event)
        steps.append(out)
    return s, steps


def said(out: Sequence[Output]) -> list[str]:
    return [o.text for o in out if isinstance(o, Say)]


def listens(out: Sequence[Output]) -> list[Listen]:
    return [o for o in out if isinstance(o, Listen)]


def low(text: str, confidence: float = 0.6) -> SpeechRecognized:
    return SpeechRecognized(text, confidence)


# -- the key hint -------------------------------------------------------------------------------


def test_spoken_answer_turned_away_names_the_keys() -> None:
    _, [_, out] = run(menu_plan(), SpeechRecognized("pizza"))
    assert said(out) == [
        "Not understood.",
        "You can also press 1 for order, or 0 for agent.",
        "Choose.",
    ]


def test_low_confidence_speech_also_gets_the_hint() -> None:
    _, [_, out] = run(menu_plan(), SpeechRecognized("order", 0.2))
    assert "You can also press 1 for order, or 0 for agent." in said(out)


def test_a_wrong_key_gets_no_key_hint() -> None:
    _, [_, out] = run(menu_plan(), KeysPressed("7"))
    assert said(out) == ["Not understood.", "Choose."]


def test_no_input_gets_no_key_hint() -> None:
    _, [_, out] = run(menu_plan(), NoInput())
    assert said(out) == ["Choose."]


@pytest.mark.parametrize(
    ("language", "hint"),
    [
        ("ru-RU", "Можно также нажать 1 — order, 0 — agent."),
        ("ko-KR", "번호를 눌러 답하셔도 됩니다. order 1번, agent 0번."),
    ],
)
def test_key_hint_in_the_plan_language(language: str, hint: str) -> None:
    _, [_, out] = run(menu_plan(language), SpeechRecognized("pizza"))
    assert hint in said(out)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ('key_hint: "Press 1 for orders, {{ caller }}."', ["Press 1 for orders, ."]),
        ('key_hint: ""', []),
    ],
)
def test_plan_overrides_the_key_hint(override: str, expected: list[str]) -> None:
    plan = menu_plan(extra="      " + override)
    _, [_, out] = run(plan, SpeechRecognized("pizza"))
    assert said(out) == ["Not understood.", *expected, "Choose."]


def test_language_without_phrases_gets_no_derived_hint() -> None:
    _, [_, out] = run(menu_plan("de-DE"), SpeechRecognized("pizza"))
    assert said(out) == ["Not understood.", "Choose."]


def test_spoken_digits_turned_away_suggest_the_keypad() -> None:
    _, [_, spoken, typed] = run(digits_plan(), SpeechRecognized("hello"), KeysPressed("12#"))
    assert said(spoken) == ["Not understood.", "You can also type the number on your keypad.", ASK]
    assert said(typed) == ["Not understood.", ASK]


def test_hint_helpers() -> None:
    assert key_hint({"a": Intent(say=["yes"])}, "en-US") == ""
    assert key_hint({"a": Intent(press="1")}, "en") == "You can also press 1 for a."
    three = {n: Intent(say=[n], press=k) for n, k in [("x", "1"), ("y", "2"), ("z", "3")]}
    assert key_hint(three, "en-GB") == "You can also press 1 for x, 2 for y, or 3 for z."
    assert digits_hint("ru-RU") == "Можно также набрать номер на клавиатуре телефона."
    assert digits_hint("de-DE") == ""
    assert read_back("4207", "de-DE") == ""
    assert read_back("4207", "ko-KR").startswith("말씀하신 번호는 사 이 공 칠입니다.")


# -- reading digits back ------------------------------------------------------------------------

READ_BACK = "I heard four two zero seven. Press 1 if that is right, or 2 to try again."


def test_low_confidence_digits_are_read_back_and_yes_accepts_them() -> None:
    plan = digits_plan()
    s, [_, heard, yes] = run(plan, low("four two oh seven"), KeysPressed("1"))
    assert heard[0] == Understood("ask", None, "4207", "four two oh seven", 0.6)
    assert said(heard) == [READ_BACK]
    [ask] = listens(heard)
    assert ask == Listen("ask", confirm_listen(plan.states["ask"].listen, "en-US"), "en-US")  # type: ignore[arg-type]
    assert {n: i.press for n, i in ask.spec.intents.items()} == {"yes": "1", "no": "2"}
    assert yes[0] == Understood("ask", "yes", None, "1", 1.0)
    assert Entered("done", "ask", "digits 4207") in yes
    assert said(yes) == ["Got 4207."]
    assert s.variables["number"] == "4207"
    assert s.confirming is None


def test_while_confirming_the_session_holds_the_digits_not_the_variable() -> None:
    s, _ = run(digits_plan(), low("four two oh seven"))
    assert s.confirming == "4207"
    assert "number" not in s.variables
    assert Session.from_json(s.to_json()) == s


@pytest.mark.parametrize("reply", ["yes", "that's right", "yeah it is"])
def test_spoken_yes_accepts(reply: str) -> None:
    s, _ = run(digits_plan(), low("four two oh seven"), SpeechRecognized(reply, 0.9))
    assert s.variables["number"] == "4207"
    assert s.state == "done"


@pytest.mark.parametrize("reply", [KeysPressed("2"), SpeechRecognized("no", 0.9)])
def test_no_asks_for_the_number_again(reply: Event) -> None:
    s, [_, _, no, again] = run(digits_plan(), low("four two oh seven"), reply, KeysPressed("5555#"))
    assert said(no) == [ASK]
    assert listens(no)[0].spec.digits is not None
    assert s.variables["number"] == "5555"
    assert s.state == "done"
    assert Entered("done", "ask", "digits 5555") in again


def test_unclear_reply_asks_the_question_again() -> None:
    s, [_, _, unclear, silent] = run(
        digits_plan(), low("four two oh seven"), SpeechRecognized("banana", 0.9), NoInput()
    )
    assert said(unclear) == ["Not understood.", READ_BACK]
    assert said(silent) == ["Nothing heard.", READ_BACK]
    assert s.confirming == "4207"
    assert s.retries == 2


def test_a_low_confidence_reply_is_unclear() -> None:
    _, [_, _, out] = run(digits_plan(), low("four two oh seven"), SpeechRecognized("yes", 0.1))
    assert out[0] == Understood("ask", None, None, "yes", 0.1)
    assert said(out) == ["Not understood.", READ_BACK]


def test_confirmation_runs_out_of_retries_to_failed() -> None:
    s, steps = run(
        digits_plan(), low("four two oh seven"), KeysPressed("2"), low("one two three four"),
        KeysPressed("2"), low("five five five five"), KeysPressed("2"),
    )  # fmt: skip
    assert s.state == "failed"
    assert s.confirming is None
    assert "number" not in s.variables
    assert Entered("failed", "ask", "failed after digits rejected") in steps[-1]


@pytest.mark.parametrize(
    ("confirm", "event", "read"),
    [
        ("auto", SpeechRecognized("four two oh seven", 0.95), False),
        ("auto", SpeechRecognized("four two oh seven", 0.79), True),
        ("auto", KeysPressed("4207#"), False),
        ("always", KeysPressed("4207#"), True),
        ("always", SpeechRecognized("four two oh seven", 1.0), True),
        ("never", SpeechRecognized("four two oh seven", 0.55), False),
    ],
)
def test_confirm_modes(confirm: str, event: Event, read: bool) -> None:
    plan = digits_plan(digits=f"{{min: 4, max: 6, confirm: {confirm}}}")
    s, [_, out] = run(plan, event)
    assert (READ_BACK in said(out)) is read
    assert (s.confirming == "4207") is read
    assert (s.variables.get("number") == "4207") is not read


def test_confirm_below_is_the_threshold() -> None:
    plan = digits_plan(digits="{min: 4, max: 6, confirm_below: 0.5}")
    s, _ = run(plan, low("four two oh seven", 0.6))
    assert s.variables["number"] == "4207"


@pytest.mark.parametrize(
    ("language", "spoken", "read", "yes"),
    [
        ("ru-RU", "четыре два ноль семь", "Вы назвали: четыре два ноль семь.", "да"),
        ("ko-KR", "사 이 공 칠", "말씀하신 번호는 사 이 공 칠입니다.", "네"),
    ],
)
def test_read_back_in_the_plan_language(language: str, spoken: str, read: str, yes: str) -> None:
    s, [_, heard, _reply] = run(digits_plan(language), low(spoken), SpeechRecognized(yes, 0.9))
    assert said(heard)[0].startswith(read)
    assert s.variables["number"] == "4207"


def test_language_without_phrases_is_not_read_back() -> None:
    s, _ = run(digits_plan("de-DE"), low("4207"))
    assert s.variables["number"] == "4207"


# -- what the runtime waits for, rebuilt from the session ---------------------------------------


def test_pending_listen_follows_the_session() -> None:
    plan = digits_plan()
    spec = plan.states["ask"].listen
    assert isinstance(spec, ListenSpec)
    fresh = new_session(plan.id)
    assert pending_listen(plan, fresh) is None
    s, _ = run(plan)
    assert pending_listen(plan, s) == Listen("ask", spec, "en-US")
    s, _ = run(plan, low("four two oh seven"))
    assert pending_listen(plan, s) == Listen("ask", confirm_listen(spec, "en-US"), "en-US")
    s, _ = run(plan, KeysPressed("4207#"))
    assert pending_listen(plan, s) is None  # the call ended in ``done``


def test_confirm_listen_keeps_timeout_and_threshold() -> None:
    spec = ListenSpec(digits={"min": 4}, timeout=9.0, retries=3, min_confidence=0.3)  # type: ignore[arg-type]
    ask = confirm_listen(spec, "xx-YY")
    assert (ask.timeout, ask.retries, ask.min_confidence) == (9.0, 3, 0.3)
    assert "yes" in ask.intents["yes"].say  # an unknown language falls back to English words


ErrorsOf = Callable[[str], list[str]]


def test_validation_reports_confirm_and_hint_problems_with_lines(plan_errors: ErrorsOf) -> None:
    errors = plan_errors(
        """
        id: pin
        direction: outbound
        language: de-DE
        start: ask
        states:
          ask:
            listen:
              digits: {min: 4, confirm: always}
              key_hint: "{{ nobody }}"
            next: ask
            on: {failed: ask}
        """
    )
    assert errors == [
        "8: ask: confirm: no read-back phrases for language 'de-DE': use never",
        "9: ask: template uses undeclared variable 'nobody'",
    ]


def test_schema_rejects_unknown_confirm_modes_with_lines(plan_errors: ErrorsOf) -> None:
    errors = plan_errors(
        """
        id: pin
        direction: outbound
        language: en-US
        start: ask
        states:
          ask:
            listen:
              digits:
                confirm: sometimes
                confirm_below: 2
            next: ask
            on: {failed: ask}
        """
    )
    assert errors == [
        "9: ask: listen.digits.confirm: Input should be 'auto', 'always' or 'never'",
        "10: ask: listen.digits.confirm_below: Input should be less than or equal to 1",
    ]
