"""The reports' and contacts page's queries on a known data set (tests/store/report_data.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ivr.store import (
    ALL_CATEGORIES,
    CallStatus,
    Direction,
    NewNotification,
    NotificationStatus,
    OptOutSource,
    SmsStatus,
    Store,
)
from ivr.store.contact_queries import ContactSearch
from ivr.store.report_queries import CANCELLED_BEFORE_CALL, Period, ReportFilter
from tests.store.report_data import (
    AUTUMN,
    PLAN_A,
    PLAN_B,
    SPRING,
    SPRING_NAME,
    insert_report_data,
)

PERIOD = Period(date(2026, 11, 1), date(2026, 11, 3))


@pytest.fixture
async def reported(store: Store) -> Store:
    async with store.transaction() as tx:
        await insert_report_data(tx)
    return store


async def test_totals_over_the_period(reported: Store) -> None:
    async with reported.read() as tx:
        report = await tx.reports.report(PERIOD)
    total = report.total
    assert total.outcomes == {
        "confirmed": 3, "unreached": 1, "cancelled": 1, "opted_out": 1, "skipped": 1,
        CANCELLED_BEFORE_CALL: 1,
    }  # fmt: skip
    assert (total.finished, total.reached, total.confirmed) == (8, 5, 3)
    assert total.confirmation_rate == pytest.approx(3 / 5)
    assert (total.attempts, total.called) == (9, 6)
    assert total.attempts_per_notification == pytest.approx(1.5)
    assert report.outcomes()[:3] == ["confirmed", "cancelled", "opted_out"]


async def test_outcomes_per_day_include_days_without_any(reported: Store) -> None:
    async with reported.read() as tx:
        report = await tx.reports.report(PERIOD)
    assert list(report.by_day) == [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    # 23:59:59 belongs to its own day, midnight to the next: days are UTC calendar days.
    assert report.by_day[date(2026, 11, 1)].outcomes == {
        "confirmed": 2, "unreached": 1, "cancelled": 1,
    }  # fmt: skip
    assert report.by_day[date(2026, 11, 2)].outcomes == {
        "opted_out": 1, "skipped": 1, "confirmed": 1, CANCELLED_BEFORE_CALL: 1,
    }  # fmt: skip
    assert report.by_day[date(2026, 11, 3)].finished == 0


async def test_outcomes_and_rates_per_plan(reported: Store) -> None:
    async with reported.read() as tx:
        report = await tx.reports.report(PERIOD)
    a, b = report.by_plan[PLAN_A], report.by_plan[PLAN_B]
    assert list(report.by_plan) == [PLAN_A, PLAN_B]
    assert (a.finished, a.reached, a.confirmed) == (5, 3, 2)
    assert (b.finished, b.reached, b.confirmed) == (3, 2, 1)
    assert b.confirmation_rate == pytest.approx(1 / 2)


async def test_answer_rate_counts_ended_outbound_attempts(reported: Store) -> None:
    async with reported.read() as tx:
        report = await tx.reports.report(PERIOD)
    assert (report.calls.ended, report.calls.answered, report.calls.by_person) == (7, 4, 3)
    assert report.calls.answer_rate == pytest.approx(4 / 7)
    a, b = report.calls_by_plan[PLAN_A], report.calls_by_plan[PLAN_B]
    assert (a.ended, a.answered, a.by_person) == (5, 3, 2)
    assert (b.ended, b.answered, b.by_person) == (2, 1, 1)


async def test_sms_fallbacks_by_delivery(reported: Store) -> None:
    async with reported.read() as tx:
        report = await tx.reports.report(PERIOD)
    assert (report.sms.sent, report.sms.delivered, report.sms.failed) == (5, 2, 2)


async def test_a_plan_filter_narrows_every_number(reported: Store) -> None:
    async with reported.read() as tx:
        report = await tx.reports.report(PERIOD, ReportFilter(plan_id=PLAN_B))
    assert report.total.finished == 3
    assert list(report.by_plan) == [PLAN_B]
    assert (report.calls.ended, report.calls.answered) == (2, 1)
    assert (report.sms.sent, report.sms.failed) == (1, 1)


async def test_outcomes_per_campaign_and_a_campaign_filter(reported: Store) -> None:
    async with reported.read() as tx:
        report = await tx.reports.report(PERIOD)
        spring = await tx.reports.report(PERIOD, ReportFilter(campaign_id=SPRING))
        names = await tx.reports.campaign_names([SPRING, AUTUMN, "nope"])
    assert report.by_campaign[SPRING].outcomes == {"confirmed": 2, "cancelled": 1}
    assert report.by_campaign[AUTUMN].outcomes == {"opted_out": 1}
    assert report.by_campaign[None].finished == 4
    assert names == {SPRING: SPRING_NAME, AUTUMN: "Autumn"}
    assert spring.total.finished == 3
    assert (spring.total.confirmed, spring.total.attempts) == (2, 4)
    # Calls and messages count through their notification's campaign.
    assert (spring.calls.ended, spring.calls.answered) == (6, 3)
    assert (spring.sms.sent, spring.sms.delivered, spring.sms.failed) == (2, 1, 1)


async def test_one_day_period_and_bad_periods() -> None:
    assert Period(date(2026, 1, 1), date(2026, 1, 1)).days() == [date(2026, 1, 1)]
    assert Period.last_days(7, date(2026, 1, 7)).since == date(2026, 1, 1)
    with pytest.raises(ValueError, match="ends"):
        Period(date(2026, 1, 2), date(2026, 1, 1))
    with pytest.raises(ValueError, match="366 days"):
        Period(date(2025, 1, 1), date(2026, 1, 2))


async def test_an_empty_database_reports_zeros_and_no_rates(store: Store) -> None:
    async with store.read() as tx:
        report = await tx.reports.report(PERIOD)
    assert report.total.finished == 0
    assert report.total.confirmation_rate is None
    assert report.calls.answer_rate is None
    assert report.sms.sent == 0


NUMBERS = [f"+1202555{n:04d}" for n in range(10)]


@pytest.fixture
async def contacts(store: Store) -> Store:
    """0-3 contacts only (1 on do-not-call), 4-7 opt-outs only, 8-9 both."""
    async with store.transaction() as tx:
        for number in NUMBERS[:4] + NUMBERS[8:]:
            await tx.contacts.update(number, timezone="Europe/Paris")
        await tx.contacts.update(NUMBERS[1], do_not_call=True, do_not_call_reason="asked")
        await tx.contacts.update(NUMBERS[9], do_not_call=True)
        for number in NUMBERS[4:]:
            await tx.opt_outs.opt_out(number, "marketing", OptOutSource.API)
        await tx.opt_outs.opt_out(NUMBERS[5], "news", OptOutSource.API)
        await tx.opt_outs.opt_out(NUMBERS[6], ALL_CATEGORIES, OptOutSource.SMS)
        await tx.contacts.update("+442071234567")
    return store


async def test_contacts_pages_walk_the_union_of_contacts_and_opt_outs(contacts: Store) -> None:
    seen: list[str] = []
    after = None
    async with contacts.read() as tx:
        while True:
            page = await tx.contact_lists.page(ContactSearch("+1202"), after=after, limit=3)
            if not page:
                break
            seen += [row.number for row in page]
            after = page[-1].number
        row5 = (await tx.contact_lists.page(ContactSearch(NUMBERS[5])))[0]
        row9 = (await tx.contact_lists.page(ContactSearch(NUMBERS[9])))[0]
    assert seen == NUMBERS  # each once, in order, the UK number left out by the prefix
    assert row5.opt_outs == ("marketing", "news")
    assert row5.timezone is None
    assert (row9.timezone, row9.do_not_call, row9.opt_outs) == (
        "Europe/Paris",
        True,
        ("marketing",),
    )


async def test_contacts_filters(contacts: Store) -> None:
    async with contacts.read() as tx:
        dnc = await tx.contact_lists.page(ContactSearch(do_not_call=True))
        news = await tx.contact_lists.page(ContactSearch(category="news"))
        both = await tx.contact_lists.page(ContactSearch(do_not_call=True, category="marketing"))
        without_plus = await tx.contact_lists.page(ContactSearch("44"))
    assert [r.number for r in dnc] == [NUMBERS[1], NUMBERS[9]]
    assert dnc[0].do_not_call_reason == "asked"
    # Opted out of news: by name, or of every optional category ("*").
    assert [r.number for r in news] == [NUMBERS[5], NUMBERS[6]]
    assert [r.number for r in both] == [NUMBERS[9]]
    assert [r.number for r in without_plus] == ["+442071234567"]


def test_a_search_is_the_start_of_a_number() -> None:
    with pytest.raises(ValueError, match="start of a number"):
        ContactSearch("+1*")
    with pytest.raises(ValueError, match="start of a number"):
        ContactSearch("abc")


async def test_recent_notifications_of_a_number_newest_first(reported: Store) -> None:
    async with reported.read() as tx:
        recent = await tx.contact_lists.recent_notifications("+12025550123", limit=3)
    assert [n.id for n in recent] == ["n-x2", "n-b3", "n-b2"]


async def test_the_daily_totals_follow_notifications_and_calls_as_they_end(store: Store) -> None:
    """Through the repositories, as the scheduler and the webhooks write: counted once, when
    the notification finishes and when its call reaches a final status, and not again."""
    today = Period.last_days(1, datetime.now(UTC).date())
    new = NewNotification(
        to_number="+12025550123", plan_id=PLAN_A, category="transactional", variables={},
        attempts_max=2, retry_after=[600.0], next_attempt_at=datetime.now(UTC),
    )  # fmt: skip
    async with store.transaction() as tx:
        notification, _ = await tx.notifications.create(new)
        call = await tx.calls.create(
            direction=Direction.OUTBOUND, plan_id=PLAN_A, plan_hash="a" * 16,
            from_number="+12025550100", to_number=new.to_number, session_json="{}",
            notification_id=notification.id,
        )  # fmt: skip
        await tx.notifications.change(notification.id, None, attempts=1)
    async with store.read() as tx:
        before = await tx.reports.report(today)
    assert (before.total.finished, before.calls.ended) == (0, 0)
    async with store.transaction() as tx:
        await tx.calls.update_status(CallStatus.IN_PROGRESS, ref=call.id, answered_by="human")
        await tx.calls.update_status(CallStatus.COMPLETED, ref=call.id)
        await tx.calls.update_status(CallStatus.COMPLETED, ref=call.id)  # a repeated callback
        await tx.notifications.finish(notification.id, NotificationStatus.DONE, outcome="confirmed")
        await tx.notifications.finish(notification.id, NotificationStatus.DONE, outcome="cancelled")
    async with store.read() as tx:
        after = await tx.reports.report(today)
    assert after.total.outcomes == {"confirmed": 1}
    assert (after.total.attempts, after.total.called) == (1, 1)
    assert (after.calls.ended, after.calls.answered, after.calls.by_person) == (1, 1, 1)


async def test_the_sms_totals_follow_delivery_reports(store: Store) -> None:
    today = Period.last_days(1, datetime.now(UTC).date())
    async with store.transaction() as tx:
        await insert_report_data(tx)
        sms = await tx.sms.create(
            direction=Direction.OUTBOUND, from_number="+12025550100", to_number="+12025550123",
            body="Hi", notification_id="n-b2", status=SmsStatus.SCHEDULED,
        )  # fmt: skip
    for status, expected in (
        (SmsStatus.SENT, (1, 0, 0)),
        (SmsStatus.DELIVERED, (1, 1, 0)),
        (SmsStatus.UNDELIVERED, (1, 1, 0)),  # a final status is not replaced
    ):
        async with store.transaction() as tx:
            await tx.sms.update_status(status, ref=sms.id)
        async with store.read() as tx:
            report = await tx.reports.report(today, ReportFilter(plan_id=PLAN_B))
        assert (report.sms.sent, report.sms.delivered, report.sms.failed) == expected
