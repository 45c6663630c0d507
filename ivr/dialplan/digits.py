"""Digits as people say them: "four two oh seven" -> "4207", and back.

Used by digit collection (a caller may say an order number instead of typing it), by the
``digits`` template filter, and by the recognizers' digit grammars.
"""

from __future__ import annotations

import re

# Words per language (the part of the tag before "-") and the digit each one means. The first
# word listed for a digit is the one used when spelling digits out.
DIGIT_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
        "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    },
    "ru": {
        "ноль": "0", "нуль": "0", "один": "1", "одна": "1", "два": "2", "две": "2", "три": "3",
        "четыре": "4", "пять": "5", "шесть": "6", "семь": "7", "восемь": "8", "девять": "9",
    },
    "ko": {
        "공": "0", "영": "0", "일": "1", "이": "2", "삼": "3", "사": "4", "오": "5", "육": "6",
        "륙": "6", "칠": "7", "팔": "8", "구": "9",
        "하나": "1", "둘": "2", "셋": "3", "넷": "4", "다섯": "5", "여섯": "6", "일곱": "7",
        "여덟": "8", "아홉": "9",
    },
}  # fmt: skip

# "double four" -> "44" in English.
_REPEATERS = {"en": {"double": 2, "triple": 3}}
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def base_language(language: str) -> str:
    return language.replace("_", "-").split("-")[0].lower()


def digit_words(language: str) -> dict[str, str]:
    """Spoken word -> digit for ``language`` (empty when the language has no table)."""
    return DIGIT_WORDS.get(base_language(language), {})


def _segment(token: str, words: dict[str, str]) -> list[str] | None:
    """Split a token written without spaces ("사이공칠") into digit words, longest first."""
    if not token:
        return []
    for size in range(min(len(token), max(map(len, words), default=0)), 0, -1):
        head = token[:size]
        if head in words and (rest := _segment(token[size:], words)) is not None:
            return [words[head], *rest]
    return None


def parse_spoken_digits(text: str, language: str) -> str | None:
    """The digits in ``text`` ("four two oh seven", "4 2 0 7", "double 5"), or None.

    Words that are not digits ("my order is ...") are skipped; None means no digit at all.
    """
    words = digit_words(language)
    repeaters = _REPEATERS.get(base_language(language), {})
    digits: list[str] = []
    repeat = 1
    for token in _TOKEN.findall(text.lower()):
        if token in repeaters:
            repeat = repeaters[token]
            continue
        if token.isdecimal():
            found = [str(int(ch)) for ch in token]
        else:
            found = _segment(token, words) or []
        if found:
            digits.extend([found[0]] * repeat + found[1:])
        repeat = 1
    return "".join(digits) or None


def spell_digits(value: object, language: str) -> str:
    """``"4207"`` -> ``"four two zero seven"``; unknown languages get ``"4 2 0 7"``."""
    spoken: dict[str, str] = {}
    for word, digit in digit_words(language).items():
        spoken.setdefault(digit, word)
    return " ".join(spoken.get(ch, ch) for ch in str(value) if ch.isdecimal())
