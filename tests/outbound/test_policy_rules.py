"""Categories, settings, frequency caps, retries and opt-outs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.dialplan.schema import OPTED_OUT, Attempts
from ivr.outbound.policy import (
    ALL_CATEGORIES,
    DEFAULT_CALL_WINDOW,
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
    next_attempt,
    opt_out_for_outcome,
    opt_out_for_sms,
    parse_call_window,
    parse_frequency_cap,
)
from ivr.store.models import CallStatus, OptOutSource

NEW_YORK = ZoneInfo("America/New_York")
SETTINGS = PolicySettings()
ALWAYS = parse_call_window("00:00-24:00")
NOON = datetime(2024, 6, 12, 16, 0, tzinfo=UTC)  # 12:00 in New York


# Categories and settings ------------------------------------------------------------------


@pytest.mark.parametrize(
    "category", ["transactional", "appointment", "order_status", "delivery", "contract"]
)
def test_service_notices_are_transactional(category: str) -> None:
    assert is_transactional(category, SETTINGS)
    assert frequency_cap_for(category, SETTINGS) is None
    assert calling_window(category, SETTINGS) == DEFAULT_CALL_WINDOW


@pytest.mark.parametrize(
    "category", ["marketing", "news", "product_updates", "survey", "Appointment", "*"]
)
def test_everything_else_is_optional(category: str) -> None:
    assert not is_transactional(category, SETTINGS)
    assert frequency_cap_for(category, SETTINGS) == FrequencyCap(1, timedelta(days=7))
    assert str(calling_window(category, SETTINGS)) == "10:00-20:00"


def test_star_opts_out_of_optional_categories_only() -> None:
    everything = frozenset({ALL_CATEGORIES})
    assert is_opted_out("marketing", everything, SETTINGS)
    assert is_opted_out("brand_new_category", everything, SETTINGS)
    assert not is_opted_out("appointment", everything, SETTINGS)
    assert not is_opted_out("marketing", frozenset({"news"}), SETTINGS)


def test_the_optional_window_must_lie_inside_the_call_window() -> None:
    with pytest.raises(ValueError, match=r"optional calling window 10:00-20:00 .* 11:00-19:00"):
        PolicySettings(call_window=parse_call_window("11:00-19:00"))
    narrow = PolicySettings(
        call_window=parse_call_window("11:00-19:00"),
        optional_call_window=parse_call_window("12:00-18:00"),
    )
    assert str(calling_window("news", narrow)) == "12:00-18:00"
    same = PolicySettings(call_window=parse_call_window("11:00-19:00"), optional_call_window=None)
    assert str(calling_window("news", same)) == "11:00-19:00"
    always = PolicySettings(call_window=ALWAYS)
    assert calling_window("delivery", always).always


def test_settings_refuse_a_bad_default_zone_and_a_transactional_star() -> None:
    with pytest.raises(ValueError, match="default timezone"):
        PolicySettings(default_timezone="Moscow")
    with pytest.raises(ValueError, match="transactional"):
        PolicySettings(transactional_categories=frozenset({ALL_CATEGORIES}))


# Frequency caps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cap"),
    [
        ("1/7d", FrequencyCap(1, timedelta(days=7))),
        ("3/30d", FrequencyCap(3, timedelta(days=30))),
        (" 2 / 12h ", FrequencyCap(2, timedelta(hours=12))),
        ("1/3600", FrequencyCap(1, timedelta(hours=1))),
    ],
)
def test_caps_parse(text: str, cap: FrequencyCap) -> None:
    assert parse_frequency_cap(text) == cap


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("7d", "COUNT/DURATION"),
        ("x/7d", "COUNT/DURATION"),
        ("-1/7d", "COUNT/DURATION"),
        ("0/7d", "at least 1"),
        ("1/0s", "positive"),
        ("1/soon", "bad duration"),
    ],
)
def test_bad_caps_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_frequency_cap(text)


def test_the_cap_frees_when_the_oldest_delivery_filling_it_leaves_the_period() -> None:
    cap = FrequencyCap(2, timedelta(days=7))
    deliveries = (
        Delivery("news", NOON - timedelta(days=9)),  # outside the period
        Delivery("news", NOON - timedelta(days=6)),
        Delivery("news", NOON - timedelta(days=2)),
        Delivery("news", NOON - timedelta(days=1)),
        Delivery("marketing", NOON - timedelta(hours=1)),
    )
    assert cap_frees_at("news", deliveries, cap, NOON) == NOON + timedelta(days=5)
    assert cap_frees_at("news", deliveries[:3], cap, NOON) == NOON + timedelta(days=1)
    assert cap_frees_at("news", deliveries[:2], cap, NOON) is None
    assert cap_frees_at("marketing", deliveries, cap, NOON) is None


def test_a_delivery_after_now_does_not_count() -> None:
    cap = FrequencyCap(1, timedelta(days=7))
    later = (Delivery("news", NOON + timedelta(minutes=1)),)
    assert cap_frees_at("news", later, cap, NOON) is None


def test_a_cap_period_is_elapsed_time_across_a_dst_change() -> None:
    # Delivered at 12:00 EST on the Friday before New York springs forward: seven days of
    # elapsed time later the clocks show 13:00 EDT.
    delivered = datetime(2024, 3, 8, 12, 0, tzinfo=NEW_YORK)
    now = datetime(2024, 3, 12, 12, 0, tzinfo=NEW_YORK)
    frees = cap_frees_at(
        "news", (Delivery("news", delivered),), FrequencyCap(1, timedelta(days=7)), now
    )
    assert frees is not None
    assert frees == datetime(2024, 3, 15, 17, 0, tzinfo=UTC)
    assert frees.astimezone(NEW_YORK).hour == 13


# Retries ----------------------------------------------------------------------------------

THREE_TRIES = Attempts(max=3, retry_after=[600.0, 3600.0])


@pytest.mark.parametrize("status", [CallStatus.NO_ANSWER, CallStatus.BUSY, CallStatus.FAILED])
def test_unreached_calls_retry_after_the_delay_for_that_attempt(status: CallStatus) -> None:
    first = next_attempt(status, 1, THREE_TRIES, NOON, ALWAYS, NEW_YORK)
    second = next_attempt(status.value, 2, THREE_TRIES, NOON, ALWAYS, NEW_YORK)
    assert first == NOON + timedelta(minutes=10)
    assert second == NOON + timedelta(hours=1)


def test_the_last_delay_repeats_for_later_attempts() -> None:
    five_tries = Attempts(max=5, retry_after=[60.0, 120.0])
    delays = [
        next_attempt(CallStatus.BUSY, attempt, five_tries, NOON, ALWAYS, NEW_YORK)
        for attempt in range(1, 5)
    ]
    assert delays == [NOON + timedelta(seconds=s) for s in (60, 120, 120, 120)]


def test_a_single_retry_after_as_integrators_write_it() -> None:
    quick = Attempts.model_validate({"max": 2, "retry_after": "1s"})
    retry = next_attempt(CallStatus.NO_ANSWER, 1, quick, NOON, ALWAYS, NEW_YORK)
    assert retry == NOON + timedelta(seconds=1)


def test_out_of_attempts_is_none() -> None:
    assert next_attempt(CallStatus.NO_ANSWER, 3, THREE_TRIES, NOON, ALWAYS, NEW_YORK) is None
    single = Attempts(max=1)
    assert next_attempt(CallStatus.BUSY, 1, single, NOON, ALWAYS, NEW_YORK) is None


@pytest.mark.parametrize("status", [CallStatus.COMPLETED, CallStatus.CANCELED])
def test_a_reached_or_cancelled_call_is_not_retried(status: CallStatus) -> None:
    assert next_attempt(status, 1, THREE_TRIES, NOON, ALWAYS, NEW_YORK) is None


@pytest.mark.parametrize("status", ["ringing", "in-progress", "queued", "lost"])
def test_a_status_that_is_not_final_is_refused(status: str) -> None:
    with pytest.raises(ValueError, match="not a final call status"):
        next_attempt(status, 1, THREE_TRIES, NOON, ALWAYS, NEW_YORK)


def test_a_retry_falling_at_night_moves_into_the_window() -> None:
    evening = datetime(2024, 6, 12, 20, 30, tzinfo=NEW_YORK)
    retry = next_attempt(
        CallStatus.NO_ANSWER, 2, THREE_TRIES, evening, DEFAULT_CALL_WINDOW, NEW_YORK
    )
    assert retry == datetime(2024, 6, 13, 9, 0, tzinfo=NEW_YORK)


def test_a_retry_after_not_after_is_none() -> None:
    evening = datetime(2024, 6, 12, 20, 30, tzinfo=NEW_YORK)
    tonight = datetime(2024, 6, 12, 23, 0)  # naive: New York time
    tomorrow = datetime(2024, 6, 13, 9, 0)
    args = (CallStatus.NO_ANSWER, 2, THREE_TRIES, evening, DEFAULT_CALL_WINDOW, NEW_YORK)
    assert next_attempt(*args, not_after=tonight) is None
    assert next_attempt(*args, not_after=tomorrow) == datetime(2024, 6, 13, 13, 0, tzinfo=UTC)


def test_a_retry_delay_is_elapsed_time_across_a_dst_change() -> None:
    # 01:30 EST plus one hour is 03:30 EDT: the clocks skip 02:00-03:00 that night.
    before_the_jump = datetime(2024, 3, 10, 1, 30, tzinfo=NEW_YORK)
    retry = next_attempt(CallStatus.NO_ANSWER, 2, THREE_TRIES, before_the_jump, ALWAYS, NEW_YORK)
    assert retry == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)


# Opt-outs ---------------------------------------------------------------------------------


def test_saying_stop_on_an_optional_call_opts_out_of_that_category() -> None:
    change = opt_out_for_outcome(OPTED_OUT, "marketing", SETTINGS)
    assert change is not None
    assert (change.action, change.category, change.source) == (
        OptOutAction.OPT_OUT,
        "marketing",
        OptOutSource.IVR,
    )
    assert "marketing" in change.reason


def test_saying_stop_on_a_transactional_call_opts_out_of_every_optional_category() -> None:
    change = opt_out_for_outcome(OPTED_OUT, "appointment", SETTINGS)
    assert change is not None
    assert (change.action, change.category) == (OptOutAction.OPT_OUT, ALL_CATEGORIES)


@pytest.mark.parametrize("outcome", ["confirmed", "cancelled", "voicemail", None])
def test_other_outcomes_change_no_opt_out(outcome: str | None) -> None:
    assert opt_out_for_outcome(outcome, "marketing", SETTINGS) is None


@pytest.mark.parametrize("body", ["STOP", "stop", " Stop. ", "UNSUBSCRIBE", "StopAll", "quit!"])
def test_sms_stop_opts_out_of_every_optional_category(body: str) -> None:
    assert opt_out_for_sms(body) == OptOutChange(
        OptOutAction.OPT_OUT, ALL_CATEGORIES, OptOutSource.SMS, body.strip()
    )


@pytest.mark.parametrize("body", ["START", "start", "Unstop", "YES", "yes."])
def test_sms_start_opts_back_in(body: str) -> None:
    change = opt_out_for_sms(body)
    assert change is not None
    assert (change.action, change.category) == (OptOutAction.OPT_IN, ALL_CATEGORIES)


@pytest.mark.parametrize(
    "body", ["yes please", "C", "X", "HELP", "stop by tomorrow", "", "please stop"]
)
def test_other_sms_change_no_opt_out(body: str) -> None:
    assert opt_out_for_sms(body) is None
