"""Who may be called, when, and on which channel: the outbound policy as pure functions.

The scheduler loads the facts from the database, calls :func:`decide` before each step of a
notification and :func:`next_attempt` after each call, and carries the answer out. Nothing here
reads a clock, the database or the network; the current time is a parameter.

Rules, in the order :func:`decide` applies them (the first that refuses gives the reason, and
reasons the contact gave come before reasons of timing, so that a skipped notification says
what a resend would run into):

1. ``do_not_call``: a number on the do-not-call list gets no call, whatever the category. A
   transactional notice goes out by SMS instead only when the settings allow it (default: no)
   and the plan has an SMS text; everything else is skipped.
2. ``opted_out``: an optional category the contact opted out of (or ``*``, every optional
   category) is skipped. Transactional categories ignore opt-outs.
3. ``channel_already_used``: an optional notification goes out on one channel only (no fallback
   SMS after its calls) unless the contact asked to be reached on more than one.
4. ``frequency_cap``: an optional category already delivered as often as its cap allows
   (default: once per 7 days) is skipped, not deferred: a notice held back for days is stale,
   and a queue of deferred notices would all go out the day the cap frees. The skip carries
   the moment the cap frees, so the integrator can send again then.
5. Timing: not before ``not_before``, inside the calling window of the recipient's local time
   (a narrower window for optional categories), moved to the next opening, never dropped;
   ``expired`` when ``not_after`` has passed or the next allowed moment falls after it.

A category is transactional only when the settings list it; any other category, including one
nobody has heard of, is optional, because treating an unknown category as optional can only
cost a message, while the opposite could call someone who opted out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from ivr.dialplan.durations import format_duration
from ivr.dialplan.schema import Attempts
from ivr.outbound.policy_hours import (
    CallWindow,
    is_allowed,
    localize,
    next_allowed,
    parse_call_window,
    recipient_timezone,
    require_aware,
)
from ivr.outbound.policy_rules import (
    DEFAULT_CALL_WINDOW,
    DEFAULT_FREQUENCY_CAP,
    DEFAULT_OPTIONAL_CALL_WINDOW,
    TRANSACTIONAL_CATEGORIES,
    Delivery,
    FrequencyCap,
    OptOutAction,
    OptOutChange,
    PolicySettings,
    calling_window,
    cap_frees_at,
    frequency_cap_for,
    is_opted_out,
    is_transactional,
    opt_out_for_outcome,
    opt_out_for_sms,
    optional_window_following,
    parse_frequency_cap,
)
from ivr.store.models import ALL_CATEGORIES, FINAL_CALL_STATUSES, CallStatus

# Statuses after which the person was not reached and another attempt may follow.
RETRY_STATUSES = frozenset({CallStatus.NO_ANSWER, CallStatus.BUSY, CallStatus.FAILED})


class Channel(StrEnum):
    CALL = "call"
    SMS = "sms"


class ReasonCode(StrEnum):
    """Machine-readable reasons, stored as a notification's ``skipped_reason`` and in logs."""

    DO_NOT_CALL = "do_not_call"
    OPTED_OUT = "opted_out"
    CHANNEL_ALREADY_USED = "channel_already_used"
    FREQUENCY_CAP = "frequency_cap"
    EXPIRED = "expired"
    NOT_BEFORE = "not_before"
    OUTSIDE_CALLING_HOURS = "outside_calling_hours"
    SMS_CHANNEL = "sms_channel"


@dataclass(frozen=True)
class NotificationFacts:
    """The notification and the step about to be taken.

    ``channel`` is the channel of this step: ``CALL`` for a call attempt, ``SMS`` for the
    fallback SMS after the calls or for a notification sent by SMS only. ``attempt`` counts
    call attempts from 1. Times without an offset are in the recipient's time zone.
    ``channels_used`` are the channels earlier steps of this notification went out on.
    """

    to: str
    category: str
    attempt: int = 1
    attempts: Attempts = field(default_factory=Attempts)
    channel: Channel = Channel.CALL
    not_before: datetime | None = None
    not_after: datetime | None = None
    timezone: str | None = None
    has_sms_text: bool = False
    channels_used: frozenset[Channel] = frozenset()

    def __post_init__(self) -> None:
        if not 1 <= self.attempt <= self.attempts.max:
            raise ValueError(f"attempt {self.attempt} is outside 1..{self.attempts.max}")


@dataclass(frozen=True)
class ContactFacts:
    """What is known about the person at the number.

    ``opted_out`` holds categories, ``*`` meaning every optional one. ``deliveries`` are the
    other notifications that reached the contact (this notification's own steps excluded),
    for frequency caps. ``multiple_channels`` is set when the contact asked to be reached on
    more than one channel.
    """

    timezone: str | None = None
    opted_out: frozenset[str] = frozenset()
    do_not_call: bool = False
    do_not_call_reason: str | None = None  # as recorded with the listing, for the skip reason
    deliveries: tuple[Delivery, ...] = ()
    multiple_channels: bool = False


@dataclass(frozen=True)
class CallNow:
    """Place the call now."""


@dataclass(frozen=True)
class CallAt:
    """Call at ``at`` (later than now); ``code`` and ``message`` say why not now."""

    at: datetime
    code: ReasonCode
    message: str


@dataclass(frozen=True)
class SendSms:
    """Send the SMS text instead of calling, at ``at`` (now, or the window's next opening)."""

    at: datetime
    code: ReasonCode
    message: str


@dataclass(frozen=True)
class Skip:
    """Do not send; the notification ends ``skipped`` with ``code`` and ``message``.

    ``until`` is when the reason stops applying, if that is known (a frequency cap freeing).
    """

    code: ReasonCode
    message: str
    until: datetime | None = None


Decision = CallNow | CallAt | SendSms | Skip


def decide(
    notification: NotificationFacts,
    contact: ContactFacts,
    settings: PolicySettings,
    now: datetime,
) -> Decision:
    """What to do with the next step of ``notification`` at ``now`` (see the module rules)."""
    require_aware(now, "now")
    tz = recipient_timezone(
        notification.to, notification.timezone, contact.timezone, settings.default_timezone
    )
    category = notification.category
    transactional = is_transactional(category, settings)
    channel = notification.channel

    if contact.do_not_call:
        why = f" ({contact.do_not_call_reason})" if contact.do_not_call_reason else ""
        listed = f"{notification.to} is on the do-not-call list{why}"
        if not (transactional and settings.transactional_sms_to_do_not_call):
            return Skip(ReasonCode.DO_NOT_CALL, f"{listed}.")
        if channel is Channel.CALL and not notification.has_sms_text:
            return Skip(ReasonCode.DO_NOT_CALL, f"{listed} and the plan has no SMS text.")
        channel = Channel.SMS

    if is_opted_out(category, contact.opted_out, settings):
        scope = "every optional category" if ALL_CATEGORIES in contact.opted_out else category
        return Skip(ReasonCode.OPTED_OUT, f"{notification.to} opted out of {scope}.")

    if not transactional:
        used = notification.channels_used
        if used and channel not in used and not contact.multiple_channels:
            return Skip(
                ReasonCode.CHANNEL_ALREADY_USED,
                f"This {category} notification already went out by "
                f"{', '.join(sorted(used))}; the contact did not ask for more than one channel.",
            )
        cap = frequency_cap_for(category, settings)
        frees_at = None if cap is None else cap_frees_at(category, contact.deliveries, cap, now)
        if cap is not None and frees_at is not None:
            return Skip(
                ReasonCode.FREQUENCY_CAP,
                f"{notification.to} already received {cap.count} {category} notification(s) "
                f"within {format_duration(cap.period.total_seconds())}; the cap frees at "
                f"{frees_at.astimezone(tz).isoformat()}.",
                until=frees_at,
            )

    return _timing(notification, channel, calling_window(category, settings), tz, now)


def _timing(
    notification: NotificationFacts,
    channel: Channel,
    window: CallWindow,
    tz: ZoneInfo,
    now: datetime,
) -> Decision:
    not_before = None if notification.not_before is None else localize(notification.not_before, tz)
    not_after = None if notification.not_after is None else localize(notification.not_after, tz)
    if not_after is not None and now > not_after:
        return Skip(ReasonCode.EXPIRED, f"not_after {not_after.isoformat()} has passed.")
    earliest = now if not_before is None or not_before <= now else not_before
    at = next_allowed(earliest, window, tz)
    if not_after is not None and at > not_after:
        return Skip(
            ReasonCode.EXPIRED,
            f"The next moment inside the calling window {window} ({tz.key}) is "
            f"{at.isoformat()}, after not_after {not_after.isoformat()}.",
        )
    deferral: tuple[ReasonCode, str] | None = None
    if at > earliest:
        deferral = ReasonCode.OUTSIDE_CALLING_HOURS, f"outside the calling window {window}"
    elif earliest > now:
        deferral = ReasonCode.NOT_BEFORE, "not_before"
    when = f"{at.astimezone(tz).isoformat()} ({tz.key})"
    if deferral is not None:
        when = f"{when}, {deferral[1]}"
    if channel is Channel.SMS:
        if notification.channel is Channel.CALL:
            return SendSms(
                at, ReasonCode.DO_NOT_CALL, f"SMS instead of a call (do-not-call list) at {when}."
            )
        return SendSms(at, ReasonCode.SMS_CHANNEL, f"SMS at {when}.")
    if deferral is None:
        return CallNow()
    return CallAt(at, deferral[0], f"Call at {when}.")


def next_attempt(
    final_status: str,
    attempt: int,
    attempts: Attempts,
    now: datetime,
    window: CallWindow,
    tz: ZoneInfo,
    not_after: datetime | None = None,
) -> datetime | None:
    """When to call again after attempt number ``attempt`` ended with ``final_status``.

    ``None`` means no further call: the person was reached (or the call was cancelled), the
    attempts are used up, or the retry would fall after ``not_after``; the caller then records
    the outcome or sends the fallback SMS. The retry waits ``retry_after`` for that attempt and
    then moves into the calling window.
    """
    require_aware(now, "now")
    if final_status not in FINAL_CALL_STATUSES:
        raise ValueError(f"{final_status!r} is not a final call status")
    if final_status not in RETRY_STATUSES or attempt >= attempts.max:
        return None
    # In UTC: aware arithmetic in a zone adds wall-clock time, wrong across a DST change.
    due = now.astimezone(UTC) + timedelta(seconds=attempts.delay_before(attempt + 1))
    at = next_allowed(due, window, tz)
    if not_after is not None and at > localize(not_after, tz):
        return None
    return at


# One import point for the scheduler and the API: the rules and hours modules are re-exported.
__all__ = [
    "ALL_CATEGORIES",
    "DEFAULT_CALL_WINDOW",
    "DEFAULT_FREQUENCY_CAP",
    "DEFAULT_OPTIONAL_CALL_WINDOW",
    "RETRY_STATUSES",
    "TRANSACTIONAL_CATEGORIES",
    "CallAt",
    "CallNow",
    "CallWindow",
    "Channel",
    "ContactFacts",
    "Decision",
    "Delivery",
    "FrequencyCap",
    "NotificationFacts",
    "OptOutAction",
    "OptOutChange",
    "PolicySettings",
    "ReasonCode",
    "SendSms",
    "Skip",
    "calling_window",
    "cap_frees_at",
    "decide",
    "frequency_cap_for",
    "is_allowed",
    "is_opted_out",
    "is_transactional",
    "localize",
    "next_allowed",
    "next_attempt",
    "opt_out_for_outcome",
    "opt_out_for_sms",
    "optional_window_following",
    "parse_call_window",
    "parse_frequency_cap",
    "recipient_timezone",
]
