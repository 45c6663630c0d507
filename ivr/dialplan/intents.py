"""Mapping a caller's words or keys to one of a state's intents.

A phrase matches when its words appear, in order and adjacent, in what was said; the
longest matching phrase wins ("stop calling" beats "no" in "no stop calling me"). Two
intents matching equally well is no match: the caller is asked again rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ivr.dialplan.schema import Intent

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


def words_of(text: str) -> list[str]:
    """Lower-case words of ``text`` without punctuation."""
    return _WORD.findall(text.lower())


def _contains(words: list[str], phrase: list[str]) -> bool:
    size = len(phrase)
    return size > 0 and any(words[i : i + size] == phrase for i in range(len(words) - size + 1))


def match_speech(intents: Mapping[str, Intent], text: str) -> str | None:
    """The intent whose phrase best matches ``text``; None when nothing or a tie matches."""
    words = words_of(text)
    best_size, best = 0, set[str]()
    for name, intent in intents.items():
        for phrase in intent.say:
            phrase_words = words_of(phrase)
            if not _contains(words, phrase_words):
                continue
            if len(phrase_words) > best_size:
                best_size, best = len(phrase_words), {name}
            elif len(phrase_words) == best_size:
                best.add(name)
    return next(iter(best)) if len(best) == 1 else None


def match_keys(intents: Mapping[str, Intent], keys: str) -> str | None:
    """The intent bound to the first key pressed (a trailing ``#`` is ignored)."""
    key = keys.strip().rstrip("#")[:1] or keys.strip()[:1]
    for name, intent in intents.items():
        if intent.press is not None and intent.press == key:
            return name
    return None
