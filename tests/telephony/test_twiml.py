"""TwiML rendering: each kind of turn, asserted on the parsed document."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, fromstring

import pytest

from ivr.dialplan.schema import ListenSpec
from ivr.dialplan.vocabulary import (
    Entered,
    HangUp,
    Listen,
    Lookup,
    Output,
    Play,
    Say,
    SendSms,
    SetOutcome,
    Transfer,
)
from ivr.telephony.twilio.twiml import (
    KEYS,
    ListenSettings,
    listen_kind,
    needs_more_digits,
    render,
    render_message,
    render_more_digits,
    render_say_hangup,
    render_wait,
)

BASE = "https://ivr.example.com/twilio"


class Urls:
    """The web layer's URLs for turn 3 of call c-1; prompts listed in ``silent`` have no
    audio (synthesis failed, or the file is missing)."""

    def __init__(self, *silent: str) -> None:
        self.silent = set(silent)

    def gather_url(self, typed: str = "") -> str:
        return f"{BASE}/gather?call=c-1&turn=3" + (f"&typed={typed}" if typed else "")

    def record_url(self) -> str:
        return f"{BASE}/record?call=c-1&turn=3"

    def no_input_url(self) -> str:
        return f"{BASE}/no-input?call=c-1&turn=3"

    def audio_url(self, prompt: Say | Play) -> str | None:
        name = prompt.text if isinstance(prompt, Say) else prompt.path
        if name in self.silent:
            return None
        return f"https://ivr.example.com/audio/{abs(hash(name))}.wav?exp=99&sig=ab"


def listen(language: str = "en-US", **spec: Any) -> Listen:
    return Listen("ask", ListenSpec.model_validate(spec), language)


def listen_in(language: str, spec: dict[str, Any]) -> Listen:
    return listen(language, **spec)


YES_NO = {"confirm": {"say": ["yes"], "press": "1"}, "cancel": {"say": ["no"], "press": "2"}}
KEYS_ONLY = {"confirm": {"press": "1"}, "operator": {"press": "#"}}


def parse(document: str) -> Element:
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = fromstring(document)
    assert root.tag == "Response"
    for gather in root.iter("Gather"):
        assert gather.get("input") == "dtmf", "cloud speech recognition must never be asked for"
    return root


def tags(element: Element) -> list[str]:
    return [child.tag for child in element]


def test_prompts_then_hangup_play_audio_and_skip_what_is_not_twiml() -> None:
    outputs: list[Output] = [
        Entered("bye", "ask", "intent confirm"),
        Say("Thank you.", "en-US"),
        Play("chime.wav"),
        SendSms("See you"),
        SetOutcome("confirmed"),
        HangUp(),
    ]
    root = parse(render(outputs, Urls()))
    assert tags(root) == ["Play", "Play", "Hangup"]
    assert root[0].text == Urls().audio_url(Say("Thank you.", "en-US"))


def test_failed_synthesis_falls_back_to_say_and_a_missing_file_is_left_out() -> None:
    outputs: list[Output] = [Say("Hello", "ru-RU"), Play("gone.wav"), HangUp()]
    root = parse(render(outputs, Urls("Hello", "gone.wav")))
    assert tags(root) == ["Say", "Hangup"]
    assert root[0].attrib == {"language": "ru-RU"}
    assert root[0].text == "Hello"


def test_prompt_text_and_urls_are_escaped() -> None:
    text = 'Tom & Jerry\'s <order> "#42" costs 5 > 3 — Привет, 안녕하세요'
    document = render([Say(text, "en-US"), HangUp()], Urls(text))
    assert "&amp;" in document
    assert "&lt;order&gt;" in document
    root = parse(document)
    assert root[0].text == text
    gather = parse(render([listen(intents=KEYS_ONLY)], Urls()))[0]
    assert gather.get("action") == f"{BASE}/gather?call=c-1&turn=3"


def test_characters_xml_cannot_carry_are_dropped() -> None:
    text = "order\x00 4\x1b2\ud800 ok\t"
    root = parse(render([Say(text, "en-US")], Urls(text)))
    assert root[0].text == "order 42 ok"


def test_prompts_without_an_ending_verb_end_the_document() -> None:
    root = parse(render([Say("One", "en-US"), Lookup("GET", "http://x", {}, 1.0)], Urls()))
    assert tags(root) == ["Play"]
    assert tags(parse(render([], Urls()))) == []


def test_a_prompt_after_the_end_of_the_turn_is_a_bug() -> None:
    with pytest.raises(ValueError, match="ends the turn"):
        render([HangUp(), Say("late", "en-US")], Urls())


def test_transfer_dials_after_the_prompts() -> None:
    root = parse(render([Say("Connecting", "en-US"), Transfer(" +12025550123 ")], Urls()))
    assert tags(root) == ["Play", "Dial"]
    assert root[1].text == "+12025550123"
    assert tags(parse(render([Transfer("  ")], Urls()))) == ["Hangup"]


def test_keypad_intents_gather_one_key_with_the_prompts_nested() -> None:
    outputs: list[Output] = [Say("Hi", "en-US"), Say("Press 1", "en-US"), listen(intents=KEYS_ONLY)]
    root = parse(render(outputs, Urls("Hi")))
    assert tags(root) == ["Gather", "Redirect"]
    gather, redirect = root
    assert gather.attrib == {
        "input": "dtmf",
        "action": Urls().gather_url(),
        "method": "POST",
        "numDigits": "1",
        "finishOnKey": "",
        "timeout": "5",
    }
    assert tags(gather) == ["Say", "Play"]
    assert redirect.attrib == {"method": "POST"}
    assert redirect.text == Urls().no_input_url()


def test_keypad_digits_gather_up_to_max_with_the_finish_key() -> None:
    number = listen(digits={"min": 4, "max": 10, "finish_on": "#"}, timeout=2.5)
    root = parse(render([Say("Order number?", "en-US"), number], Urls(), speech=False))
    assert tags(root) == ["Gather", "Redirect"]
    gather = root[0]
    assert (gather.get("numDigits"), gather.get("finishOnKey"), gather.get("timeout")) == (
        "10",
        "#",
        "3",
    )
    no_finish = {"digits": {"max": 6, "finish_on": None}}
    gather = parse(render([listen_in("en-US", no_finish)], Urls(), speech=False))[0]
    assert (gather.get("numDigits"), gather.get("finishOnKey")) == ("6", "")


def test_speech_intents_gather_a_key_then_record_then_redirect_on_silence() -> None:
    outputs: list[Output] = [Say("Say yes or press 1", "en-US"), listen(intents=YES_NO, timeout=4)]
    root = parse(render(outputs, Urls()))
    assert tags(root) == ["Gather", "Record", "Redirect"]
    gather, record, redirect = root
    assert tags(gather) == ["Play"]
    assert gather.attrib == {
        "input": "dtmf",
        "action": Urls().gather_url(),
        "method": "POST",
        "numDigits": "1",
        "finishOnKey": "",
        "timeout": "1",
    }
    assert record.attrib == {
        "action": Urls().record_url(),
        "method": "POST",
        "timeout": "4",
        "finishOnKey": KEYS,
        "maxLength": "15",
        "playBeep": "false",
        "trim": "trim-silence",
    }
    assert list(record) == []
    assert redirect.text == Urls().no_input_url()


def test_speech_settings_change_the_key_grace_and_the_recording_limit() -> None:
    settings = ListenSettings(key_grace_seconds=2, max_recording_seconds=30)
    root = parse(render([listen(intents=YES_NO)], Urls(), settings=settings))
    assert root[0].get("timeout") == "2"
    assert root[1].get("maxLength") == "30"
    with pytest.raises(ValueError, match="key_grace_seconds"):
        ListenSettings(key_grace_seconds=0)
    with pytest.raises(ValueError, match="max_recording_seconds"):
        ListenSettings(max_recording_seconds=1)


@pytest.mark.parametrize(
    ("language", "spec", "speech", "kind"),
    [
        ("en-US", {"intents": YES_NO}, True, "speech"),
        ("en-US", {"intents": YES_NO}, False, "keys"),
        ("en-US", {"intents": KEYS_ONLY}, True, "keys"),
        ("en-US", {"digits": {"max": 8}}, True, "speech"),
        ("ko-KR", {"digits": {"max": 8}}, True, "speech"),
        ("de-DE", {"digits": {"max": 8}}, True, "keys"),
    ],
)
def test_which_listens_accept_speech(
    language: str, spec: dict[str, Any], speech: bool, kind: str
) -> None:
    heard = listen_in(language, spec)
    assert listen_kind(heard, speech=speech) == kind
    root = parse(render([heard], Urls(), speech=speech))
    assert ("Record" in tags(root)) == (kind == "speech")


def test_spoken_digits_gather_typed_keys_then_collect_the_rest() -> None:
    number = listen(digits={"min": 4, "max": 10, "finish_on": "#"}, timeout=6)
    root = parse(render([Say("Say or type it", "en-US"), number], Urls()))
    assert tags(root) == ["Gather", "Record", "Redirect"]
    gather = root[0]
    assert (gather.get("numDigits"), gather.get("finishOnKey"), gather.get("timeout")) == (
        "10",
        "",
        "1",
    )

    assert needs_more_digits(number, "4")
    assert needs_more_digits(number, "420")
    assert not needs_more_digits(number, "")
    assert not needs_more_digits(number, "4207#")
    assert not needs_more_digits(number, "#")
    assert not needs_more_digits(number, "4*")
    assert not needs_more_digits(number, "4207420742")
    assert not needs_more_digits(number, "4", speech=False)
    assert not needs_more_digits(listen(digits={"max": 1}), "4")
    assert not needs_more_digits(listen(intents=YES_NO), "1")

    more = parse(render_more_digits(number, "4", Urls()))
    assert tags(more) == ["Gather", "Redirect"]
    gather, redirect = more
    assert gather.attrib == {
        "input": "dtmf",
        "action": Urls().gather_url("4"),
        "method": "POST",
        "numDigits": "9",
        "finishOnKey": "#",
        "timeout": "6",
        "actionOnEmptyResult": "true",
    }
    assert list(gather) == []
    assert redirect.text == Urls().gather_url("4")
    assert parse(render_more_digits(number, "420", Urls()))[0].get("numDigits") == "7"


@pytest.mark.parametrize("typed", ["", "4#", "x", "1234567890", "٤"])
def test_more_digits_needs_the_start_of_a_number(typed: str) -> None:
    with pytest.raises(ValueError, match="start of a number"):
        render_more_digits(listen(digits={"max": 10}), typed, Urls())


def test_more_digits_needs_a_digit_listen() -> None:
    with pytest.raises(ValueError, match="does not collect digits"):
        render_more_digits(listen(intents=YES_NO), "1", Urls())


def test_sms_reply_is_one_escaped_message_or_nothing() -> None:
    root = parse(render_message('Reply <C> & "X" — 확인'))
    assert tags(root) == ["Message"]
    assert root[0].text == 'Reply <C> & "X" — 확인'
    assert tags(parse(render_message("  "))) == []


def test_polite_refusal_says_and_hangs_up() -> None:
    root = parse(render_say_hangup("Sorry, this number is not in service.", "en-GB"))
    assert tags(root) == ["Say", "Hangup"]
    assert root[0].attrib == {"language": "en-GB"}
    assert root[0].text == "Sorry, this number is not in service."


def test_wait_pauses_then_redirects() -> None:
    root = parse(render_wait(f"{BASE}/poll?call=c-1&turn=3", 2))
    assert tags(root) == ["Pause", "Redirect"]
    assert root[0].attrib == {"length": "2"}
    assert root[1].text == f"{BASE}/poll?call=c-1&turn=3"
