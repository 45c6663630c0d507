"""Turning the values an integrator or operator passes into a plan's typed variables.

Values are kept JSON-friendly (dates as ISO 8601 text) so a session serializes as is; the
template filters parse them back. Every problem names the variable it is about.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

from ivr.dialplan.schema import Plan, VariableType

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class VariableError(ValueError):
    """One or more variables are missing, unknown or of the wrong type."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {why}" for name, why in problems.items()))
        self.problems = problems


def _iso(parse: Any, value: object, kind: str) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    try:
        return str(parse(str(value)).isoformat())
    except ValueError as exc:
        raise ValueError(f"expected an ISO 8601 {kind}, got {value!r}") from exc


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def _digits(value: object) -> str:
    text = str(value).strip()
    if not text.isdecimal() or not text.isascii():
        raise ValueError(f"expected digits only, got {value!r}")
    return text


def _phone(value: object) -> str:
    try:
        number = phonenumbers.parse(str(value), None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"expected an E.164 number such as +12025550123, got {value!r}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _money(value: object) -> str:
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"expected an amount such as 12.50, got {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"expected a finite amount, got {value!r}")
    return str(amount)


def _json(value: object) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected JSON: {exc}") from exc
    return value


def _number(kind: type[int] | type[float], value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return kind(value.strip() if isinstance(value, str) else value)
    except ValueError as exc:
        wanted = "an integer" if kind is int else "a number"
        raise ValueError(f"expected {wanted}, got {value!r}") from exc


def coerce_value(kind: VariableType, value: object) -> Any:
    """``value`` as a JSON-friendly value of ``kind``; raises ``ValueError`` saying why not."""
    if kind == "str":
        return str(value)
    if kind in ("int", "float"):
        return _number(int if kind == "int" else float, value)
    converters: dict[str, Any] = {
        "bool": _bool,
        "date": lambda v: _iso(dt.date.fromisoformat, v, "date"),
        "datetime": lambda v: _iso(dt.datetime.fromisoformat, v, "date and time"),
        "time": lambda v: _iso(dt.time.fromisoformat, v, "time"),
        "digits": _digits,
        "phone": _phone,
        "money": _money,
        "json": _json,
    }
    return converters[kind](value)


def coerce_variables(plan: Plan, given: dict[str, object]) -> dict[str, Any]:
    """The plan's variables from ``given`` plus defaults; raises ``VariableError``."""
    problems: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in given:
        if name not in plan.variables:
            known = ", ".join(sorted(plan.variables)) or "none"
            problems[name] = f"unknown variable (plan {plan.id} declares: {known})"
    for name, spec in plan.variables.items():
        value = given.get(name, spec.default)
        if value is None:
            problems[name] = f"missing ({spec.type})"
            continue
        try:
            values[name] = coerce_value(spec.type, value)
        except ValueError as exc:
            problems[name] = str(exc)
    if problems:
        raise VariableError(problems)
    return values
