"""What the robot says to get a conversation back on track, in the plan's language.

Two things, both pure text building used by the engine:

- the **key hint** added when a spoken answer was turned away ("You can also press 1 for yes,
  or 2 for no."): a caller the recognizer does not understand can always use the keypad;
- the **read-back** of digits heard with low confidence ("I heard four two zero seven. Press 1
  if that is right, or 2 to try again.") and the yes/no listen that takes the answer.

Languages without a table here get no derived hint (a plan may write its own ``key_hint``) and
no read-back (``confirm: auto`` then never confirms; the validator rejects ``always``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ivr.dialplan.digits import base_language, spell_digits
from ivr.dialplan.schema import Intent, ListenSpec

# The names of the read-back's two answers (its intents, as transcripts show them).
CONFIRMED = "yes"
REJECTED = "no"


@dataclass(frozen=True)
class Phrasing:
    """One language's recovery phrases."""

    press: str  # "{items}": the keys and what they mean
    item: str  # "{key}", "{label}"
    joiner: str
    last_joiner: str
    type_digits: str  # the hint for a digit question
    read_back: str  # "{digits}"
    yes: tuple[str, ...]
    no: tuple[str, ...]


PHRASINGS: dict[str, Phrasing] = {
    "en": Phrasing(
        press="You can also press {items}.",
        item="{key} for {label}",
        joiner=", ",
        last_joiner=", or ",
        type_digits="You can also type the number on your keypad.",
        read_back="I heard {digits}. Press 1 if that is right, or 2 to try again.",
        yes=("yes", "yeah", "correct", "right", "that's right"),
        no=("no", "wrong", "again", "try again"),
    ),
    "ru": Phrasing(
        press="Можно также нажать {items}.",
        item="{key} — {label}",
        joiner=", ",
        last_joiner=", ",
        type_digits="Можно также набрать номер на клавиатуре телефона.",
        read_back="Вы назвали: {digits}. Нажмите 1, если верно, или 2, чтобы повторить.",
        yes=("да", "верно", "правильно"),
        no=("нет", "неверно", "неправильно", "повторить"),
    ),
    "ko": Phrasing(
        press="번호를 눌러 답하셔도 됩니다. {items}.",
        item="{label} {key}번",
        joiner=", ",
        last_joiner=", ",
        type_digits="전화기 버튼으로 번호를 입력하셔도 됩니다.",
        read_back="말씀하신 번호는 {digits}입니다. 맞으면 1번, 다시 하시려면 2번을 눌러 주세요.",
        yes=("네", "예", "맞아요"),
        no=("아니요", "아니오", "틀려요", "다시"),
    ),
}


def phrasing(language: str) -> Phrasing | None:
    return PHRASINGS.get(base_language(language))


def key_hint(intents: Mapping[str, Intent], language: str) -> str:
    """ "You can also press 1 for order, or 0 for operator." ('' without keys or a table)."""
    words = phrasing(language)
    keyed = [(name, intent) for name, intent in intents.items() if intent.press is not None]
    if words is None or not keyed:
        return ""
    items = [
        words.item.format(key=intent.press, label=intent.say[0] if intent.say else name)
        for name, intent in keyed
    ]
    listed = items[0]
    for position, item in enumerate(items[1:], 2):
        listed += (words.last_joiner if position == len(items) else words.joiner) + item
    return words.press.format(items=listed)


def digits_hint(language: str) -> str:
    words = phrasing(language)
    return words.type_digits if words is not None else ""


def read_back(digits: str, language: str) -> str:
    """The question that reads ``digits`` back ('' for a language without a table)."""
    words = phrasing(language)
    if words is None:
        return ""
    return words.read_back.format(digits=spell_digits(digits, language))


def confirm_listen(listen: ListenSpec, language: str) -> ListenSpec:
    """The yes (1) / no (2) question that follows a read-back, with the digit question's
    timeout and confidence threshold."""
    words = phrasing(language) or PHRASINGS["en"]
    intents = {
        CONFIRMED: Intent(say=list(words.yes), press="1"),
        REJECTED: Intent(say=list(words.no), press="2"),
    }
    return ListenSpec(
        intents=intents,
        timeout=listen.timeout,
        retries=listen.retries,
        min_confidence=listen.min_confidence,
    )
