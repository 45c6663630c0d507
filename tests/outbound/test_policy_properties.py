"""``next_allowed`` against a brute-force scan, minute by minute, over the next 48 hours.

The earliest moment inside a window is either ``at`` itself or a whole UTC minute: windows
open on whole local minutes, and since 1995 the offsets and offset changes of the zones below
sit on whole minutes. So scanning ``at`` and then every whole minute after it finds the same
answer, if there is one within 48 hours (there always is, except around a skipped day).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.outbound.policy import (
    CallAt,
    CallNow,
    ContactFacts,
    NotificationFacts,
    PolicySettings,
    ReasonCode,
    SendSms,
    Skip,
    calling_window,
    decide,
)
from ivr.outbound.policy_hours import CallWindow, next_allowed, parse_call_window

# Zones with DST in either hemisphere, half- and quarter-hour offsets, a 30-minute DST shift
# (Lord Howe) and a skipped day (Apia, 2011-12-30).
ZONE_NAMES = (
    "UTC",
    "America/New_York",
    "Europe/London",
    "Europe/Moscow",
    "Asia/Seoul",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Apia",
)
SCAN = timedelta(hours=48)
MINUTE = timedelta(minutes=1)
FIRST_YEAR, LAST_YEAR = 1995, 2035


@cache
def offset_changes(zone_name: str) -> tuple[datetime, ...]:
    """Every offset change of the zone in 2010-2013 and 2023-2025, found hour by hour."""
    tz = ZoneInfo(zone_name)
    changes = []
    for year_from, year_to in ((2010, 2013), (2023, 2025)):
        probe = datetime(year_from, 1, 1, tzinfo=UTC)
        end = datetime(year_to + 1, 1, 1, tzinfo=UTC)
        while probe < end:
            following = probe + timedelta(hours=1)
            if probe.astimezone(tz).utcoffset() != following.astimezone(tz).utcoffset():
                changes.append(following)
            probe = following
    return tuple(changes)


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


windows = st.one_of(
    st.just("00:00-24:00"),
    st.tuples(st.integers(0, 1439), st.integers(1, 1440))
    .filter(lambda bounds: bounds[0] != bounds[1])
    .map(lambda bounds: f"{clock(bounds[0])}-{clock(bounds[1])}"),
).map(parse_call_window)

anywhen = st.datetimes(
    min_value=datetime(FIRST_YEAR, 1, 1), max_value=datetime(LAST_YEAR, 12, 31)
).map(lambda naive: naive.replace(tzinfo=UTC))


@st.composite
def zone_and_moment(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    zone_name = draw(st.sampled_from(ZONE_NAMES))
    changes = offset_changes(zone_name)
    near_a_change = draw(st.booleans())
    if changes and near_a_change:
        # Close to an offset change, where the mistakes hide.
        change = draw(st.sampled_from(changes))
        at = change + timedelta(
            minutes=draw(st.integers(-36 * 60, 36 * 60)),
            microseconds=draw(st.integers(0, 59_999_999)),
        )
    else:
        at = draw(anywhen)
    tz = ZoneInfo(zone_name)
    # The moment may come in any zone; only the instant matters.
    return tz, at.astimezone(tz) if draw(st.booleans()) else at


def inside(moment: datetime, window: CallWindow, tz: ZoneInfo) -> bool:
    wall = moment.astimezone(tz)
    return wall.hour * 60 + wall.minute in window.minutes


def brute_force_opening(at: datetime, window: CallWindow, tz: ZoneInfo) -> datetime | None:
    if inside(at, window, tz):
        return at
    whole = at.astimezone(UTC).replace(second=0, microsecond=0)
    minute = whole if whole > at else whole + MINUTE
    while minute <= at + SCAN:
        if inside(minute, window, tz):
            return minute
        minute += MINUTE
    return None


@settings(max_examples=250, deadline=None)
@given(zone_and_moment(), windows)
def test_next_allowed_is_the_earliest_moment_inside_the_window(
    zone_moment: tuple[ZoneInfo, datetime], window: CallWindow
) -> None:
    tz, at = zone_moment
    opening = next_allowed(at, window, tz)
    assert opening >= at
    assert inside(opening, window, tz)
    expected = brute_force_opening(at, window, tz)
    if expected is None:
        assert opening > at + SCAN
    else:
        assert opening.astimezone(UTC) == expected.astimezone(UTC)


@settings(max_examples=100, deadline=None)
@given(zone_and_moment(), windows)
def test_an_opening_is_its_own_opening(
    zone_moment: tuple[ZoneInfo, datetime], window: CallWindow
) -> None:
    tz, at = zone_moment
    opening = next_allowed(at, window, tz)
    assert next_allowed(opening, window, tz) is opening


@settings(max_examples=150, deadline=None)
@given(
    zone_and_moment(),
    st.sampled_from(["appointment", "marketing", "survey"]),
    st.one_of(st.none(), st.integers(-3 * 24 * 60, 3 * 24 * 60)),
    st.one_of(st.none(), st.integers(-3 * 24 * 60, 3 * 24 * 60)),
)
def test_a_decision_never_calls_outside_the_window_or_the_time_limits(
    zone_moment: tuple[ZoneInfo, datetime],
    category: str,
    not_before_minutes: int | None,
    not_after_minutes: int | None,
) -> None:
    tz, now = zone_moment
    policy = PolicySettings()
    window = calling_window(category, policy)
    not_before = None if not_before_minutes is None else now + timedelta(minutes=not_before_minutes)
    not_after = None if not_after_minutes is None else now + timedelta(minutes=not_after_minutes)
    notification = NotificationFacts(
        to="+12025550123",
        category=category,
        timezone=tz.key,
        not_before=not_before,
        not_after=not_after,
    )
    decision = decide(notification, ContactFacts(), policy, now)
    match decision:
        case CallNow():
            when = now
        case CallAt(at=at):
            assert at > now
            when = at
        case Skip(code=code):
            # Expired only when no moment from now (or not_before) to not_after is allowed.
            assert code is ReasonCode.EXPIRED
            assert not_after is not None
            earliest = now if not_before is None else max(now, not_before)
            opening = brute_force_opening(earliest, window, tz)
            assert opening is None or opening > not_after
            return
        case SendSms():
            raise AssertionError(f"a call step became an SMS: {decision}")
    assert inside(when, window, tz)
    assert not_before is None or when >= not_before
    assert not_after is None or when <= not_after
