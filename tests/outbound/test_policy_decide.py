"""``decide``: every rule and reason code, with a fixed clock.

The recipient is in Washington (America/New_York, EDT in June: UTC-4). ``NOW`` is 12:00 there,
inside both the transactional window (09:00-21:00) and the optional one (10:00-20:00).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.dialplan.schema import Attempts
from ivr.outbound.policy import (
    ALL_CATEGORIES,
    CallAt,
    CallNow,
    Channel,
    ContactFacts,
    Delivery,
    FrequencyCap,
    NotificationFacts,
    PolicySettings,
    ReasonCode,
    SendSms,
    Skip,
    decide,
)

NEW_YORK = ZoneInfo("America/New_York")
TO = "+12025550123"
NOW = datetime(2024, 6, 12, 16, 0, tzinfo=UTC)
SETTINGS = PolicySettings()
NOBODY_SPECIAL = ContactFacts()


def at_local(hour: int, minute: int = 0, day: int = 12) -> datetime:
    return datetime(2024, 6, day, hour, minute, tzinfo=NEW_YORK)


def reminder(**changes: Any) -> NotificationFacts:
    return replace(NotificationFacts(to=TO, category="appointment", has_sms_text=True), **changes)


def marketing(**changes: Any) -> NotificationFacts:
    return reminder(category="marketing", **changes)


def skipped(decision: object) -> Skip:
    assert isinstance(decision, Skip), decision
    assert decision.message
    return decision


# Calling hours ----------------------------------------------------------------------------


def test_inside_the_window_calls_now() -> None:
    assert decide(reminder(), NOBODY_SPECIAL, SETTINGS, NOW) == CallNow()
    assert decide(marketing(), NOBODY_SPECIAL, SETTINGS, NOW) == CallNow()


def test_at_night_the_call_moves_to_the_morning_not_away() -> None:
    late = at_local(22, 30)
    decision = decide(reminder(), NOBODY_SPECIAL, SETTINGS, late)
    assert isinstance(decision, CallAt)
    assert decision.at == at_local(9, 0, day=13)
    assert decision.code is ReasonCode.OUTSIDE_CALLING_HOURS
    assert "09:00-21:00" in decision.message


def test_optional_categories_keep_the_narrower_window() -> None:
    early = at_local(9, 30)
    assert decide(reminder(), NOBODY_SPECIAL, SETTINGS, early) == CallNow()
    decision = decide(marketing(), NOBODY_SPECIAL, SETTINGS, early)
    assert isinstance(decision, CallAt)
    assert decision.at == at_local(10, 0)
    assert decision.code is ReasonCode.OUTSIDE_CALLING_HOURS


def test_without_an_optional_window_every_category_shares_the_call_window() -> None:
    same_window = PolicySettings(optional_call_window=None)
    assert decide(marketing(), NOBODY_SPECIAL, same_window, at_local(9, 30)) == CallNow()


def test_the_window_is_read_in_the_request_time_zone_first() -> None:
    # 16:00 UTC is 01:00 in Seoul: the request's zone beats the contact's and the number's.
    in_london = ContactFacts(timezone="Europe/London")
    decision = decide(reminder(timezone="Asia/Seoul"), in_london, SETTINGS, NOW)
    assert isinstance(decision, CallAt)
    assert decision.at == datetime(2024, 6, 13, 0, 0, tzinfo=UTC)
    assert "Asia/Seoul" in decision.message


def test_the_contacts_time_zone_beats_the_numbers() -> None:
    # 16:00 UTC is 01:00 in Tokyo.
    in_tokyo = ContactFacts(timezone="Asia/Tokyo")
    decision = decide(reminder(), in_tokyo, SETTINGS, NOW)
    assert isinstance(decision, CallAt)
    assert decision.at == datetime(2024, 6, 13, 0, 0, tzinfo=UTC)


def test_a_bad_contact_time_zone_is_named() -> None:
    with pytest.raises(ValueError, match="contact timezone"):
        decide(reminder(), ContactFacts(timezone="Mars/Base"), SETTINGS, NOW)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="now"):
        decide(reminder(), NOBODY_SPECIAL, SETTINGS, datetime(2024, 6, 12, 16, 0))


# not_before / not_after ------------------------------------------------------------------


def test_not_before_in_the_future_waits_for_it() -> None:
    decision = decide(reminder(not_before=at_local(15, 0)), NOBODY_SPECIAL, SETTINGS, NOW)
    assert isinstance(decision, CallAt)
    assert (decision.at, decision.code) == (at_local(15, 0), ReasonCode.NOT_BEFORE)


def test_not_before_without_an_offset_is_recipient_local_time() -> None:
    naive = datetime(2024, 6, 12, 15, 0)
    decision = decide(reminder(not_before=naive), NOBODY_SPECIAL, SETTINGS, NOW)
    assert isinstance(decision, CallAt)
    assert decision.at == datetime(2024, 6, 12, 19, 0, tzinfo=UTC)


def test_not_before_at_night_moves_to_the_window() -> None:
    decision = decide(reminder(not_before=at_local(23, 0)), NOBODY_SPECIAL, SETTINGS, NOW)
    assert isinstance(decision, CallAt)
    assert decision.at == at_local(9, 0, day=13)
    assert decision.code is ReasonCode.OUTSIDE_CALLING_HOURS


def test_not_before_in_the_past_changes_nothing() -> None:
    assert decide(reminder(not_before=at_local(8, 0)), NOBODY_SPECIAL, SETTINGS, NOW) == CallNow()


def test_not_after_passed_is_expired() -> None:
    decision = decide(reminder(not_after=at_local(11, 59)), NOBODY_SPECIAL, SETTINGS, NOW)
    assert skipped(decision).code is ReasonCode.EXPIRED


def test_not_after_is_inclusive() -> None:
    assert decide(reminder(not_after=NOW), NOBODY_SPECIAL, SETTINGS, NOW) == CallNow()


def test_a_next_opening_after_not_after_is_expired() -> None:
    decision = decide(
        reminder(not_after=at_local(8, 0, day=13)), NOBODY_SPECIAL, SETTINGS, at_local(22, 0)
    )
    assert skipped(decision).code is ReasonCode.EXPIRED
    assert "after not_after" in skipped(decision).message


def test_not_after_without_an_offset_is_recipient_local_time() -> None:
    # 11:00 naive is 11:00 in New York, an hour before NOW; in UTC it would still be ahead.
    decision = decide(
        reminder(not_after=datetime(2024, 6, 12, 11, 0)), NOBODY_SPECIAL, SETTINGS, NOW
    )
    assert skipped(decision).code is ReasonCode.EXPIRED


# Do-not-call ------------------------------------------------------------------------------

DO_NOT_CALL = ContactFacts(do_not_call=True)
SMS_TO_DO_NOT_CALL = PolicySettings(transactional_sms_to_do_not_call=True)


@pytest.mark.parametrize("category", ["appointment", "marketing", "transactional", "survey"])
def test_do_not_call_blocks_every_call_by_default(category: str) -> None:
    decision = decide(reminder(category=category), DO_NOT_CALL, SETTINGS, NOW)
    assert skipped(decision).code is ReasonCode.DO_NOT_CALL


def test_do_not_call_blocks_the_fallback_sms_too_by_default() -> None:
    decision = decide(reminder(channel=Channel.SMS), DO_NOT_CALL, SETTINGS, NOW)
    assert skipped(decision).code is ReasonCode.DO_NOT_CALL


def test_a_transactional_notice_may_reach_a_do_not_call_number_by_sms_when_allowed() -> None:
    decision = decide(reminder(), DO_NOT_CALL, SMS_TO_DO_NOT_CALL, NOW)
    assert isinstance(decision, SendSms)
    assert (decision.at, decision.code) == (NOW, ReasonCode.DO_NOT_CALL)


def test_the_do_not_call_sms_still_waits_for_the_window() -> None:
    decision = decide(reminder(), DO_NOT_CALL, SMS_TO_DO_NOT_CALL, at_local(23, 0))
    assert isinstance(decision, SendSms)
    assert decision.at == at_local(9, 0, day=13)


def test_no_sms_text_means_no_way_to_reach_a_do_not_call_number() -> None:
    decision = decide(reminder(has_sms_text=False), DO_NOT_CALL, SMS_TO_DO_NOT_CALL, NOW)
    assert skipped(decision).code is ReasonCode.DO_NOT_CALL
    assert "no SMS text" in skipped(decision).message


def test_optional_notices_never_reach_a_do_not_call_number() -> None:
    for channel in Channel:
        decision = decide(marketing(channel=channel), DO_NOT_CALL, SMS_TO_DO_NOT_CALL, NOW)
        assert skipped(decision).code is ReasonCode.DO_NOT_CALL


# Opt-outs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("opted_out", [{"marketing"}, {ALL_CATEGORIES}, {"news", "marketing"}])
def test_an_opted_out_optional_category_is_skipped(opted_out: set[str]) -> None:
    contact = ContactFacts(opted_out=frozenset(opted_out))
    assert skipped(decide(marketing(), contact, SETTINGS, NOW)).code is ReasonCode.OPTED_OUT


def test_opting_out_of_one_category_leaves_the_others() -> None:
    contact = ContactFacts(opted_out=frozenset({"news"}))
    assert decide(marketing(), contact, SETTINGS, NOW) == CallNow()


def test_an_unknown_category_is_optional_and_honours_opt_outs() -> None:
    contact = ContactFacts(opted_out=frozenset({ALL_CATEGORIES}))
    decision = decide(reminder(category="survey"), contact, SETTINGS, NOW)
    assert skipped(decision).code is ReasonCode.OPTED_OUT


@pytest.mark.parametrize("category", ["transactional", "appointment", "order_status", "delivery"])
def test_transactional_categories_ignore_opt_outs(category: str) -> None:
    contact = ContactFacts(opted_out=frozenset({ALL_CATEGORIES, category}))
    assert decide(reminder(category=category), contact, SETTINGS, NOW) == CallNow()


def test_categories_can_be_declared_transactional_by_settings() -> None:
    settings = PolicySettings(transactional_categories=frozenset({"outage"}))
    contact = ContactFacts(opted_out=frozenset({ALL_CATEGORIES}))
    assert decide(reminder(category="outage"), contact, settings, NOW) == CallNow()
    decision = decide(reminder(category="appointment"), contact, settings, NOW)
    assert skipped(decision).code is ReasonCode.OPTED_OUT


# One channel ------------------------------------------------------------------------------

CALLED = frozenset({Channel.CALL})


def test_an_optional_notice_gets_no_fallback_sms_after_its_calls() -> None:
    decision = decide(
        marketing(channel=Channel.SMS, channels_used=CALLED), NOBODY_SPECIAL, SETTINGS, NOW
    )
    assert skipped(decision).code is ReasonCode.CHANNEL_ALREADY_USED


def test_a_contact_who_asked_for_more_channels_gets_the_sms() -> None:
    contact = ContactFacts(multiple_channels=True)
    decision = decide(marketing(channel=Channel.SMS, channels_used=CALLED), contact, SETTINGS, NOW)
    assert isinstance(decision, SendSms)
    assert (decision.at, decision.code) == (NOW, ReasonCode.SMS_CHANNEL)


def test_a_retry_on_the_same_channel_is_not_a_second_channel() -> None:
    decision = decide(
        marketing(attempt=2, attempts=Attempts(max=3), channels_used=CALLED),
        NOBODY_SPECIAL,
        SETTINGS,
        NOW,
    )
    assert decision == CallNow()


def test_a_transactional_notice_gets_its_fallback_sms() -> None:
    decision = decide(
        reminder(channel=Channel.SMS, channels_used=CALLED), NOBODY_SPECIAL, SETTINGS, NOW
    )
    assert isinstance(decision, SendSms)
    assert decision.code is ReasonCode.SMS_CHANNEL


def test_an_sms_only_notice_goes_out_by_sms_within_the_window() -> None:
    decision = decide(marketing(channel=Channel.SMS), NOBODY_SPECIAL, SETTINGS, at_local(21, 0))
    assert isinstance(decision, SendSms)
    assert decision.at == at_local(10, 0, day=13)


# Frequency caps ---------------------------------------------------------------------------


def delivered(category: str, days_ago: float) -> Delivery:
    return Delivery(category, NOW - timedelta(days=days_ago))


def test_one_optional_notice_per_category_and_week_by_default() -> None:
    contact = ContactFacts(deliveries=(delivered("marketing", 3),))
    decision = decide(marketing(), contact, SETTINGS, NOW)
    assert skipped(decision).code is ReasonCode.FREQUENCY_CAP
    assert isinstance(decision, Skip)
    assert decision.until == NOW + timedelta(days=4)
    assert "2024-06-16T12:00:00-04:00" in decision.message


def test_the_cap_frees_after_the_period() -> None:
    contact = ContactFacts(deliveries=(delivered("marketing", 7),))
    assert decide(marketing(), contact, SETTINGS, NOW) == CallNow()


def test_caps_are_per_category() -> None:
    contact = ContactFacts(deliveries=(delivered("news", 1), delivered("appointment", 1)))
    assert decide(marketing(), contact, SETTINGS, NOW) == CallNow()


def test_transactional_notices_have_no_cap() -> None:
    contact = ContactFacts(deliveries=tuple(delivered("appointment", day / 10) for day in range(5)))
    assert decide(reminder(), contact, SETTINGS, NOW) == CallNow()


def test_caps_are_configurable_per_category() -> None:
    settings = PolicySettings(
        frequency_caps={"news": FrequencyCap(2, timedelta(days=7)), "product_updates": None}
    )
    once = ContactFacts(deliveries=(delivered("news", 2),))
    twice = ContactFacts(deliveries=(delivered("news", 2), delivered("news", 5)))
    assert decide(reminder(category="news"), once, settings, NOW) == CallNow()
    decision = decide(reminder(category="news"), twice, settings, NOW)
    assert skipped(decision).code is ReasonCode.FREQUENCY_CAP
    assert skipped(decision).until == NOW + timedelta(days=2)
    many = ContactFacts(deliveries=tuple(delivered("product_updates", 0.1) for _ in range(9)))
    assert decide(reminder(category="product_updates"), many, settings, NOW) == CallNow()
    # The default cap still holds for the categories not listed.
    weekly = ContactFacts(deliveries=(delivered("marketing", 2),))
    assert skipped(decide(marketing(), weekly, settings, NOW)).code is ReasonCode.FREQUENCY_CAP


def test_no_default_cap_means_no_cap() -> None:
    settings = PolicySettings(frequency_cap=None)
    contact = ContactFacts(deliveries=(delivered("marketing", 0.5),))
    assert decide(marketing(), contact, settings, NOW) == CallNow()


# Which reason wins ------------------------------------------------------------------------


def test_the_contacts_own_reasons_come_before_timing() -> None:
    everything = ContactFacts(
        do_not_call=True,
        opted_out=frozenset({"marketing"}),
        deliveries=(delivered("marketing", 1),),
    )
    expired = marketing(not_after=at_local(8, 0), channel=Channel.SMS, channels_used=CALLED)
    assert skipped(decide(expired, everything, SETTINGS, NOW)).code is ReasonCode.DO_NOT_CALL
    everything = replace(everything, do_not_call=False)
    assert skipped(decide(expired, everything, SETTINGS, NOW)).code is ReasonCode.OPTED_OUT
    everything = replace(everything, opted_out=frozenset())
    assert (
        skipped(decide(expired, everything, SETTINGS, NOW)).code is ReasonCode.CHANNEL_ALREADY_USED
    )
    expired = replace(expired, channel=Channel.CALL)
    assert skipped(decide(expired, everything, SETTINGS, NOW)).code is ReasonCode.FREQUENCY_CAP
    everything = replace(everything, deliveries=())
    assert skipped(decide(expired, everything, SETTINGS, NOW)).code is ReasonCode.EXPIRED


# Facts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 4])
def test_an_attempt_outside_the_policy_is_refused(attempt: int) -> None:
    with pytest.raises(ValueError, match=f"attempt {attempt} is outside 1..3"):
        reminder(attempt=attempt, attempts=Attempts(max=3))


def test_a_delivery_needs_an_offset() -> None:
    with pytest.raises(ValueError, match="delivery time"):
        Delivery("marketing", datetime(2024, 6, 1, 12, 0))
