"""Categories, calling windows per category, frequency caps and opt-outs: the policy's rules.

Pure functions over plain values; :mod:`ivr.outbound.policy` combines them into decisions.
A category is transactional only when the settings list it: an unknown category is optional,
since that mistake can only cost a message while the opposite could call someone who opted out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ivr.dialplan.durations import parse_duration
from ivr.dialplan.schema import OPTED_OUT
from ivr.outbound.policy_hours import (
    CallWindow,
    clip_window,
    parse_call_window,
    require_aware,
    zone,
)
from ivr.store.models import ALL_CATEGORIES, OptOutSource

# Notices a person expects as part of a service they use; any other category is optional.
TRANSACTIONAL_CATEGORIES = frozenset(
    {"transactional", "appointment", "order_status", "delivery", "contract"}
)
DEFAULT_CALL_WINDOW = parse_call_window("09:00-21:00")
DEFAULT_OPTIONAL_CALL_WINDOW = parse_call_window("10:00-20:00")


def optional_window_following(call_window: CallWindow) -> CallWindow:
    """The optional categories' window when nobody set one: the default clipped to the call
    window, or the call window itself when the two do not overlap (a business that calls only
    at night calls for everything at night rather than refusing to start)."""
    return clip_window(DEFAULT_OPTIONAL_CALL_WINDOW, call_window) or call_window


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``count`` deliveries of a category to one contact in any ``period``."""

    count: int
    period: timedelta

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"frequency cap: count must be at least 1, got {self.count}")
        if self.period <= timedelta(0):
            raise ValueError(f"frequency cap: period must be positive, got {self.period}")


def parse_frequency_cap(text: str) -> FrequencyCap:
    """A cap written as ``COUNT/DURATION``: ``1/7d``, ``3/30d``, ``2/12h``."""
    count, slash, period = text.partition("/")
    if not slash or not count.strip().isdigit():
        raise ValueError(f"bad frequency cap {text!r}: write COUNT/DURATION, e.g. 1/7d")
    return FrequencyCap(int(count), timedelta(seconds=parse_duration(period.strip())))


DEFAULT_FREQUENCY_CAP = FrequencyCap(1, timedelta(days=7))


@dataclass(frozen=True)
class PolicySettings:
    """Server-wide policy settings.

    ``optional_call_window`` is the narrower window for optional categories (``None``: the
    same as ``call_window``); it must lie inside ``call_window``. ``frequency_caps`` overrides
    ``frequency_cap`` per category, ``None`` there meaning no cap for that category.
    """

    call_window: CallWindow = DEFAULT_CALL_WINDOW
    optional_call_window: CallWindow | None = DEFAULT_OPTIONAL_CALL_WINDOW
    default_timezone: str = "UTC"
    transactional_categories: frozenset[str] = TRANSACTIONAL_CATEGORIES
    frequency_cap: FrequencyCap | None = DEFAULT_FREQUENCY_CAP
    frequency_caps: Mapping[str, FrequencyCap | None] = field(default_factory=dict)
    transactional_sms_to_do_not_call: bool = False

    def __post_init__(self) -> None:
        zone(self.default_timezone, "default timezone")
        optional = self.optional_call_window
        if optional is not None and not self.call_window.covers(optional):
            raise ValueError(
                f"optional calling window {optional} is not inside the calling window "
                f"{self.call_window}"
            )
        if ALL_CATEGORIES in self.transactional_categories:
            raise ValueError(f"{ALL_CATEGORIES!r} is not a category that can be transactional")


@dataclass(frozen=True)
class Delivery:
    """An earlier notification of ``category`` that reached the contact at ``at``."""

    category: str
    at: datetime

    def __post_init__(self) -> None:
        require_aware(self.at, "delivery time")


def is_transactional(category: str, settings: PolicySettings) -> bool:
    return category in settings.transactional_categories


def is_opted_out(category: str, opted_out: frozenset[str], settings: PolicySettings) -> bool:
    """Whether opt-outs stop ``category``: never for transactional categories."""
    if is_transactional(category, settings):
        return False
    return category in opted_out or ALL_CATEGORIES in opted_out


def calling_window(category: str, settings: PolicySettings) -> CallWindow:
    if is_transactional(category, settings) or settings.optional_call_window is None:
        return settings.call_window
    return settings.optional_call_window


def frequency_cap_for(category: str, settings: PolicySettings) -> FrequencyCap | None:
    """The cap of an optional category; transactional categories have none."""
    if is_transactional(category, settings):
        return None
    if category in settings.frequency_caps:
        return settings.frequency_caps[category]
    return settings.frequency_cap


def cap_frees_at(
    category: str, deliveries: tuple[Delivery, ...], cap: FrequencyCap, now: datetime
) -> datetime | None:
    """When another delivery of ``category`` fits the cap again; ``None`` if it fits now."""
    # In UTC, so that a period is elapsed time even across a DST change.
    now = require_aware(now, "now").astimezone(UTC)
    recent = sorted(
        delivery.at.astimezone(UTC)
        for delivery in deliveries
        if delivery.category == category and now - cap.period < delivery.at <= now
    )
    if len(recent) < cap.count:
        return None
    # The cap frees when the oldest delivery that keeps it full leaves the period.
    return recent[len(recent) - cap.count] + cap.period


class OptOutAction(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


@dataclass(frozen=True)
class OptOutChange:
    """A change to a number's opt-outs, for ``OptOutRepository.opt_out`` / ``opt_in``."""

    action: OptOutAction
    category: str
    source: OptOutSource
    reason: str


# Twilio's standard opt-out keywords, so that our records agree with the carrier, which stops
# messages after them anyway. CANCEL is among them even though a reminder's reply may mean the
# appointment: a wrong opt-out costs optional messages only, never a reminder.
SMS_STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
)
# Twilio's opt-in keywords. YES is one: after a STOP the carrier re-enables messages on a bare
# "YES" too, so our records must follow it. Plans' own SMS replies are letters (C, X), not YES.
SMS_START_WORDS = frozenset({"start", "unstop", "yes"})


def opt_out_for_outcome(
    outcome: str | None, category: str, settings: PolicySettings
) -> OptOutChange | None:
    """The opt-out a dial-plan outcome asks for: ``opted_out`` on a call of ``category``.

    An optional category opts out of that category. A transactional notice cannot be opted out
    of, so "stop calling me" there opts out of every optional category: the closest we can come
    to what the person asked.
    """
    if outcome != OPTED_OUT:
        return None
    scope = ALL_CATEGORIES if is_transactional(category, settings) else category
    return OptOutChange(
        OptOutAction.OPT_OUT, scope, OptOutSource.IVR, f"said stop during a {category} call"
    )


def opt_out_for_sms(body: str) -> OptOutChange | None:
    """STOP (and its synonyms) opts out of every optional category; START opts back in.

    Only a message that is the keyword alone counts (case and surrounding punctuation aside),
    as with the carriers: "stop by tomorrow" is not an opt-out. START undoes every opt-out of
    the number (``opt_in(number, "*")``), as the carriers' START re-enables everything.
    """
    word = body.strip().strip(".!?,;:'\"").strip().casefold()
    if word in SMS_STOP_WORDS:
        return OptOutChange(OptOutAction.OPT_OUT, ALL_CATEGORIES, OptOutSource.SMS, body.strip())
    if word in SMS_START_WORDS:
        return OptOutChange(OptOutAction.OPT_IN, ALL_CATEGORIES, OptOutSource.SMS, body.strip())
    return None
