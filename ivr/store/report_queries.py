"""Read-only queries behind the console's reports: outcomes per day, plan and campaign.

Notifications and calls are read from the daily totals that database triggers keep
(ivr/store/report_rollups.py, migration 0007): a month's report reads a few hundred rows,
whatever the number of notifications. So are the fallback SMS. Nothing here writes.

What the numbers mean (the reports page says the same):
- a notification counts on the day it *finished* (UTC), with its outcome, or its final status
  (skipped, cancelled, failed) when it has none; notifications still under way are not counted;
- reached: finished with a call answered (every outcome but ``unreached`` and ``sms_sent``);
- confirmation rate: ``confirmed`` outcomes of the reached ones;
- attempts per notification: calls placed per finished notification that was called at all;
- answer rate: outbound calls of notifications that ended answered, of those that ended
  (placed in the period; calls still ringing are not counted yet);
- SMS fallbacks: text messages sent for notifications (placed in the period), by delivery.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.models import (
    CAMPAIGNS,
    REPORT_CALL_DAYS,
    REPORT_NOTIFICATION_DAYS,
    REPORT_SMS_DAYS,
)

MAX_PERIOD_DAYS = 366
# Results that mean nobody answered: the scheduler's outcomes for a call never answered or an
# SMS alone, and the final statuses that come without an outcome. The rest reached someone.
CANCELLED_BEFORE_CALL = "cancelled_before_call"
NOT_REACHED = frozenset({"unreached", "sms_sent", "skipped", CANCELLED_BEFORE_CALL, "failed"})
CONFIRMED = "confirmed"
# Listed first, in this order, in tables and the chart; others follow alphabetically.
OUTCOME_ORDER = (
    "confirmed", "cancelled", "reschedule", "opted_out", "voicemail", "incomplete", "no_answer",
    "unreached", "sms_sent", "skipped", CANCELLED_BEFORE_CALL, "failed",
)  # fmt: skip


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``since`` to ``until``, both included."""

    since: date
    until: date

    def __post_init__(self) -> None:
        if self.until < self.since:
            raise ValueError(f"the period ends ({self.until}) before it starts ({self.since})")
        if (self.until - self.since).days + 1 > MAX_PERIOD_DAYS:
            raise ValueError(f"a period is at most {MAX_PERIOD_DAYS} days")

    @classmethod
    def last_days(cls, days: int, today: date) -> Period:
        return cls(today - timedelta(days=days - 1), today)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time(), UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.until + timedelta(days=1), time(), UTC)

    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]


@dataclass(frozen=True)
class ReportFilter:
    plan_id: str | None = None
    campaign_id: str | None = None


@dataclass
class Tally:
    """Finished notifications of one day, plan or campaign."""

    outcomes: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    called: int = 0

    @property
    def finished(self) -> int:
        return sum(self.outcomes.values())

    @property
    def reached(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome not in NOT_REACHED)

    @property
    def confirmed(self) -> int:
        return self.outcomes.get(CONFIRMED, 0)

    @property
    def confirmation_rate(self) -> float | None:
        return ratio(self.confirmed, self.reached)

    @property
    def attempts_per_notification(self) -> float | None:
        return ratio(self.attempts, self.called)

    def add(self, outcome: str, count: int, attempts: int, called: int) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count
        self.attempts += attempts
        self.called += called


@dataclass(frozen=True)
class CallTally:
    ended: int
    answered: int
    by_person: int

    @property
    def answer_rate(self) -> float | None:
        return ratio(self.answered, self.ended)


@dataclass(frozen=True)
class SmsTally:
    sent: int
    delivered: int
    failed: int


@dataclass
class Report:
    period: Period
    total: Tally
    by_day: dict[date, Tally]
    by_plan: dict[str, Tally]
    by_campaign: dict[str | None, Tally]
    calls: CallTally
    calls_by_plan: dict[str, CallTally]
    sms: SmsTally

    def outcomes(self) -> list[str]:
        """Every outcome that occurs, in display order."""
        return order_outcomes(self.total.outcomes)


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def order_outcomes(outcomes: Iterable[str]) -> list[str]:
    rank = {name: n for n, name in enumerate(OUTCOME_ORDER)}
    return sorted(set(outcomes), key=lambda o: (rank.get(o, len(rank)), o))


def result_of(outcome: Any, status: Any) -> str:
    """The outcome, else the final status. A notification cancelled before its call is told
    apart from the plans' own ``cancelled`` outcome (the caller cancelled the appointment)."""
    if outcome:
        return str(outcome)
    return CANCELLED_BEFORE_CALL if status == "cancelled" else str(status)


class ReportQueries:
    """The reports' queries on one read transaction's session (``tx.reports``)."""

    def __init__(self, session: AsyncSession, backend: str) -> None:
        self._session = session
        self._backend = backend

    async def report(self, period: Period, where: ReportFilter | None = None) -> Report:
        where = where or ReportFilter()
        total, by_day, by_plan, by_campaign = await self._notifications(period, where)
        calls, calls_by_plan = await self._calls(period, where)
        return Report(
            period=period,
            total=total,
            by_day={day: by_day.get(day, Tally()) for day in period.days()},
            by_plan=dict(sorted(by_plan.items())),
            by_campaign=by_campaign,
            calls=calls,
            calls_by_plan=calls_by_plan,
            sms=await self._sms(period, where),
        )

    async def campaign_names(self, ids: Iterable[str]) -> dict[str, str]:
        """The names of the campaigns ``ids`` (those that exist)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        statement = select(CAMPAIGNS.c.id, CAMPAIGNS.c.name).where(CAMPAIGNS.c.id.in_(wanted))
        return {str(row.id): str(row.name) for row in await self._session.execute(statement)}

    async def _notifications(
        self, period: Period, where: ReportFilter
    ) -> tuple[Tally, dict[date, Tally], dict[str, Tally], dict[str | None, Tally]]:
        """The period's daily totals (report_rollups.py) summed by day, plan and campaign.

        Summed by the database, one GROUP BY each: a month holds a few thousand total rows,
        and their sums per day, plan or campaign a few hundred.
        """
        r = REPORT_NOTIFICATION_DAYS.c
        by: dict[str, dict[Any, Tally]] = {}
        for key in (r.day, r.plan_id, r.campaign_id):
            statement = (
                select(
                    key, r.result, func.sum(r.finished), func.sum(r.attempts), func.sum(r.called)
                )
                .where(r.day >= period.since.isoformat(), r.day <= period.until.isoformat())
                .group_by(key, r.result)
            )
            if where.plan_id is not None:
                statement = statement.where(r.plan_id == where.plan_id)
            if where.campaign_id is not None:
                statement = statement.where(r.campaign_id == where.campaign_id)
            tallies: dict[Any, Tally] = defaultdict(Tally)
            for row in await self._session.execute(statement):
                tallies[row[0]].add(str(row[1]), int(row[2]), int(row[3]), int(row[4]))
            by[key.name] = tallies
        total = Tally()
        for tally in by["plan_id"].values():
            for outcome, count in tally.outcomes.items():
                total.add(outcome, count, 0, 0)
            total.attempts += tally.attempts
            total.called += tally.called
        by_day = {date.fromisoformat(day): tally for day, tally in by["day"].items()}
        by_campaign = {(cid or None): tally for cid, tally in by["campaign_id"].items()}
        return total, by_day, dict(by["plan_id"]), by_campaign

    async def _calls(
        self, period: Period, where: ReportFilter
    ) -> tuple[CallTally, dict[str, CallTally]]:
        r = REPORT_CALL_DAYS.c
        statement = (
            select(r.plan_id, func.sum(r.ended), func.sum(r.answered), func.sum(r.by_person))
            .where(r.day >= period.since.isoformat(), r.day <= period.until.isoformat())
            .group_by(r.plan_id)
        )
        if where.plan_id is not None:
            statement = statement.where(r.plan_id == where.plan_id)
        if where.campaign_id is not None:
            statement = statement.where(r.campaign_id == where.campaign_id)
        by_plan = {
            str(row[0]): CallTally(int(row[1]), int(row[2]), int(row[3]))
            for row in (await self._session.execute(statement)).all()
        }
        total = CallTally(
            sum(t.ended for t in by_plan.values()),
            sum(t.answered for t in by_plan.values()),
            sum(t.by_person for t in by_plan.values()),
        )
        return total, dict(sorted(by_plan.items()))

    async def _sms(self, period: Period, where: ReportFilter) -> SmsTally:
        r = REPORT_SMS_DAYS.c
        statement = select(
            func.coalesce(func.sum(r.sent), 0),
            func.coalesce(func.sum(r.delivered), 0),
            func.coalesce(func.sum(r.failed), 0),
        ).where(r.day >= period.since.isoformat(), r.day <= period.until.isoformat())
        if where.plan_id is not None:
            statement = statement.where(r.plan_id == where.plan_id)
        if where.campaign_id is not None:
            statement = statement.where(r.campaign_id == where.campaign_id)
        row = (await self._session.execute(statement)).one()
        return SmsTally(sent=int(row[0]), delivered=int(row[1]), failed=int(row[2]))
