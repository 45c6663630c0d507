"""Durations as plans and the API write them."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from ivr.dialplan.durations import Duration, format_duration, parse_duration
from ivr.dialplan.schema import Attempts


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        (" 5 m ", 300.0),
        ("45", 45.0),
        ("0", 0.0),
        (30, 30.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "bad duration '5 minutes': use 30s, 10m, 1h, 2d or a number of seconds"),
        ("1w", "bad duration '1w': use 30s, 10m, 1h, 2d or a number of seconds"),
        ("-5s", "bad duration '-5s': use 30s, 10m, 1h, 2d or a number of seconds"),
        ("", "bad duration '': use 30s, 10m, 1h, 2d or a number of seconds"),
        ("s", "bad duration 's': use 30s, 10m, 1h, 2d or a number of seconds"),
        ("1h30m", "bad duration '1h30m': use 30s, 10m, 1h, 2d or a number of seconds"),
        (True, "bad duration True: use 30s, 10m, 1h, 2d or a number of seconds"),
        (None, "bad duration None: use 30s, 10m, 1h, 2d or a number of seconds"),
        ([1], "bad duration [1]: use 30s, 10m, 1h, 2d or a number of seconds"),
        (-1, "bad duration -1: must not be negative"),
        (-0.5, "bad duration -0.5: must not be negative"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.5, "500ms"),
        (0.001, "1ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (90.0, "90s"),
        (600.0, "10m"),
        (5400.0, "90m"),
        (3600.0, "1h"),
        (86400.0, "1d"),
        (172800.0, "2d"),
        (90061.0, "90061s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_duration_type_parses_and_serializes() -> None:
    adapter: TypeAdapter[float] = TypeAdapter(Duration)
    assert adapter.validate_python("10m") == 600.0
    assert adapter.dump_python(600.0) == "10m"
    assert adapter.dump_json(0.25) == b'"250ms"'
    with pytest.raises(ValidationError, match="bad duration 'later'"):
        adapter.validate_python("later")


def test_retry_after_takes_one_duration_or_a_list() -> None:
    assert Attempts.model_validate({"max": 2, "retry_after": "1s"}).retry_after == [1.0]
    assert Attempts.model_validate({"max": 2, "retry_after": 30}).retry_after == [30.0]
    attempts = Attempts.model_validate({"max": 4, "retry_after": ["10m", "1h"]})
    assert [attempts.delay_before(n) for n in (1, 2, 3, 4, 5)] == [
        600.0,
        600.0,
        3600.0,
        3600.0,
        3600.0,
    ]
    assert attempts.model_dump() == {"max": 4, "retry_after": ["10m", "1h"]}
    with pytest.raises(ValidationError, match="retry_after needs at least one duration"):
        Attempts.model_validate({"retry_after": []})
