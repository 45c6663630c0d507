"""Prompt templates: sandboxed Jinja2 with locale-aware filters (Babel).

``{{ when | date }}`` says "Tuesday, November 24" in en-US and "вторник, 24 ноября" in ru-RU.
Rendering never raises: a prompt that cannot be rendered comes back with the error so the
engine can log it and carry on (a caller must never meet a stack trace).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import jinja2
from babel import Locale
from babel.dates import format_date, format_time, get_time_format
from babel.numbers import format_currency, format_decimal
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from ivr.dialplan.digits import spell_digits

# Names every template may use without declaring them.
BUILTIN_NAMES = frozenset({"caller", "called", "attempt", "answered_by", "language"})

_YEAR = re.compile(r"(\s*'[^']*')?[,\s]*\by+(\s*'[^']*'\.?|년|年)?[,\s]*")


def _as_datetime(value: object) -> dt.datetime | dt.date | dt.time:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value
    text = str(value)
    # A date alone ("2026-11-24") stays a date: datetime.fromisoformat would make it midnight.
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat, dt.time.fromisoformat):
        try:
            return parse(text)
        except ValueError:
            continue
    raise ValueError(f"not an ISO 8601 date or time: {text!r}")


def _date_without_year(locale: str) -> str:
    full = Locale.parse(locale).date_formats["full"].pattern
    return _YEAR.sub(" ", full).strip(" ,")


def _spoken_time(locale: str) -> str:
    """The locale's short time pattern with the day period spelled out.

    Spoken prompts need "오후 4:30", not the abbreviated "PM 4:30" Korean CLDR data gives.
    """
    pattern = get_time_format("short", locale=locale).pattern
    return re.sub(r"(?<![a'])a(?![a'])", "aaaa", pattern)


def _filters(locale: str, language: str) -> dict[str, Any]:
    def date(value: object, year: bool = False) -> str:
        moment = _as_datetime(value)
        if isinstance(moment, dt.time):
            raise ValueError(f"{value!r} has no date")
        pattern = "full" if year else _date_without_year(locale)
        return str(format_date(moment, pattern, locale=locale))

    def time(value: object) -> str:
        moment = _as_datetime(value)
        if isinstance(moment, dt.date) and not isinstance(moment, dt.datetime):
            raise ValueError(f"{value!r} has no time of day")
        return str(format_time(moment, _spoken_time(locale), locale=locale))

    def datetime(value: object) -> str:
        return f"{date(value)}, {time(value)}"

    def number(value: object) -> str:
        return str(format_decimal(_decimal(value), locale=locale))

    def money(value: object, currency: str = "USD") -> str:
        return str(format_currency(_decimal(value), currency, locale=locale))

    def digits(value: object) -> str:
        return spell_digits(value, language)

    return {
        "date": date,
        "time": time,
        "datetime": datetime,
        "number": number,
        "money": money,
        "digits": digits,
    }


def _decimal(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


@lru_cache(maxsize=16)
def environment(language: str) -> SandboxedEnvironment:
    """One sandboxed environment per plan language (filters are bound to its locale)."""
    # Immutable: a prompt must not change the variables it reads (pop, clear, append ...).
    env = ImmutableSandboxedEnvironment(
        autoescape=False,
        undefined=jinja2.ChainableUndefined,
        keep_trailing_newline=False,
    )
    env.filters.update(_filters(language.replace("-", "_"), language))
    return env


@lru_cache(maxsize=4096)
def _compiled(language: str, source: str) -> jinja2.Template:
    return environment(language).from_string(source)


def render(source: str, variables: dict[str, Any], language: str) -> tuple[str, str | None]:
    """``(text, error)``: the rendered prompt, or ``("", reason)`` when it cannot be rendered."""
    try:
        text = _compiled(language, source).render(variables)
    except Exception as exc:  # templates are user input: report, never crash a call
        return "", f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()), None


def template_names(source: str, language: str) -> set[str]:
    """Variables a template reads.

    Raises ``jinja2.TemplateSyntaxError`` on bad syntax and ``TemplateAssertionError`` (a
    subclass) on an unknown filter, which Jinja only notices when compiling.
    """
    env = environment(language)
    tree = env.parse(source)
    env.compile(tree)
    return set(meta.find_undeclared_variables(tree))
