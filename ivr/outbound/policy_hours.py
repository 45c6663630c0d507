"""Calling hours in the recipient's local time: time zones, calling windows, DST-safe openings.

Pure functions: the current time is always a parameter, nothing here reads a clock.

A calling window is a range of wall-clock times, ``[start, end)`` in minutes of the local day.
A moment is *inside* the window when the recipient's wall clock shows a time inside it. That
definition settles the DST cases without special rules:

- a window opening at a local time that does not exist that day (02:30 when the clocks jump
  from 02:00 to 03:00) opens when the clock jumps, at 03:00;
- a window whose whole range falls into the skipped hour does not open that day at all;
- when the clocks go back, a wall time that happens twice is inside the window both times, and
  a jump back that lands inside the window opens it.

Computed moments come back in UTC: an aware time inside a repeated hour compares unequal to
every time of another zone (PEP 495), a trap for whoever stores and compares them later.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

MINUTES_PER_DAY = 24 * 60
_DAY = timedelta(days=1)
# Offset changes are searched for in steps of this size: the time zone database has no zone
# that changes its offset twice within an hour, so one step never hides a change.
_OFFSET_PROBE_STEP = timedelta(hours=1)
# A window opens at least once in every two consecutive local days (a DST gap can swallow it
# on one day, and a zone may skip a whole day once, as Pacific/Apia did in 2011), so a handful
# of offset changes are all the search ever meets.
_MAX_OFFSET_CHANGES = 16

_TIME = r"(\d{1,2}):(\d{2})"
_WINDOW = re.compile(rf"^\s*{_TIME}\s*-\s*{_TIME}\s*$", re.ASCII)
# Names the zone database accepts that are not places: the server's own zone and fillers.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})
# phonenumbers answers this for a number it cannot place.
_UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True)
class CallWindow:
    """Allowed local wall-clock times, ``start`` inclusive, ``end`` exclusive, in minutes.

    ``end`` is at most 1440 (24:00). An ``end`` below ``start`` crosses midnight: 20:00-02:00
    allows the evening and the small hours. ``start == 0`` and ``end == 1440`` means always.
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < MINUTES_PER_DAY:
            raise ValueError(f"calling window {self}: the start must be between 00:00 and 23:59")
        if not 0 < self.end <= MINUTES_PER_DAY:
            raise ValueError(f"calling window {self}: the end must be between 00:01 and 24:00")
        if self.start == self.end:
            raise ValueError(
                f"calling window {self}: start and end are equal; use 00:00-24:00 for always"
            )

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"

    @property
    def always(self) -> bool:
        return self.start == 0 and self.end == MINUTES_PER_DAY

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    @cached_property
    def minutes(self) -> frozenset[int]:
        """Every allowed minute of the day (0 = 00:00 .. 1439 = 23:59)."""
        if self.crosses_midnight:
            return frozenset(range(self.start, MINUTES_PER_DAY)) | frozenset(range(self.end))
        return frozenset(range(self.start, self.end))

    def contains_time(self, local: time) -> bool:
        """Whether a local wall-clock time of day is inside the window."""
        minute = local.hour * 60 + local.minute
        if self.crosses_midnight:
            return minute >= self.start or minute < self.end
        return self.start <= minute < self.end

    def covers(self, other: CallWindow) -> bool:
        """Whether every minute ``other`` allows is allowed here too."""
        return other.minutes <= self.minutes


def clip_window(window: CallWindow, within: CallWindow) -> CallWindow | None:
    """The part of ``window`` that ``within`` allows too; ``None`` when they do not overlap.

    On the 24-hour circle the overlap of two windows can be two pieces (10:00-20:00 inside
    19:00-11:00 leaves 10:00-11:00 and 19:00-20:00); a window is one range, so the longest
    piece wins, the earlier one on a tie: it is inside both windows, which is what matters.
    """
    allowed = window.minutes & within.minutes
    if not allowed:
        return None
    if len(allowed) == MINUTES_PER_DAY:
        return CallWindow(0, MINUTES_PER_DAY)
    # Runs of allowed minutes start where the minute before is not allowed (wrapping at 00:00).
    starts = sorted(m for m in allowed if (m - 1) % MINUTES_PER_DAY not in allowed)
    pieces = []
    for start in starts:
        length = 0
        while (start + length) % MINUTES_PER_DAY in allowed:
            length += 1
        pieces.append((length, start))
    length, start = max(pieces, key=lambda piece: (piece[0], -piece[1]))
    return CallWindow(start, (start + length) % MINUTES_PER_DAY or MINUTES_PER_DAY)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_call_window(text: str) -> CallWindow:
    """A window from ``IVR_CALL_WINDOW``-style text: ``09:00-21:00``, ``20:00-02:00``,
    ``00:00-24:00`` (always). Raises ``ValueError`` saying what is wrong."""
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(
            f"bad calling window {text!r}: write HH:MM-HH:MM, e.g. 09:00-21:00 "
            "(00:00-24:00 means always)"
        )
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    if start_hour > 23 or start_minute > 59:
        raise ValueError(f"bad calling window {text!r}: the start must be 00:00..23:59")
    if end_minute > 59 or end_hour > 24 or (end_hour == 24 and end_minute != 0):
        raise ValueError(f"bad calling window {text!r}: the end must be 00:01..24:00")
    start = start_hour * 60 + start_minute
    end = end_hour * 60 + end_minute
    if start == end:
        raise ValueError(
            f"bad calling window {text!r}: start and end are equal; use 00:00-24:00 for always"
        )
    if end == 0:
        # 00:00 as an end is the end of the day: 20:00-00:00 is the evening.
        end = MINUTES_PER_DAY
    return CallWindow(start, end)


def zone(name: str, field_name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError`` naming ``field_name`` if there is no such zone."""
    if name in _NOT_PLACES:
        raise ValueError(f"{field_name}: {name!r} is not a time zone; use e.g. Europe/Moscow")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"{field_name}: unknown time zone {name!r}; use an IANA name such as Europe/Moscow"
        ) from exc


def number_timezones(number: str) -> tuple[str, ...]:
    """The zones ``phonenumbers`` places an E.164 number in (empty when it cannot tell)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(name for name in phone_timezones.time_zones_for_number(parsed) if name)


def recipient_timezone(
    number: str,
    request_tz: str | None,
    contact_tz: str | None,
    default_tz: str | ZoneInfo,
) -> ZoneInfo:
    """The zone whose wall clock the calling window is read on.

    Precedence: the request's ``timezone``, the contact's time zone, the number's zone from
    ``phonenumbers``, the server default. A number that maps to several zones (mobile ranges,
    toll-free numbers, whole countries such as +7 mobiles) gives the server default when that
    is one of them, since a business's customers mostly live where the business is; otherwise
    the first name in ``phonenumbers``' alphabetical list, which is stable but arbitrary:
    integrators who know better send ``timezone``. A number the library cannot place, or a zone
    name this machine's database lacks, falls through to the default.
    """
    if request_tz is not None:
        return zone(request_tz, "timezone")
    if contact_tz is not None:
        return zone(contact_tz, "contact timezone")
    default = default_tz
    if not isinstance(default, ZoneInfo):
        default = zone(default, "default timezone")
    candidates = [name for name in number_timezones(number) if name != _UNKNOWN_ZONE]
    if default.key in candidates:
        return default
    for name in candidates:
        try:
            return zone(name, "number timezone")
        except ValueError:
            continue
    return default


def require_aware(moment: datetime, field_name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{field_name}: {moment.isoformat()} has no time zone offset")
    return moment


def localize(moment: datetime, tz: ZoneInfo) -> datetime:
    """An aware ``moment``: a naive one is read as the recipient's local wall-clock time.

    A wall time that happens twice (clocks going back) means its first occurrence; one that
    does not exist (clocks jumping forward) means the moment the clock jumps past it, the first
    moment the clock shows a later time. Naive moments come back in UTC, aware ones unchanged.
    """
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        return moment
    first = moment.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == moment:
        return first
    # Not a wall time of this zone: the jump lies between the two readings of it.
    second = moment.replace(tzinfo=tz, fold=1).astimezone(UTC)
    earlier, later = sorted((first, second))
    return _first_offset_change(earlier, later, tz) or later


def is_allowed(at: datetime, window: CallWindow, tz: ZoneInfo) -> bool:
    """Whether the recipient's wall clock shows a time inside ``window`` at ``at``."""
    require_aware(at, "at")
    return window.always or window.contains_time(at.astimezone(tz).time())


def next_allowed(at: datetime, window: CallWindow, tz: ZoneInfo) -> datetime:
    """``at`` itself when it is inside the window, else the window's next opening.

    The opening is the earliest moment after ``at`` at which the recipient's wall clock shows a
    time inside the window, in UTC.
    """
    require_aware(at, "at")
    if is_allowed(at, window, tz):
        return at
    start = at.astimezone(UTC)
    for _ in range(_MAX_OFFSET_CHANGES):
        # While the offset stays put the local clock runs with UTC, so the opening is a fixed
        # distance away; an offset change before it makes the clock jump, so look again there.
        offset = _offset(start, tz)
        opening = _opening_at_fixed_offset(start, offset, window)
        change = _first_offset_change(start, opening, tz)
        if change is None:
            return opening
        start = change
    raise RuntimeError(f"calling window {window} never opens in {tz.key} after {at.isoformat()}")


def _offset(moment: datetime, tz: ZoneInfo) -> timedelta:
    offset = moment.astimezone(tz).utcoffset()
    assert offset is not None  # ZoneInfo always has an offset for an aware moment
    return offset


def _opening_at_fixed_offset(start: datetime, offset: timedelta, window: CallWindow) -> datetime:
    """The first moment from ``start`` (UTC) inside ``window`` if the offset never changed."""
    local = start + offset
    since_midnight = local - local.replace(hour=0, minute=0, second=0, microsecond=0)
    if window.contains_time(local.time()):
        return start
    wait = (timedelta(minutes=window.start) - since_midnight) % _DAY
    return start + wait


def _first_offset_change(start: datetime, until: datetime, tz: ZoneInfo) -> datetime | None:
    """The first moment in ``(start, until]`` (UTC) whose offset differs from ``start``'s."""
    offset = _offset(start, tz)
    probe = start
    while probe < until:
        following = min(probe + _OFFSET_PROBE_STEP, until)
        if _offset(following, tz) != offset:
            return _bisect_offset_change(probe, following, offset, tz)
        probe = following
    return None


def _bisect_offset_change(
    before: datetime, after: datetime, offset: timedelta, tz: ZoneInfo
) -> datetime:
    # The zone database changes offsets on whole seconds, and a moment shares its offset with
    # the whole second it falls in, so searching whole seconds finds the exact change.
    low = math.floor(before.timestamp())
    high = math.ceil(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(datetime.fromtimestamp(middle, UTC), tz) == offset:
            low = middle
        else:
            high = middle
    return max(datetime.fromtimestamp(high, UTC), before)
