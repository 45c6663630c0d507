"""Time zones, calling windows and their openings, including DST changes and midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.outbound.policy_hours import (
    CallWindow,
    is_allowed,
    localize,
    next_allowed,
    number_timezones,
    parse_call_window,
    recipient_timezone,
)

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
MOSCOW = ZoneInfo("Europe/Moscow")
SEOUL = ZoneInfo("Asia/Seoul")

MOSCOW_LANDLINE = "+74951234567"
WASHINGTON = "+12025550123"
SEOUL_LANDLINE = "+8221234567"
RUSSIAN_MOBILE = "+79161234567"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    tz: ZoneInfo,
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int = 0,
    microsecond: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz, fold=fold)


# Time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "zone_name"),
    [
        (MOSCOW_LANDLINE, "Europe/Moscow"),
        (WASHINGTON, "America/New_York"),
        (SEOUL_LANDLINE, "Asia/Seoul"),
    ],
)
def test_the_number_gives_the_zone_when_nothing_else_does(number: str, zone_name: str) -> None:
    assert recipient_timezone(number, None, None, "UTC") == ZoneInfo(zone_name)


def test_request_beats_contact_beats_number_beats_default() -> None:
    assert recipient_timezone(WASHINGTON, "Asia/Seoul", "Europe/Moscow", "UTC").key == "Asia/Seoul"
    assert recipient_timezone(WASHINGTON, None, "Europe/Moscow", "UTC").key == "Europe/Moscow"
    assert recipient_timezone(WASHINGTON, None, None, "Europe/Moscow").key == "America/New_York"


@pytest.mark.parametrize("number", ["+15551234567", "not a number", ""])
def test_a_number_without_a_known_zone_falls_through_to_the_default(number: str) -> None:
    assert recipient_timezone(number, None, None, "Europe/London") == LONDON
    assert recipient_timezone(number, None, None, SEOUL) == SEOUL


def test_a_number_in_several_zones_prefers_the_server_default_among_them() -> None:
    zones = number_timezones(RUSSIAN_MOBILE)
    assert len(zones) > 1
    assert "Europe/Moscow" in zones
    assert recipient_timezone(RUSSIAN_MOBILE, None, None, "Europe/Moscow") == MOSCOW


def test_a_number_in_several_zones_otherwise_takes_the_first_listed() -> None:
    zones = number_timezones(RUSSIAN_MOBILE)
    assert "America/New_York" not in zones
    chosen = recipient_timezone(RUSSIAN_MOBILE, None, None, "America/New_York")
    assert chosen.key == zones[0]
    assert zones == tuple(sorted(zones))


@pytest.mark.parametrize(
    ("request_tz", "contact_tz", "default_tz", "field"),
    [
        ("Mars/Olympus_Mons", None, "UTC", "timezone"),
        ("../../etc/passwd", None, "UTC", "timezone"),
        ("", None, "UTC", "timezone"),
        (None, "Europe/Mosocw", "UTC", "contact timezone"),
        (None, "localtime", "UTC", "contact timezone"),
        (None, None, "Nowhere", "default timezone"),
    ],
)
def test_an_unknown_zone_name_is_a_value_error_naming_the_field(
    request_tz: str | None, contact_tz: str | None, default_tz: str, field: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: .*time zone"):
        recipient_timezone(WASHINGTON, request_tz, contact_tz, default_tz)


# Parsing windows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end", "spelled"),
    [
        ("09:00-21:00", 9 * 60, 21 * 60, "09:00-21:00"),
        (" 9:30 - 20:15 ", 9 * 60 + 30, 20 * 60 + 15, "09:30-20:15"),
        ("00:00-24:00", 0, 1440, "00:00-24:00"),
        ("20:00-02:00", 20 * 60, 2 * 60, "20:00-02:00"),
        ("20:00-00:00", 20 * 60, 1440, "20:00-24:00"),
        ("23:59-00:01", 23 * 60 + 59, 1, "23:59-00:01"),
    ],
)
def test_windows_parse(text: str, start: int, end: int, spelled: str) -> None:
    window = parse_call_window(text)
    assert (window.start, window.end) == (start, end)
    assert str(window) == spelled


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "write HH:MM-HH:MM"),
        ("9-21", "write HH:MM-HH:MM"),
        ("09:00", "write HH:MM-HH:MM"),
        ("09:00-21:00-22:00", "write HH:MM-HH:MM"),
        ("nine-five", "write HH:MM-HH:MM"),
        ("24:00-09:00", "start must be"),
        ("09:60-10:00", "start must be"),
        ("09:00-24:30", "end must be"),
        ("09:00-25:00", "end must be"),
        ("09:00-10:75", "end must be"),
        ("09:00-09:00", "start and end are equal"),
        ("00:00-00:00", "start and end are equal"),
    ],
)
def test_malformed_windows_are_rejected_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_call_window(text)


def test_window_values_out_of_range_are_rejected() -> None:
    with pytest.raises(ValueError, match="start"):
        CallWindow(1440, 60)
    with pytest.raises(ValueError, match="end"):
        CallWindow(60, 0)
    with pytest.raises(ValueError, match="equal"):
        CallWindow(60, 60)


def test_only_the_whole_day_is_always() -> None:
    assert parse_call_window("00:00-24:00").always
    assert not parse_call_window("00:00-23:59").always
    assert not parse_call_window("00:01-00:00").always
    assert parse_call_window("20:00-02:00").crosses_midnight
    assert not parse_call_window("20:00-24:00").crosses_midnight


def test_covers_compares_allowed_minutes_across_midnight() -> None:
    evening_and_night = parse_call_window("18:00-03:00")
    assert evening_and_night.covers(parse_call_window("22:00-01:00"))
    assert evening_and_night.covers(parse_call_window("18:00-24:00"))
    assert not evening_and_night.covers(parse_call_window("17:59-01:00"))
    assert not parse_call_window("09:00-21:00").covers(evening_and_night)
    assert parse_call_window("00:00-24:00").covers(evening_and_night)


# Openings ---------------------------------------------------------------------------------

DAYTIME = parse_call_window("09:00-21:00")
NIGHT_SHIFT = parse_call_window("20:00-02:00")
ALWAYS = parse_call_window("00:00-24:00")


def test_inside_the_window_is_now_itself() -> None:
    at = local(MOSCOW, 2024, 6, 12, 15, 30)
    assert next_allowed(at, DAYTIME, MOSCOW) is at
    at_start = local(MOSCOW, 2024, 6, 12, 9, 0)
    assert next_allowed(at_start, DAYTIME, MOSCOW) is at_start


@pytest.mark.parametrize(
    ("hour", "minute", "opening"),
    [
        (6, 15, local(MOSCOW, 2024, 6, 12, 9, 0)),
        (8, 59, local(MOSCOW, 2024, 6, 12, 9, 0)),
        (21, 0, local(MOSCOW, 2024, 6, 13, 9, 0)),
        (23, 59, local(MOSCOW, 2024, 6, 13, 9, 0)),
        (0, 0, local(MOSCOW, 2024, 6, 12, 9, 0)),
    ],
)
def test_outside_the_window_moves_to_the_next_opening(
    hour: int, minute: int, opening: datetime
) -> None:
    at = local(MOSCOW, 2024, 6, 12, hour, minute)
    moved = next_allowed(at, DAYTIME, MOSCOW)
    assert moved == opening
    assert moved.tzinfo is UTC


def test_the_window_is_read_on_the_recipients_clock() -> None:
    # 13:00 UTC is 22:00 in Seoul: the call waits for 09:00 Seoul, 00:00 UTC.
    at = utc(2024, 6, 12, 13, 0)
    assert not is_allowed(at, DAYTIME, SEOUL)
    assert is_allowed(at, DAYTIME, LONDON)
    assert next_allowed(at, DAYTIME, SEOUL) == utc(2024, 6, 13, 0, 0)
    assert next_allowed(at, DAYTIME, LONDON) is at


def test_the_last_instant_before_the_end_is_inside() -> None:
    assert is_allowed(local(MOSCOW, 2024, 6, 12, 20, 59, 59, 999999), DAYTIME, MOSCOW)
    assert not is_allowed(local(MOSCOW, 2024, 6, 12, 21, 0), DAYTIME, MOSCOW)


@pytest.mark.parametrize(
    ("hour", "minute", "opening"),
    [
        (20, 0, None),
        (23, 30, None),
        (0, 0, None),
        (1, 59, None),
        (2, 0, local(MOSCOW, 2024, 6, 12, 20, 0)),
        (12, 0, local(MOSCOW, 2024, 6, 12, 20, 0)),
        (19, 59, local(MOSCOW, 2024, 6, 12, 20, 0)),
    ],
)
def test_a_window_may_cross_midnight(hour: int, minute: int, opening: datetime | None) -> None:
    at = local(MOSCOW, 2024, 6, 12, hour, minute)
    assert next_allowed(at, NIGHT_SHIFT, MOSCOW) == (opening or at)
    assert is_allowed(at, NIGHT_SHIFT, MOSCOW) == (opening is None)


def test_always_is_always() -> None:
    for at in (local(NEW_YORK, 2024, 3, 10, 3, 0), utc(2024, 11, 3, 6, 0), utc(2024, 1, 1)):
        assert next_allowed(at, ALWAYS, NEW_YORK) is at


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^at: .* no time zone"):
        next_allowed(datetime(2024, 6, 12, 12, 0), DAYTIME, MOSCOW)
    with pytest.raises(ValueError, match="at: "):
        is_allowed(datetime(2024, 6, 12, 12, 0), DAYTIME, MOSCOW)


# DST: New York springs forward on 2024-03-10 at 02:00 EST (07:00 UTC) to 03:00 EDT and falls
# back on 2024-11-03 at 02:00 EDT (06:00 UTC) to 01:00 EST. London springs forward on
# 2024-03-31 at 01:00 GMT to 02:00 BST and falls back on 2024-10-27 at 02:00 BST to 01:00 GMT.


def test_an_opening_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    window = parse_call_window("02:30-05:00")
    moved = next_allowed(local(NEW_YORK, 2024, 3, 10, 0, 0), window, NEW_YORK)
    assert moved == utc(2024, 3, 10, 7, 0)
    assert moved.astimezone(NEW_YORK).hour == 3


def test_a_window_inside_the_skipped_hour_waits_for_the_next_day() -> None:
    window = parse_call_window("02:00-02:30")
    moved = next_allowed(local(NEW_YORK, 2024, 3, 10, 0, 0), window, NEW_YORK)
    assert moved == local(NEW_YORK, 2024, 3, 11, 2, 0)


def test_the_usual_window_opens_at_nine_local_after_spring_forward() -> None:
    moved = next_allowed(local(NEW_YORK, 2024, 3, 10, 1, 0), DAYTIME, NEW_YORK)
    assert moved == utc(2024, 3, 10, 13, 0)
    moved = next_allowed(local(LONDON, 2024, 3, 31, 0, 30), DAYTIME, LONDON)
    assert moved == utc(2024, 3, 31, 8, 0)


def test_london_spring_forward_opens_at_the_jump() -> None:
    window = parse_call_window("01:30-03:00")
    moved = next_allowed(local(LONDON, 2024, 3, 31, 0, 30), window, LONDON)
    assert moved == utc(2024, 3, 31, 1, 0)
    assert moved.astimezone(LONDON).hour == 2


def test_a_repeated_opening_opens_at_its_first_occurrence() -> None:
    window = parse_call_window("01:30-05:00")
    moved = next_allowed(local(NEW_YORK, 2024, 11, 3, 0, 0), window, NEW_YORK)
    assert moved == utc(2024, 11, 3, 5, 30)


def test_a_repeated_hour_is_inside_the_window_both_times() -> None:
    window = parse_call_window("01:15-01:45")
    first = local(NEW_YORK, 2024, 11, 3, 1, 20, fold=0)
    second = local(NEW_YORK, 2024, 11, 3, 1, 20, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    assert next_allowed(first, window, NEW_YORK) is first
    assert next_allowed(second, window, NEW_YORK) is second
    # Between the two passes (01:50 EDT) the window opens again at 01:15 EST.
    between = utc(2024, 11, 3, 5, 50)
    assert next_allowed(between, window, NEW_YORK) == utc(2024, 11, 3, 6, 15)


def test_falling_back_into_the_window_opens_it_at_the_jump() -> None:
    # At 01:45 EDT the window 00:30-01:30 has closed, but at 02:00 EDT the clock shows 01:00
    # EST again, inside it.
    window = parse_call_window("00:30-01:30")
    moved = next_allowed(utc(2024, 11, 3, 5, 45), window, NEW_YORK)
    assert moved == utc(2024, 11, 3, 6, 0)
    assert moved.astimezone(NEW_YORK).hour == 1


def test_london_fall_back_opens_again_in_the_repeated_hour() -> None:
    window = parse_call_window("01:15-01:45")
    moved = next_allowed(local(LONDON, 2024, 10, 27, 1, 50, fold=0), window, LONDON)
    assert moved == utc(2024, 10, 27, 1, 15)


def test_a_skipped_day_moves_the_opening_to_the_following_day() -> None:
    # Samoa skipped 2011-12-30 entirely, moving across the date line.
    apia = ZoneInfo("Pacific/Apia")
    moved = next_allowed(local(apia, 2011, 12, 29, 22, 0), DAYTIME, apia)
    assert moved == local(apia, 2011, 12, 31, 9, 0)
    assert moved == utc(2011, 12, 30, 19, 0)


# Times without an offset ------------------------------------------------------------------


def test_a_naive_time_is_on_the_recipients_clock() -> None:
    moment = localize(datetime(2024, 6, 12, 10, 0), SEOUL)
    assert moment == utc(2024, 6, 12, 1, 0)
    assert moment.tzinfo is UTC


def test_an_aware_time_is_left_alone() -> None:
    moment = utc(2024, 6, 12, 10, 0)
    assert localize(moment, SEOUL) is moment


def test_a_repeated_wall_time_means_its_first_occurrence() -> None:
    assert localize(datetime(2024, 11, 3, 1, 30), NEW_YORK) == utc(2024, 11, 3, 5, 30)


def test_a_skipped_wall_time_means_the_moment_the_clock_jumps() -> None:
    assert localize(datetime(2024, 3, 10, 2, 30), NEW_YORK) == utc(2024, 3, 10, 7, 0)
    assert localize(datetime(2024, 3, 31, 1, 30), LONDON) == utc(2024, 3, 31, 1, 0)
