"""Console pages: reports over a chosen period (outcomes per day, plan and campaign; rates).

The page is rendered from one report (ivr/store/report_queries.py: a few GROUP BY queries
over covering indexes). The chart's data goes into the canvas's ``data-chart`` attribute as
JSON (escaped like any attribute value; no inline script under the CSP) and reports.js draws
it with Chart.js. ``/console/reports.json`` answers the same report as JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from ivr.store.report_queries import (
    MAX_PERIOD_DAYS,
    CallTally,
    Period,
    Report,
    ReportFilter,
    Tally,
)
from ivr.web.console.render import render
from ivr.web.keys import SERVICES

PRESETS = (1, 7, 30, 90)
DEFAULT_DAYS = 7


class PeriodError(ValueError):
    pass


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _date(text: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise PeriodError(f"{name}: {text[:20]!r} is not a date like 2026-12-03") from exc


def period_of(query: Any) -> tuple[Period, int | None]:
    """The period a query string asks for, and the preset (days) it matches, if any."""
    since, until, days = query.get("since", ""), query.get("until", ""), query.get("days", "")
    if since or until:
        end = _date(until, "until") if until else today()
        start = _date(since, "since") if since else end - dt.timedelta(days=DEFAULT_DAYS - 1)
        try:
            return Period(start, end), None
        except ValueError as exc:
            raise PeriodError(str(exc)) from exc
    if days:
        if not days.isdigit() or not 1 <= int(days) <= MAX_PERIOD_DAYS:
            raise PeriodError(f"days: a whole number from 1 to {MAX_PERIOD_DAYS}")
        count = int(days)
    else:
        count = DEFAULT_DAYS
    return Period.last_days(count, today()), count


def filter_of(query: Any) -> ReportFilter:
    return ReportFilter(
        plan_id=query.get("plan") or None, campaign_id=query.get("campaign") or None
    )


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "finished": tally.finished,
        "reached": tally.reached,
        "confirmed": tally.confirmed,
        "confirmation_rate": _rate(tally.confirmation_rate),
        "attempts_per_notification": _rate(tally.attempts_per_notification),
        "outcomes": tally.outcomes,
    }


def calls_json(calls: CallTally) -> dict[str, Any]:
    return {
        "ended": calls.ended,
        "answered": calls.answered,
        "answered_by_person": calls.by_person,
        "answer_rate": _rate(calls.answer_rate),
    }


def chart_json(report: Report) -> dict[str, Any]:
    """Chart.js's data: a stacked bar per outcome, one bar per day."""
    return {
        "labels": [day.isoformat() for day in report.by_day],
        "datasets": [
            {"label": outcome, "data": [t.outcomes.get(outcome, 0) for t in report.by_day.values()]}
            for outcome in report.outcomes()
        ],
    }


def report_json(report: Report, names: dict[str, str]) -> dict[str, Any]:
    return {
        "since": report.period.since.isoformat(),
        "until": report.period.until.isoformat(),
        "total": tally_json(report.total),
        "calls": calls_json(report.calls),
        "sms": {
            "sent": report.sms.sent,
            "delivered": report.sms.delivered,
            "failed": report.sms.failed,
        },
        "by_day": {day.isoformat(): tally_json(t) for day, t in report.by_day.items()},
        "by_plan": {
            plan: {**tally_json(t), "calls": calls_json(report.calls_by_plan.get(plan, NO_CALLS))}
            for plan, t in report.by_plan.items()
        },
        "by_campaign": [
            {"id": cid, "name": names.get(cid, cid) if cid else None, **tally_json(t)}
            for cid, t in report.by_campaign.items()
        ],
    }


NO_CALLS = CallTally(0, 0, 0)


async def _report(request: web.Request) -> tuple[Report, int | None, ReportFilter, dict[str, str]]:
    try:
        period, preset = period_of(request.query)
    except PeriodError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    where = filter_of(request.query)
    async with request.config_dict[SERVICES].store.read() as tx:
        report = await tx.reports.report(period, where)
        ids = [cid for cid in report.by_campaign if cid]
        names = await tx.reports.campaign_names(
            [*ids, *([where.campaign_id] if where.campaign_id else [])]
        )
    return report, preset, where, names


def _campaign_rows(report: Report, names: dict[str, str]) -> list[tuple[str | None, str, Tally]]:
    """The campaigns by how many notifications finished, those outside any campaign last."""
    rows = [
        (cid, names.get(cid, cid) if cid else "(no campaign)", tally)
        for cid, tally in report.by_campaign.items()
    ]
    return sorted(rows, key=lambda row: (row[0] is None, -row[2].finished, row[1]))


async def index(request: web.Request) -> web.StreamResponse:
    try:
        report, preset, where, names = await _report(request)
    except web.HTTPBadRequest as exc:
        period = Period.last_days(DEFAULT_DAYS, today())
        return render(
            request, "reports.html", status=400, error=exc.text, report=None, period=period,
            preset=None, where=ReportFilter(), plans=[], campaigns=[], chart={}, presets=PRESETS,
            names={}, no_calls=NO_CALLS,
        )  # fmt: skip
    services = request.config_dict[SERVICES]
    plans = sorted({*services.plans.plans, *report.by_plan})
    return render(
        request, "reports.html", error=None, report=report, period=report.period,
        preset=preset, where=where, plans=plans, campaigns=_campaign_rows(report, names),
        chart=chart_json(report), presets=PRESETS, names=names, no_calls=NO_CALLS,
    )  # fmt: skip


async def data(request: web.Request) -> web.StreamResponse:
    report, _preset, _where, names = await _report(request)
    return web.json_response(report_json(report, names))


def routes() -> list[web.RouteDef]:
    return [web.get("/reports", index), web.get("/reports.json", data)]
