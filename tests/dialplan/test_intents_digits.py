"""Matching a caller's words and keys to intents, and digits as people say them."""

from __future__ import annotations

import pytest

from ivr.dialplan.digits import (
    base_language,
    digit_words,
    parse_spoken_digits,
    spell_digits,
)
from ivr.dialplan.intents import match_keys, match_speech, words_of
from ivr.dialplan.schema import Intent

INTENTS = {
    "confirm": Intent(say=["yes", "yeah", "that's right"], press="1"),
    "cancel": Intent(say=["no", "cancel", "i can't come"], press="2"),
    "stop": Intent(say=["stop", "stop calling", "unsubscribe"], press="9"),
    "operator": Intent(say=["operator", "a real person"]),
    "star": Intent(press="*"),
    "pound": Intent(press="#"),
}


def test_words_are_lower_case_without_punctuation() -> None:
    assert words_of("Yes, THAT'S right!  I can't_come") == [
        "yes",
        "that's",
        "right",
        "i",
        "can't",
        "come",
    ]
    assert words_of("Да, верно. 네!") == ["да", "верно", "네"]
    assert words_of("?! ...") == []


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("yes", "confirm"),
        ("YES!", "confirm"),
        ("uh yeah I guess", "confirm"),
        ("that's right", "confirm"),
        ("no", "cancel"),
        ("sorry I can't come", "cancel"),
        # the longest matching phrase wins
        ("no stop calling me", "stop"),
        ("yes no i can't come", "cancel"),
        ("give me a real person now", "operator"),
        # phrases match whole words, in order and adjacent
        ("yesterday", None),
        ("real a person", None),
        ("a person", None),
        ("calling stop", "stop"),
        ("", None),
        ("mumble", None),
        # equally long phrases of two intents: ask again rather than guess
        ("yes no", None),
        ("no stop", None),
        ("yes operator", None),
    ],
)
def test_match_speech(text: str, intent: str | None) -> None:
    assert match_speech(INTENTS, text) == intent


def test_a_phrase_matching_in_two_places_of_one_intent_is_still_that_intent() -> None:
    intents = {"a": Intent(say=["go", "go on"]), "b": Intent(say=["wait"])}
    assert match_speech(intents, "go go on") == "a"
    assert match_speech(intents, "go wait") is None


def test_a_phrase_without_words_never_matches() -> None:
    intents = {"odd": Intent(say=["?!"]), "ok": Intent(say=["ok"])}
    assert match_speech(intents, "?! ok") == "ok"
    assert match_speech(intents, "?!") is None


def test_shorter_phrase_after_a_longer_match_does_not_tie() -> None:
    intents = {"stop": Intent(say=["stop calling"]), "halt": Intent(say=["stop"])}
    assert match_speech(intents, "stop calling") == "stop"
    assert match_speech(intents, "stop") == "halt"


@pytest.mark.parametrize(
    ("keys", "intent"),
    [
        ("1", "confirm"),
        ("2#", "cancel"),
        ("  9 ", "stop"),
        ("91", "stop"),
        ("*", "star"),
        ("#", "pound"),
        ("##", "pound"),
        ("5", None),
        ("0", None),
        ("", None),
        ("   ", None),
    ],
)
def test_match_keys_uses_the_first_key(keys: str, intent: str | None) -> None:
    assert match_keys(INTENTS, keys) == intent


def test_keys_without_bound_intents() -> None:
    assert match_keys({"talk": Intent(say=["hello"])}, "1") is None


# -- digits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "digits"),
    [
        ("four two oh seven", "en-US", "4207"),
        ("Four, two, O, seven.", "en-GB", "4207"),
        ("zero one two three four five six seven eight nine", "en", "0123456789"),
        ("my number is 4 2 0 7", "en-US", "4207"),
        ("4207", "en-US", "4207"),
        ("it is 42 oh 7", "en-US", "4207"),
        ("double four triple one", "en-US", "44111"),
        ("double 5", "en-US", "55"),
        ("double 56", "en-US", "556"),
        ("double", "en-US", None),
        ("double the order five", "en-US", "5"),
        ("fourteen", "en-US", None),
        ("no idea", "en-US", None),
        ("", "en-US", None),
        ("oneone", "en-US", "11"),
        ("четыре два ноль семь", "ru-RU", "4207"),
        ("Один, две, три; нуль", "ru", "1230"),
        ("восемь девять шесть пять", "ru-RU", "8965"),
        ("двадцать", "ru-RU", None),
        ("사 이 공 칠", "ko-KR", "4207"),
        ("사이공칠", "ko-KR", "4207"),
        ("영 일 육 륙 팔 구", "ko_KR", "016689"),
        ("하나 둘 셋 넷 다섯 여섯 일곱 여덟 아홉", "ko-KR", "123456789"),
        ("일곱여덟", "ko-KR", "78"),
        ("번호는 사이공칠 입니다", "ko-KR", "4207"),
        ("double 4", "ko-KR", "4"),
        ("vier zwei 4 2", "de-DE", "42"),
        ("٤٢", "en-US", "42"),
    ],
)
def test_parse_spoken_digits(text: str, language: str, digits: str | None) -> None:
    assert parse_spoken_digits(text, language) == digits


@pytest.mark.parametrize(
    ("value", "language", "spoken"),
    [
        ("4207", "en-US", "four two zero seven"),
        (4207, "en", "four two zero seven"),
        ("+1 (202) 555-0100", "en-US", "one two zero two five five five zero one zero zero"),
        ("4207", "ru-RU", "четыре два ноль семь"),
        ("1122", "ru-RU", "один один два два"),
        ("4207", "ko-KR", "사 이 공 칠"),
        ("1269", "ko_KR", "일 이 육 구"),
        ("4207", "de-DE", "4 2 0 7"),
        ("", "en-US", ""),
        ("abc", "en-US", ""),
    ],
)
def test_spell_digits(value: object, language: str, spoken: str) -> None:
    assert spell_digits(value, language) == spoken


@pytest.mark.parametrize("language", ["en-US", "ru-RU", "ko-KR"])
def test_spelled_digits_read_back(language: str) -> None:
    number = "9081726354"
    assert parse_spoken_digits(spell_digits(number, language), language) == number


def test_digit_word_tables() -> None:
    assert base_language("ko_KR") == "ko"
    assert base_language("EN-us") == "en"
    assert base_language("ru") == "ru"
    assert digit_words("de-DE") == {}
    for language in ("en", "ru", "ko"):
        assert set(digit_words(language).values()) == set("0123456789")
