"""Every kind of dial-plan error is reported as ``file:line: state: message``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.dialplan.loader import (
    PlanError,
    PlanLoadError,
    load_plan,
    load_plan_text,
    load_plans,
    load_plans_or_raise,
)
from tests.dialplan.support import DIALPLANS, SHIPPED_PLANS, WritePlan, short

Errors = Callable[[str], list[str]]

# Line numbers in the comments below count from 1 at ``id:``.

CASES: dict[str, tuple[str, list[str]]] = {
    "yaml syntax": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            say: [unclosed, list
            hangup: true
        """,
        ["8: (plan): YAML syntax: expected ',' or ']', but got ':'"],
    ),
    "unknown plan field": (
        """
        id: demo
        direction: outbound
        language: en-US
        colour: red
        start: s
        states:
          s:
            hangup: true
        """,
        ["4: (plan): unknown field 'colour'"],
    ),
    "unknown state field": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            sya: Hello
            hangup: true
        """,
        ["7: s: unknown field 'sya'"],
    ),
    "unknown listen field": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok]}
              time_out: 5s
            on: {ok: s, failed: s}
        """,
        ["10: s: unknown field 'time_out'"],
    ),
    "unknown intent field": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok:
                  say: [ok]
                  key: "1"
            on: {ok: s, failed: s}
        """,
        ["11: s: unknown field 'key'"],
    ),
    "unknown target of next": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            say: Hello
            next: nowhere
        """,
        ["8: s: unknown target state 'nowhere'"],
    ),
    "unknown target of on": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok]}
            on:
              ok: s
              failed: nowhere
          end:
            hangup: true
        """,
        [
            "12: s: unknown target state 'nowhere'",
            "13: end: unreachable: no way leads here from 's'",
        ],
    ),
    "unknown start state": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: begin
        states:
          s:
            hangup: true
        """,
        ["4: (plan): start state 'begin' does not exist"],
    ),
    "unreachable state": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            hangup: true
          island:
            say: Nobody hears this.
            hangup: true
        """,
        ["8: island: unreachable: no way leads here from 's'"],
    ),
    "no way out": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            say: Hello
        """,
        ["6: s: no way out: add next, hangup, transfer, listen or lookup"],
    ),
    "undeclared variable in say": (
        """
        id: demo
        direction: outbound
        language: en-US
        variables: {name: str}
        start: s
        states:
          s:
            say: Hello {{ name }}, your code is {{ code }}.
            hangup: true
        """,
        ["8: s: template uses undeclared variable 'code'"],
    ),
    "undeclared variable in sms": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            sms: Your code is {{ code }}.
            hangup: true
        """,
        ["7: s: template uses undeclared variable 'code'"],
    ),
    "undeclared variable in fallback_sms": (
        """
        id: demo
        direction: outbound
        language: en-US
        variables: {name: str}
        fallback_sms: Hi {{ name }}, call {{ clinic }}.
        start: s
        states:
          s:
            hangup: true
        """,
        ["5: (plan): template uses undeclared variable 'clinic'"],
    ),
    "undeclared variable in no_match": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok]}
              no_match: Sorry {{ name }}.
            on: {ok: s, failed: s}
        """,
        ["10: s: template uses undeclared variable 'name'"],
    ),
    "undeclared variable in lookup url": (
        """
        id: demo
        direction: inbound
        language: en-US
        numbers: ["+12025550100"]
        start: find
        states:
          find:
            lookup:
              url: "http://crm.example/orders/{{ order_number }}"
            on: {ok: done, error: done}
          done:
            hangup: true
        """,
        ["9: find: template uses undeclared variable 'order_number'"],
    ),
    "builtins, set, digits and lookup variables are declared": (
        """
        id: demo
        direction: inbound
        language: en-US
        numbers: ["+12025550100"]
        start: s
        states:
          s:
            set: {greeting: "Hi {{ caller }} on {{ called }}"}
            say: "{{ greeting }} {{ attempt }} {{ answered_by }} {{ language }} {{ x }}"
            listen:
              digits: {min: 1}
              into: number
            next: find
            on: {failed: find}
          find:
            lookup: {url: "http://crm.example/{{ number }}", into: found}
            on: {ok: done, error: done}
          done:
            say: "{{ found.status }} {{ nope }}"
            hangup: true
        """,
        [
            "9: s: template uses undeclared variable 'x'",
            "19: done: template uses undeclared variable 'nope'",
        ],
    ),
    "template syntax error": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            say: "Hello {{ name "
            hangup: true
        """,
        ["7: s: template: unexpected end of template, expected 'end of print statement'."],
    ),
    "unknown filter": (
        """
        id: demo
        direction: outbound
        language: en-US
        variables: {when: datetime}
        start: s
        states:
          s:
            say: "See you {{ when | weekday }}"
            hangup: true
        """,
        ["8: s: template: No filter named 'weekday'."],
    ),
    "the same key bound to two intents": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                yes: {say: [yes], press: "1"}
                no: {say: [no], press: "1"}
            on: {yes: s, no: s, failed: s}
        """,
        ["10: s: key '1' is bound to both 'yes' and 'no'"],
    ),
    "an intent with neither phrases nor keys": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok]}
                mute: {}
            on: {ok: s, mute: s, failed: s}
        """,
        ["10: s: intent 'mute' has neither phrases nor keys"],
    ),
    "an empty phrase": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok, " "]}
            on: {ok: s, failed: s}
        """,
        ["9: s: listen.intents.ok.say: a phrase is empty"],
    ),
    "a key that is not on the keypad": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok], press: "A"}
            on: {ok: s, failed: s}
        """,
        [
            "9: s: listen.intents.ok.press: Input should be '0', '1', '2', '3', '4', '5', "
            "'6', '7', '8', '9', '*' or '#'"
        ],
    ),
    "bad duration in listen": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok]}
              timeout: 5 minutes
            on: {ok: s, failed: s}
        """,
        [
            "10: s: listen.timeout: bad duration '5 minutes': "
            "use 30s, 10m, 1h, 2d or a number of seconds"
        ],
    ),
    "bad duration in attempts": (
        """
        id: demo
        direction: outbound
        language: en-US
        attempts:
          max: 3
          retry_after: [10m, soon]
        start: s
        states:
          s:
            hangup: true
        """,
        [
            "6: (plan): attempts.retry_after.1: bad duration 'soon': "
            "use 30s, 10m, 1h, 2d or a number of seconds"
        ],
    ),
    "negative duration in lookup": (
        """
        id: demo
        direction: inbound
        language: en-US
        numbers: ["+12025550100"]
        start: find
        states:
          find:
            lookup: {url: "http://crm.example/x", timeout: -3}
            on: {ok: find, error: find}
        """,
        ["8: find: lookup.timeout: bad duration -3: must not be negative"],
    ),
    "unknown language": (
        """
        id: demo
        direction: outbound
        language: xx-QQ
        start: s
        states:
          s:
            hangup: true
        """,
        ["3: (plan): language: unknown language 'xx-QQ': use a BCP 47 tag such as en-US"],
    ),
    "duplicate key in the plan": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        language: ru-RU
        states:
          s:
            hangup: true
        """,
        ["5: (plan): duplicate key 'language' (first on line 3)"],
    ),
    "duplicate key in a state": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            say: Hello
            say: Goodbye
            hangup: true
        """,
        ["8: s: duplicate key 'say' (first on line 7)"],
    ),
    "duplicate state": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            hangup: true
          s:
            say: again
            hangup: true
        """,
        ["8: s: duplicate key 's' (first on line 6)"],
    ),
    "listen with both intents and digits": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok]}
              digits: {max: 4}
            on: {ok: s, failed: s}
        """,
        ["7: s: listen: listen needs either intents or digits (exactly one of them)"],
    ),
    "listen with neither intents nor digits": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              timeout: 3s
            on: {failed: s}
        """,
        ["7: s: listen: listen needs either intents or digits (exactly one of them)"],
    ),
    "digits with min above max": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              digits: {min: 6, max: 4}
            next: s
            on: {failed: s}
        """,
        ["8: s: listen.digits: digits: min 6 is above max 4"],
    ),
    "missing failed": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              retries: 3
              intents:
                ok: {say: [ok]}
            on: {ok: s}
        """,
        ["7: s: no failed: transition (after 3 retries)"],
    ),
    "unmapped intent": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok]}
                later: {say: [later]}
                repeat: {say: [repeat]}
            on: {ok: s, failed: s}
        """,
        ["10: s: intent 'later' has no transition in on:"],
    ),
    "on: names no intent": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              intents:
                ok: {say: [ok]}
            on: {ok: s, okay: s, failed: s}
            next: s
        """,
        [
            "10: s: on: 'okay' is not an intent of this state",
            "11: s: next is not used when listening for intents: use on",
        ],
    ),
    "digits without next and with an intent transition": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            listen:
              digits: {max: 4}
            on:
              failed: s
              ok: s
        """,
        [
            "7: s: digit collection needs next: (where to go)",
            "11: s: on: 'ok': digits only have failed",
        ],
    ),
    "lookup without ok and error": (
        """
        id: demo
        direction: inbound
        language: en-US
        numbers: ["+12025550100"]
        start: find
        states:
          find:
            lookup: {url: "http://crm.example/x"}
            on: {not_found: find, missing: find}
            next: find
        """,
        [
            "9: find: on: 'missing': a lookup has ok, not_found, error",
            "8: find: lookup needs an on: ok transition",
            "8: find: lookup needs an on: error transition",
            "10: find: next is not used after a lookup: use on",
        ],
    ),
    "on: in a state that does not wait": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            say: Hello
            on: {ok: s}
            hangup: true
        """,
        ["8: s: on: only a state that listens or looks up has transitions"],
    ),
    "next after hangup": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            hangup: true
            next: t
          t:
            hangup: true
        """,
        ["8: s: next is never reached after hangup"],
    ),
    "loop without waiting": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: a
        states:
          a:
            say: One
            next: b
          b:
            say: Two
            next: c
          c:
            say: Three
            next: a
        """,
        ["6: a: loop without waiting for the caller: a -> b -> c -> a"],
    ),
    "a state that goes to itself": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: a
        states:
          a:
            say: Again and again
            next: a
        """,
        ["6: a: loop without waiting for the caller: a -> a"],
    ),
    "inbound plan without numbers": (
        """
        id: demo
        direction: inbound
        language: en-US
        start: s
        states:
          s:
            hangup: true
        """,
        ["2: (plan): an inbound plan lists the numbers it answers"],
    ),
    "outbound plan with numbers": (
        """
        id: demo
        direction: outbound
        language: en-US
        numbers: ["+12025550100"]
        start: s
        states:
          s:
            hangup: true
        """,
        ["4: (plan): only inbound plans answer numbers"],
    ),
    "bad inbound number": (
        """
        id: demo
        direction: inbound
        language: en-US
        numbers: ["+12025550100", "555-0100"]
        start: s
        states:
          s:
            hangup: true
        """,
        ["4: (plan): numbers.1: String should match pattern '^\\+[1-9][0-9]{4,14}$'"],
    ),
    "bad transfer number": (
        """
        id: demo
        direction: inbound
        language: en-US
        numbers: ["+12025550100"]
        start: s
        states:
          s:
            transfer: 555-0123
        """,
        ["8: s: transfer: '555-0123' is not E.164"],
    ),
    "missing required fields": (
        """
        id: Demo-Plan
        language: en-US
        states:
          s:
            hangup: true
        """,
        [
            "1: (plan): id: String should match pattern '^[a-z][a-z0-9_]*$'",
            "1: (plan): missing field 'direction'",
            "1: (plan): missing field 'start'",
        ],
    ),
    "a document that is not a mapping": (
        """
        - id: demo
        """,
        ["1: (plan): a dial plan is a YAML mapping (id, states, ...)"],
    ),
    "a Python object tag is refused": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            say: !!python/object/apply:os.system [echo hacked]
            hangup: true
        """,
        [
            "7: (plan): YAML syntax: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'"
        ],
    ),
    "two documents in one file": (
        """
        id: demo
        ---
        id: other
        """,
        ["2: (plan): YAML syntax: but found another document"],
    ),
    "says and plays": (
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            say: Hello
            play: hello.wav
            hangup: true
        """,
        ["6: s: a state either says or plays, not both"],
    ),
    "listens and looks up": (
        """
        id: demo
        direction: inbound
        language: en-US
        numbers: ["+12025550100"]
        start: s
        states:
          s:
            lookup: {url: "http://crm.example/x"}
            listen:
              intents:
                ok: {say: [ok]}
            on: {ok: s, error: s, failed: s}
        """,
        ["7: s: a state either listens or looks up, not both"],
    ),
    "an empty file": (
        "",
        ["1: (plan): a dial plan is a YAML mapping (id, states, ...)"],
    ),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=list(CASES))
def test_error_names_line_state_and_what_is_wrong(
    plan_errors: Errors, text: str, expected: list[str]
) -> None:
    assert plan_errors(text) == expected


def test_error_text_is_file_line_state_message(write_plan: WritePlan) -> None:
    path = write_plan(CASES["unknown state field"][0], "bad.yaml")
    _, errors = load_plan(path)
    assert [str(e) for e in errors] == [f"{path}:7: s: unknown field 'sya'"]
    plan_error = PlanError("x.yaml", 3, None, "broken")
    assert str(plan_error) == "x.yaml:3: (plan): broken"


def test_several_errors_are_reported_at_once(plan_errors: Errors) -> None:
    errors = plan_errors(
        """
        id: demo
        direction: outbound
        language: en-US
        start: ask
        states:
          ask:
            say: "Hello {{ who }}"
            listen:
              intents:
                yes: {say: [yes], press: "1"}
                no: {say: [no], press: "1"}
                later: {}
            on: {yes: done, no: gone}
          done:
            hangup: true
          orphan:
            say: lost
            next: done
        """
    )
    assert errors == [
        "13: ask: unknown target state 'gone'",
        "11: ask: key '1' is bound to both 'yes' and 'no'",
        "12: ask: intent 'later' has neither phrases nor keys",
        "12: ask: intent 'later' has no transition in on:",
        "8: ask: no failed: transition (after 2 retries)",
        "16: orphan: unreachable: no way leads here from 'ask'",
        "7: ask: template uses undeclared variable 'who'",
    ]


def test_several_schema_errors_are_reported_at_once(plan_errors: Errors) -> None:
    errors = plan_errors(
        """
        id: demo
        direction: sideways
        language: en-US
        start: s
        states:
          s:
            hangup: maybe
            listen:
              timeout: forever
        """
    )
    assert errors == [
        "2: (plan): direction: Input should be 'outbound' or 'inbound'",
        "9: s: listen.timeout: bad duration 'forever': use 30s, 10m, 1h, 2d or a number of seconds",
        "7: s: hangup: Input should be a valid boolean, unable to interpret input",
    ]


def test_play_names_a_missing_audio_file(write_plan: WritePlan, tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "hello.wav").write_bytes(b"RIFF")
    path = write_plan(
        """
        id: demo
        direction: outbound
        language: en-US
        start: s
        states:
          s:
            play: hello.wav
            next: t
          t:
            play: missing.wav
            hangup: true
        """
    )
    plan, errors = load_plan(path, audio)
    assert plan is None
    assert [short(e) for e in errors] == ["10: t: play: no file 'missing.wav' in audio/"]
    plan, errors = load_plan(path)  # without an audio directory the files are not checked
    assert errors == []
    assert plan is not None


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    plan, errors = load_plan(missing)
    assert plan is None
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"{missing}:1: (plan): cannot read: ")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("say: caf\xe9\n".encode("latin-1"))
    _, errors = load_plan(latin1)
    assert errors[0].message.startswith("cannot read: 'utf-8' codec can't decode")


# -- YAML 1.2 booleans --------------------------------------------------------------------------


def test_yes_no_on_off_stay_strings() -> None:
    plan = load_plan_text(
        """
id: demo
direction: outbound
language: en-US
start: ask
states:
  ask:
    listen:
      intents:
        yes: {say: [yes, y, on], press: "1"}
        no: {say: [no, n, off], press: "2"}
    on: {yes: done, no: done, failed: done}
  done:
    hangup: true
"""
    )
    ask = plan.states["ask"]
    assert ask.listen is not None
    assert list(ask.listen.intents) == ["yes", "no"]
    assert ask.listen.intents["yes"].say == ["yes", "y", "on"]
    assert ask.listen.intents["no"].say == ["no", "n", "off"]
    assert ask.on == {"yes": "done", "no": "done", "failed": "done"}
    assert plan.states["done"].hangup is True


def test_true_and_false_are_still_booleans() -> None:
    plan = load_plan_text(
        "id: demo\ndirection: outbound\nlanguage: en-US\nstart: s\nstates:\n  s: {hangup: True}\n"
    )
    assert plan.states["s"].hangup is True
    with pytest.raises(PlanLoadError) as caught:
        load_plan_text(
            "id: demo\ndirection: outbound\nlanguage: en-US\nstart: s\n"
            "states:\n  s: {hangup: FALSE, say: yes}\n",
            "inline.yaml",
        )
    assert str(caught.value) == (
        "inline.yaml:6: s: no way out: add next, hangup, transfer, listen or lookup"
    )


# -- several files ------------------------------------------------------------------------------

INBOUND = """
id: {id}
direction: inbound
language: en-US
numbers: [{numbers}]
start: s
states:
  s:
    hangup: true
"""


def test_plan_id_used_twice(write_plan: WritePlan, tmp_path: Path) -> None:
    first = write_plan(INBOUND.format(id="line", numbers='"+12025550100"'), "a/first.yaml")
    second = write_plan(INBOUND.format(id="line", numbers='"+12025550101"'), "b/second.yaml")
    plan_set, errors = load_plans([tmp_path])
    assert [str(e) for e in errors] == [
        f"{second}:1: (plan): plan id 'line' is also used by {first}"
    ]
    assert list(plan_set.plans) == ["line"]
    assert plan_set.files == {"line": first}
    with pytest.raises(PlanLoadError, match="plan id 'line' is also used by"):
        load_plans_or_raise([tmp_path])


def test_inbound_number_used_twice(write_plan: WritePlan, tmp_path: Path) -> None:
    write_plan(INBOUND.format(id="sales", numbers='"+12025550100", "+12025550102"'), "a.yaml")
    other = write_plan(
        INBOUND.format(id="support", numbers='"+12025550101", "+12025550100"'), "b.yaml"
    )
    plan_set, errors = load_plans([tmp_path])
    assert [str(e) for e in errors] == [
        f"{other}:1: (plan): number +12025550100 is also answered by plan 'sales'"
    ]
    assert plan_set.by_number("+12025550100") is plan_set.plans["sales"]
    assert plan_set.by_number("+12025550101") is plan_set.plans["support"]
    assert plan_set.by_number("+12025550199") is None


def test_load_plans_collects_errors_of_every_file(write_plan: WritePlan, tmp_path: Path) -> None:
    good = write_plan(INBOUND.format(id="good", numbers='"+12025550100"'), "good.yml")
    bad = write_plan("id: bad\nstates: [\n", "nested/bad.yaml")
    (tmp_path / "notes.txt").write_text("not a plan")
    plan_set, errors = load_plans([tmp_path])
    assert [str(e) for e in errors] == [
        f"{bad}:3: (plan): YAML syntax: expected the node content, but found '<stream end>'"
    ]
    assert plan_set.files == {"good": good}
    plan_set, errors = load_plans([good])  # a file named directly
    assert (list(plan_set.plans), errors) == (["good"], [])
    assert load_plans_or_raise([good]).plans["good"].locale == "en_US"


def test_load_plan_text_raises_with_every_error() -> None:
    with pytest.raises(PlanLoadError) as caught:
        load_plan_text("id: demo\ncolour: red\nshape: round\n", "inline.yaml")
    lines = str(caught.value).splitlines()
    assert "inline.yaml:2: (plan): unknown field 'colour'" in lines
    assert "inline.yaml:3: (plan): unknown field 'shape'" in lines
    assert len(caught.value.errors) == len(lines)


def test_shipped_plans_are_valid() -> None:
    assert len(SHIPPED_PLANS) >= 5
    for path in SHIPPED_PLANS:
        plan, errors = load_plan(path, DIALPLANS.parent / "audio")
        assert errors == [], path
        assert plan is not None
        assert path.stem == plan.id


# -- ivr validate -------------------------------------------------------------------------------


def test_validate_accepts_the_shipped_plans() -> None:
    result = CliRunner().invoke(main, ["validate", str(DIALPLANS)])
    assert result.exit_code == 0, result.output
    assert "5 dial plan(s) valid: appointment_reminder, " in result.output


def test_validate_prints_every_error_and_fails(write_plan: WritePlan, tmp_path: Path) -> None:
    bad_dir = tmp_path / "plans"
    one = write_plan(CASES["unknown target of next"][0], "plans/one.yaml")
    two = write_plan(CASES["the same key bound to two intents"][0], "plans/two.yaml")
    write_plan(INBOUND.format(id="fine", numbers='"+12025550100"'), "plans/fine.yaml")
    result = CliRunner().invoke(main, ["validate", str(bad_dir), str(tmp_path / "absent.yaml")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'absent.yaml'}:1: (plan): no such file or directory",
        f"{one}:8: s: unknown target state 'nowhere'",
        f"{two}:10: s: key '1' is bound to both 'yes' and 'no'",
    ]
    assert "valid" not in result.stdout


def test_a_loop_through_a_state_that_waits_is_fine() -> None:
    # ask -> echo -> ask is not a loop: ask waits for the caller's digits each time.
    plan = load_plan_text(
        """
id: pin
direction: outbound
language: en-US
start: intro
states:
  intro:
    say: Welcome.
    next: ask
  ask:
    say: Type your PIN.
    listen: {digits: {min: 4, max: 4}}
    next: echo
    on: {failed: bye}
  echo:
    say: "You typed {{ digits | digits }}. Type it again."
    next: ask
  bye:
    hangup: true
"""
    )
    assert plan.states["echo"].next == "ask"
