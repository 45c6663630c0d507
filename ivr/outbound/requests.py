"""What an integrator sends to create a notification, checked field by field.

Shape errors come from pydantic; errors that need the plans or the policy (unknown plan, a
missing variable, a bad time zone, a window that closes before it opens) are raised as
``RequestError`` with the same ``field -> message`` form, so the API answers 422 naming every
bad field at once.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.dialplan.durations import Duration
from ivr.dialplan.loader import PlanSet
from ivr.dialplan.schema import Plan
from ivr.dialplan.variables import VariableError, coerce_variables
from ivr.outbound.policy import localize, recipient_timezone
from ivr.outbound.policy_hours import zone
from ivr.store import NewNotification

# Sane bounds for an integrator's attempts override: a robot must not hammer anyone.
MAX_ATTEMPTS = 10
MIN_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 7 * 86400.0
# An idempotency key is the integrator's own id for the request (an order or appointment id).
MAX_IDEMPOTENCY_KEY = 200
# E.164 as people write it: a +, then digits grouped by spaces, dashes, dots or parentheses.
_WRITTEN_NUMBER = re.compile(r"\+[0-9][0-9 ().-]{0,39}")


class RequestError(ValueError):
    """Fields of a request that cannot be accepted, each with the reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {why}" for field, why in problems.items()))
        self.problems = problems

    @classmethod
    def of(cls, error: ValidationError) -> RequestError:
        problems = {}
        for detail in error.errors():
            field = ".".join(str(part) for part in detail["loc"]) or "body"
            problems[field] = detail["msg"].removeprefix("Value error, ")
        return cls(problems)


def request_error(error: ValidationError) -> RequestError:
    """``RequestError.of(error)`` with each location cut to the field it is about.

    For a union field (``retry_after: list[Duration] | Duration``) pydantic appends the member
    it tried (``list[function-before[...]]``) to the location; that names no field. The
    message of the last member tried is kept, as RequestError.of does.
    """
    problems = {}
    for detail in error.errors():
        parts = itertools.takewhile(lambda part: "[" not in part, map(str, detail["loc"]))
        problems[".".join(parts) or "body"] = detail["msg"].removeprefix("Value error, ")
    return RequestError(problems)


class AttemptsOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max: int = Field(ge=1, le=MAX_ATTEMPTS)
    retry_after: Annotated[list[Duration], Field(min_length=1)] | Duration | None = None


class NotificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str
    plan: str
    variables: dict[str, Any] = {}
    category: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timezone: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    attempts: AttemptsOverride | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY)
    callback_url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2000)


def e164(number: str, field: str = "to") -> str:
    """``number`` as E.164 if it is a valid phone number, else RequestError naming ``field``.

    A number written for people (``+1 202 555-0142``, ``+1 (202) 555.0142``) is accepted and
    normalized. Whatever phonenumbers would also read but could dial differently from what
    was meant is refused: letters, extensions, ``tel:`` URIs, non-ASCII digits.
    """
    if not _WRITTEN_NUMBER.fullmatch(number.strip()):
        raise RequestError(
            {
                field: f"{number[:40]!r} is not an E.164 number like +12025550123 (only "
                "digits after the +, spaces, dashes, dots and parentheses are accepted)"
            }
        )
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise RequestError({field: f"{number!r} is not an E.164 number like +12025550123"}) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise RequestError({field: f"{number!r} is not a valid phone number"})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class Resolved:
    notification: NewNotification
    plan: Plan


def _retry_after(override: AttemptsOverride | None, plan: Plan) -> tuple[int, list[float]]:
    if override is None:
        return plan.attempts.max, list(plan.attempts.retry_after)
    delays = override.retry_after if override.retry_after is not None else plan.attempts.retry_after
    delays = delays if isinstance(delays, list) else [delays]
    for delay in delays:
        if not MIN_RETRY_SECONDS <= delay <= MAX_RETRY_SECONDS:
            raise RequestError(
                {"attempts.retry_after": f"{delay:g}s is outside {MIN_RETRY_SECONDS:g}s..7d"}
            )
    return override.max, [float(d) for d in delays]


def resolve(
    request: NotificationRequest,
    plans: PlanSet,
    default_timezone: str,
    contact_timezone: str | None,
    plan_variables: dict[str, str],
    now: datetime,
) -> Resolved:
    """The notification to store for ``request``; RequestError names every bad field."""
    problems: dict[str, str] = {}
    to = request.to
    try:
        to = e164(request.to)
    except RequestError as exc:
        problems.update(exc.problems)
    plan = plans.plans.get(request.plan)
    if plan is None or plan.direction != "outbound":
        known = ", ".join(sorted(p.id for p in plans.plans.values() if p.direction == "outbound"))
        problems["plan"] = f"no outbound plan {request.plan!r} (known: {known})"
    tz = None
    try:
        if request.timezone is not None:
            zone(request.timezone, "timezone")
        tz = recipient_timezone(to, request.timezone, contact_timezone, default_timezone)
    except ValueError as exc:
        problems["timezone"] = str(exc).removeprefix("timezone: ")
    if plan is None or problems:
        raise RequestError(problems)
    try:
        variables = coerce_variables(plan, {**plan_variables, **request.variables})
    except VariableError as exc:
        raise RequestError({f"variables.{k}": v for k, v in exc.problems.items()}) from exc
    attempts_max, retry_after = _retry_after(request.attempts, plan)
    assert tz is not None
    not_before = localize(request.not_before, tz) if request.not_before else None
    not_after = localize(request.not_after, tz) if request.not_after else None
    if not_before and not_after and not_after <= not_before:
        raise RequestError({"not_after": "must be later than not_before"})
    return Resolved(
        NewNotification(
            to_number=to,
            plan_id=plan.id,
            category=request.category or plan.category,
            variables=variables,
            attempts_max=attempts_max,
            retry_after=retry_after,
            next_attempt_at=max(not_before or now, now).astimezone(UTC),
            timezone=request.timezone,
            not_before=not_before,
            not_after=not_after,
            callback_url=request.callback_url,
            idempotency_key=request.idempotency_key,
        ),
        plan,
    )
