"""Prompt templates: sandboxed Jinja2 with the plan locale's date, time and number filters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ivr.dialplan.templating import environment, render, template_names

WHEN = dt.datetime(2026, 11, 24, 10, 5)
VARS: dict[str, Any] = {"when": WHEN, "iso": "2026-11-24T16:30:00", "day": "2026-11-24"}


def ok(source: str, language: str, variables: dict[str, Any] | None = None) -> str:
    text, error = render(source, VARS if variables is None else variables, language)
    assert error is None, error
    return text


def fails(source: str, language: str = "en-US", variables: dict[str, Any] | None = None) -> str:
    text, error = render(source, VARS if variables is None else variables, language)
    assert text == ""
    assert error is not None
    return error


@pytest.mark.parametrize(
    ("language", "date", "with_year"),
    [
        ("en-US", "Tuesday, November 24", "Tuesday, November 24, 2026"),
        ("ru-RU", "вторник, 24 ноября", "вторник, 24 ноября 2026 г."),
        ("ko-KR", "11월 24일 화요일", "2026년 11월 24일 화요일"),
        ("en-GB", "Tuesday, 24 November", "Tuesday, 24 November 2026"),
        ("de-DE", "Dienstag, 24. November", "Dienstag, 24. November 2026"),
    ],
)
def test_date_filter_speaks_the_plan_locale(language: str, date: str, with_year: str) -> None:
    assert ok("{{ when | date }}", language) == date
    assert ok("{{ iso | date }}", language) == date
    assert ok("{{ day | date }}", language) == date
    assert ok("{{ d | date }}", language, {"d": WHEN.date()}) == date
    assert ok("{{ when | date(year=True) }}", language) == with_year


def test_time_filter_per_locale() -> None:
    assert ok("{{ when | time }}", "en-US") == "10:05 AM"
    assert ok("{{ iso | time }}", "en-US") == "4:30 PM"
    assert ok("{{ when | time }}", "ru-RU") == "10:05"
    assert ok("{{ iso | time }}", "ru-RU") == "16:30"
    assert ok("{{ when | time }}", "en-GB") == "10:05"
    korean = ok("{{ iso | time }}", "ko-KR")
    assert korean == "오후 4:30"  # spoken prompts get the day period spelled out
    assert ok("{{ t | time }}", "en-US", {"t": "09:15"}) == "9:15 AM"
    assert ok("{{ t | time }}", "en-US", {"t": dt.time(21, 0)}) == "9:00 PM"


def test_an_offset_is_kept_whatever_the_machine_time_zone() -> None:
    moscow = dt.timezone(dt.timedelta(hours=3))
    assert ok("{{ t | time }}", "ru-RU", {"t": "2026-11-24T23:30:00+03:00"}) == "23:30"
    assert ok(
        "{{ t | time }}", "ru-RU", {"t": dt.datetime(2026, 11, 24, 23, 30, tzinfo=moscow)}
    ) == ("23:30")
    assert ok("{{ t | date }}", "ru-RU", {"t": "2026-11-24T23:30:00+03:00"}) == "вторник, 24 ноября"


def test_datetime_filter() -> None:
    assert ok("{{ when | datetime }}", "en-US") == "Tuesday, November 24, 10:05 AM"
    assert ok("{{ iso | datetime }}", "ru-RU") == "вторник, 24 ноября, 16:30"


@pytest.mark.parametrize(
    ("source", "variables", "error"),
    [
        ("{{ day | time }}", None, "ValueError: '2026-11-24' has no time of day"),
        ("{{ d | time }}", {"d": dt.date(2026, 11, 24)}, "has no time of day"),
        ("{{ day | datetime }}", None, "ValueError: '2026-11-24' has no time of day"),
        ("{{ t | date }}", {"t": "10:30"}, "ValueError: '10:30' has no date"),
        ("{{ t | date }}", {"t": dt.time(10, 30)}, "has no date"),
        ("{{ t | date }}", {"t": "next tuesday"}, "not an ISO 8601 date or time: 'next tuesday'"),
        ("{{ t | time }}", {"t": 42}, "ValueError: not an ISO 8601 date or time: '42'"),
        ("{{ n | number }}", {"n": "lots"}, "ValueError: not a number: 'lots'"),
        ("{{ n | money }}", {"n": None}, "ValueError: not a number: None"),
    ],
)
def test_filters_reject_values_they_cannot_read(
    source: str, variables: dict[str, Any] | None, error: str
) -> None:
    assert error in fails(source, variables=variables)


@pytest.mark.parametrize(
    ("language", "number", "money", "roubles"),
    [
        ("en-US", "1,234,567.5", "$1,234,567.50", "RUB1,234,567.50"),
        ("ru-RU", "1 234 567,5", "1 234 567,50 $", "1 234 567,50 ₽"),
        ("ko-KR", "1,234,567.5", "US$1,234,567.50", "RUB1,234,567.50"),
        ("de-DE", "1.234.567,5", "1.234.567,50 $", "1.234.567,50 RUB"),
    ],
)
def test_number_and_money_filters(language: str, number: str, money: str, roubles: str) -> None:
    variables = {"n": 1234567.5, "s": "1234567.50"}
    assert ok("{{ n | number }}", language, variables) == number
    assert ok("{{ n | money }}", language, variables) == money
    assert ok("{{ s | money('RUB') }}", language, variables) == roubles


def test_money_in_won_has_no_minor_units() -> None:
    assert ok("{{ 12500 | money('KRW') }}", "ko-KR") == "₩12,500"
    assert ok("{{ 3 | number }}", "en-US") == "3"


@pytest.mark.parametrize(
    ("language", "spoken"),
    [
        ("en-US", "four two zero seven"),
        ("ru-RU", "четыре два ноль семь"),
        ("ko-KR", "사 이 공 칠"),
        ("de-DE", "4 2 0 7"),
    ],
)
def test_digits_filter(language: str, spoken: str) -> None:
    assert ok("{{ order | digits }}", language, {"order": "42-07"}) == spoken
    assert ok("{{ order | digits }}", language, {"order": 4207}) == spoken


def test_rendering_collapses_whitespace() -> None:
    assert (
        ok("  Hello\n   {{ name }},\tgoodbye.  ", "en-US", {"name": "Ann"}) == "Hello Ann, goodbye."
    )


def test_missing_variables_and_attributes_render_empty() -> None:
    # A lookup answer without the expected field must not break the call.
    assert ok("Order is {{ order.status }}.", "en-US", {}) == "Order is ."
    assert ok("Order is {{ order.status }}.", "en-US", {"order": {}}) == "Order is ."
    assert ok("{{ order.status }}", "en-US", {"order": {"status": "late"}}) == "late"


def test_runtime_errors_come_back_as_text() -> None:
    assert fails("{{ 1 / 0 }}") == "ZeroDivisionError: division by zero"
    assert fails("{{ x + 1 }}", variables={"x": "a"}).startswith("TypeError: ")


@pytest.mark.parametrize(
    "source",
    [
        "{{ n.__class__ }}",
        "{{ n.__class__.__mro__ }}",
        "{{ f.__globals__ }}",
        "{{ f.__globals__['os'] }}",
        "{{ f.__code__ }}",
        "{{ d.__class__.__init__ }}",
        "{{ n.__class__.__subclasses__ }}",
        "{{ '{0.__class__}'.format(n) }}",
    ],
)
def test_sandbox_hides_unsafe_attributes(source: str) -> None:
    assert ok(source, "en-US", {"n": 1, "f": render, "d": {}}) == ""


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "SecurityError: access to attribute"),
        ("{{ range(10 ** 9) | length }}", "OverflowError: Range too big."),
        ("{{ d.clear() }}", "SecurityError: access to attribute 'clear' of 'dict' object"),
        ("{{ d.update(b=2) }}", "SecurityError: access to attribute 'update' of 'dict' object"),
        ("{{ l.append(3) }}", "SecurityError: access to attribute 'append' of 'list' object"),
        ("{{ l.pop() }}", "SecurityError: access to attribute 'pop' of 'list' object"),
    ],
)
def test_sandbox_blocks_escapes_and_changes_to_variables(source: str, error: str) -> None:
    variables: dict[str, Any] = {"d": {"a": 1}, "l": [1, 2]}
    assert fails(source, variables=variables).startswith(error)
    assert variables == {"d": {"a": 1}, "l": [1, 2]}


def test_reading_methods_are_allowed() -> None:
    variables = {"l": [1, 2], "d": {"a": 1}, "s": "late"}
    source = "{{ l | join(',') }} {{ d.items() | list }} {{ d.get('a') }} {{ s.upper() }}"
    assert ok(source, "en-US", variables) == "1,2 [('a', 1)] 1 LATE"


def test_environment_is_sandboxed_and_shared_per_language() -> None:
    env = environment("en-US")
    assert isinstance(env, ImmutableSandboxedEnvironment)
    assert environment("en-US") is env
    assert environment("ru-RU") is not env
    assert {"date", "time", "datetime", "number", "money", "digits"} <= set(env.filters)


def test_template_names() -> None:
    assert template_names("Hi {{ name }}, {{ when | date }} {{ order.status }}", "en-US") == {
        "name",
        "when",
        "order",
    }
    assert template_names(
        "{% set x = 1 %}{{ x }}{% for i in items %}{{ i }}{% endfor %}", "en-US"
    ) == {"items"}
    with pytest.raises(jinja2.TemplateSyntaxError, match="unexpected end of template"):
        template_names("{{ name ", "en-US")
    with pytest.raises(jinja2.TemplateAssertionError, match="No filter named 'weekday'"):
        template_names("{{ when | weekday }}", "en-US")
