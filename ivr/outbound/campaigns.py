"""Campaigns: a named batch of notifications, created at once, paused, paced and reported on.

Every row is validated exactly as ``POST /api/v1/notifications`` validates a request
(``requests.resolve``), and a campaign is all or nothing: with any row error nothing is
created and every error comes back, naming its row and field. Campaign-wide problems (name,
plan, window, calls_per_second, too many rows) raise ``RequestError``; the same
idempotency key with another body raises ``IdempotencyConflict``.

State: ``active`` (dialing), ``paused`` (the scheduler places no new call; calls under way
finish), ``cancelled`` (every notification not yet final and not on a call is cancelled at
once; one whose call was under way ends cancelled instead of being retried) and ``done``,
shown once every notification has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ivr.config import Settings
from ivr.dialplan.loader import PlanSet
from ivr.outbound import campaign_csv
from ivr.outbound.campaign_csv import MAX_ROWS, RowError
from ivr.outbound.campaign_views import (
    MAX_CAMPAIGN_CPS,
    CampaignNotFound,
    CampaignProgress,
    CampaignRequest,
    CampaignStateError,
    CampaignView,
    Creation,
    IdempotencyConflict,
    campaign_view,
)
from ivr.outbound.policy import CallWindow, calling_window, parse_call_window
from ivr.outbound.requests import (
    NotificationRequest,
    RequestError,
    e164,
    request_error,
    resolve,
)
from ivr.store import (
    CampaignState,
    NewCampaign,
    NewNotification,
    Store,
)

__all__ = [
    "CampaignNotFound",
    "CampaignProgress",
    "CampaignRequest",
    "CampaignService",
    "CampaignStateError",
    "CampaignView",
    "Creation",
    "IdempotencyConflict",
    "RowError",
]

# Rows per INSERT while creating (all in one transaction: a campaign is all or nothing).
INSERT_BATCH = 500
# Notifications per page of an export (one read transaction each, none held across pages).
EXPORT_PAGE = 1000


def _request_hash(**parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _RowConflict(Exception):
    """A row's idempotency key was created by someone else while this campaign was written."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors


class CampaignService:
    def __init__(self, store: Store, plans: PlanSet, settings: Settings) -> None:
        self.store = store
        self.plans = plans
        self.settings = settings

    # -- create -------------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        plan: str,
        rows: list[dict[str, Any]],
        *,
        calls_per_second: float | None = None,
        window: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[CampaignView | None, list[RowError]]:
        """The new campaign and no errors, or None and every row error (nothing created)."""
        done = await self.submit(
            name, plan, rows, calls_per_second=calls_per_second, window=window,
            idempotency_key=idempotency_key,
        )  # fmt: skip
        return done.view, done.errors

    async def create_from_csv(
        self,
        name: str,
        plan: str,
        csv_text: str | bytes,
        *,
        calls_per_second: float | None = None,
        window: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[CampaignView | None, list[RowError]]:
        """As ``create``, from a CSV file's text (or its bytes, refused unless UTF-8)."""
        done = await self.submit_csv(
            name, plan, csv_text, calls_per_second=calls_per_second, window=window,
            idempotency_key=idempotency_key,
        )  # fmt: skip
        return done.view, done.errors

    async def submit(
        self,
        name: str,
        plan: str,
        rows: Sequence[Any],
        *,
        calls_per_second: float | None = None,
        window: str | None = None,
        idempotency_key: str | None = None,
    ) -> Creation:
        """``create``, also telling a new campaign from an idempotent replay (201 or 200)."""
        settings = {"calls_per_second": calls_per_second, "window": window}
        digest = _request_hash(name=name, plan=plan, rows=list(rows), **settings)
        if (replay := await self._replay(idempotency_key, digest)) is not None:
            return replay
        self._check_campaign(name, plan, len(rows), calls_per_second, window)
        numbered = list(enumerate(rows, start=1))
        return await self._create(
            name, plan, numbered, None, calls_per_second, window, idempotency_key, digest
        )

    async def submit_csv(
        self,
        name: str,
        plan: str,
        csv_text: str | bytes,
        *,
        calls_per_second: float | None = None,
        window: str | None = None,
        idempotency_key: str | None = None,
    ) -> Creation:
        raw = csv_text.encode() if isinstance(csv_text, str) else csv_text
        digest = _request_hash(
            name=name, plan=plan, csv=hashlib.sha256(raw).hexdigest(),
            calls_per_second=calls_per_second, window=window,
        )  # fmt: skip
        if (replay := await self._replay(idempotency_key, digest)) is not None:
            return replay
        self._check_campaign(name, plan, 1, calls_per_second, window)
        text, error = campaign_csv.decode(csv_text)
        if error is not None or text is None:
            return Creation(None, [error] if error else [], False)
        variables = list(self.plans.plans[plan].variables)
        # Parsing 100,000 rows takes seconds of CPU: not on the event loop.
        parsed = await asyncio.to_thread(campaign_csv.parse, text, variables)
        # A bad header or an unreadable file stops there; bad cells do not hide the other
        # rows' errors, which are checked as well.
        if any(e.row == 1 or e.field == "file" for e in parsed.errors):
            return Creation(None, parsed.errors, False)
        return await self._create(
            name, plan, parsed.rows, parsed, calls_per_second, window, idempotency_key, digest
        )

    async def _replay(self, key: str | None, digest: str) -> Creation | None:
        if key is None:
            return None
        async with self.store.read() as tx:
            existing = await tx.campaigns.get_by_idempotency_key(key)
            if existing is None:
                return None
            view = campaign_view(existing, (await tx.campaigns.counts([existing.id]))[existing.id])
        if existing.state is CampaignState.CREATING:
            raise IdempotencyConflict(key, view, "is still being created: try again shortly")
        if existing.request_hash != digest:
            raise IdempotencyConflict(key, view)
        return Creation(view, [], False)

    def _check_campaign(
        self, name: str, plan: str, rows: int, cps: float | None, window: str | None
    ) -> None:
        problems: dict[str, str] = {}
        if not name.strip() or len(name) > 200:
            problems["name"] = "1 to 200 characters, not only spaces"
        found = self.plans.plans.get(plan)
        if found is None or found.direction != "outbound":
            known = ", ".join(
                sorted(p.id for p in self.plans.plans.values() if p.direction == "outbound")
            )
            problems["plan"] = f"no outbound plan {plan!r} (known: {known})"
        if not 1 <= rows <= MAX_ROWS:
            problems["rows"] = f"{rows} rows; a campaign has 1 to {MAX_ROWS}"
        if cps is not None and not 0 < cps <= MAX_CAMPAIGN_CPS:
            problems["calls_per_second"] = f"must be above 0 and at most {MAX_CAMPAIGN_CPS:g}"
        if window is not None:
            try:
                parse_call_window(window)
            except ValueError as exc:
                problems["window"] = str(exc)
        if problems:
            raise RequestError(problems)

    def _check_window(self, window: CallWindow, notifications: list[NewNotification]) -> None:
        policy = self.settings.policy()
        for category in sorted({n.category for n in notifications}):
            allowed = calling_window(category, policy)
            if not window.minutes & allowed.minutes:
                raise RequestError(
                    {
                        "window": f"{window} never overlaps the calling window {allowed} of "
                        f"{category} notifications: no call could ever be placed"
                    }
                )

    async def _create(
        self,
        name: str,
        plan: str,
        rows: list[tuple[int, Any]],
        parsed: campaign_csv.ParsedCsv | None,
        cps: float | None,
        window_text: str | None,
        key: str | None,
        digest: str,
    ) -> Creation:
        now = datetime.now(UTC)
        numbers = {}
        for _, row in rows:
            to = row.get("to") if isinstance(row, dict) else None
            if isinstance(to, str):
                with contextlib.suppress(RequestError):  # resolve() names the bad number
                    numbers[to] = e164(to)
        async with self.store.read() as tx:
            zones = await tx.contacts.timezones(numbers.values())
            row_keys = [r.get("idempotency_key") for _, r in rows if isinstance(r, dict)]
            taken = await tx.notifications.existing_idempotency_keys(
                [k for k in row_keys if isinstance(k, str)]
            )
        resolved, errors = await asyncio.to_thread(
            self._resolve_rows, plan, rows, parsed, numbers, zones, taken, now
        )
        if parsed is not None and parsed.errors:
            errors = sorted(parsed.errors + errors, key=lambda e: e.row)
        if errors:
            return Creation(None, errors, False)
        window = parse_call_window(window_text) if window_text is not None else None
        if window is not None:
            self._check_window(window, resolved)
        new = NewCampaign(
            name=name.strip(), plan_id=plan, calls_per_second=cps,
            window_start=window.start if window else None,
            window_end=window.end if window else None, idempotency_key=key, request_hash=digest,
        )  # fmt: skip
        async with self.store.transaction() as tx:
            record, created = await tx.campaigns.create(new, CampaignState.CREATING)
        if not created:  # the same key was created meanwhile: a replay after all
            replay = await self._replay(key, digest)
            assert replay is not None
            return replay
        try:
            await self._insert(record.id, resolved, rows)
        except BaseException as exc:
            # Nothing of it was visible or dialable: take it back whole.
            async with self.store.transaction() as tx:
                await tx.campaigns.delete_unstarted(record.id)
            if isinstance(exc, _RowConflict):
                return Creation(None, exc.errors, False)
            raise
        # Unparked page by page while still invisible (nobody can pause it meanwhile), then
        # made active in a commit of its own: no transaction holds the writer for long.
        after: tuple[datetime, str] | None = None
        while True:
            async with self.store.transaction() as tx:
                after = await tx.campaigns.release_held_page(record.id, after, INSERT_BATCH * 4)
            if after is None:
                break
        async with self.store.transaction() as tx:
            await tx.campaigns.set_state(
                record.id, CampaignState.ACTIVE, from_states={CampaignState.CREATING}
            )
            active = await tx.campaigns.get(record.id)
            counts = await tx.campaigns.counts([record.id])
        assert active is not None
        return Creation(campaign_view(active, counts[record.id]), [], True)

    async def _insert(
        self, campaign_id: str, resolved: list[NewNotification], rows: list[tuple[int, Any]]
    ) -> None:
        """Write the notifications parked, a transaction per batch.

        One transaction for 100,000 rows held SQLite's writer lock for 25 s, and every webhook
        of the calls under way waited for it; between batches they go first.
        """
        news = [dataclasses.replace(n, campaign_id=campaign_id) for n in resolved]
        for start in range(0, len(news), INSERT_BATCH):
            async with self.store.transaction() as tx:
                created = await tx.notifications.create_many(
                    news[start : start + INSERT_BATCH], parked=True
                )
            lost = [
                RowError(
                    rows[start + i][0], "idempotency_key", "already used by another notification"
                )
                for i, ok in enumerate(created)
                if not ok
            ]
            if lost:
                raise _RowConflict(lost)

    def _resolve_rows(
        self,
        plan: str,
        rows: list[tuple[int, Any]],
        parsed: campaign_csv.ParsedCsv | None,
        numbers: dict[str, str],
        zones: dict[str, str | None],
        taken: set[str],
        now: datetime,
    ) -> tuple[list[NewNotification], list[RowError]]:
        """Each row through the notifications API's validation (runs in a thread)."""
        settings = self.settings
        plan_variables = settings.plan_variables.get(plan, {})
        resolved: list[NewNotification] = []
        errors: list[RowError] = []
        seen_keys: dict[str, int] = {}

        def column(request_field: str) -> str:
            return parsed.column_of(request_field) if parsed is not None else request_field

        for number, row in rows:
            if not isinstance(row, dict):
                errors.append(RowError(number, "row", "must be an object: {to, variables, ...}"))
                continue
            if "plan" in row:
                errors.append(RowError(number, "plan", "is set once for the whole campaign"))
                continue
            try:
                request = NotificationRequest.model_validate({**row, "plan": plan})
            except ValidationError as exc:
                problems = request_error(exc).problems
                errors += [RowError(number, column(f), m) for f, m in problems.items()]
                continue
            key = request.idempotency_key
            if key is not None and (key in taken or key in seen_keys):
                where = f"row {seen_keys[key]}" if key in seen_keys else "another notification"
                errors.append(
                    RowError(number, column("idempotency_key"), f"already used by {where}")
                )
                continue
            try:
                done = resolve(
                    request, self.plans, settings.default_timezone,
                    zones.get(numbers.get(request.to, "")), plan_variables, now,
                )  # fmt: skip
            except RequestError as exc:
                errors += [RowError(number, column(f), m) for f, m in exc.problems.items()]
                continue
            if key is not None:
                seen_keys[key] = number
            resolved.append(done.notification)
        return resolved, errors

    # -- read ---------------------------------------------------------------------------------

    async def list(self, *, offset: int = 0, limit: int = 50) -> list[CampaignView]:
        """Newest first."""
        async with self.store.read() as tx:
            records = await tx.campaigns.page(offset=offset, limit=limit)
            counts = await tx.campaigns.counts([r.id for r in records])
        return [campaign_view(r, counts[r.id]) for r in records]

    async def count(self) -> int:
        async with self.store.read() as tx:
            return await tx.campaigns.count()

    async def get(self, campaign_id: str) -> CampaignView | None:
        async with self.store.read() as tx:
            record = await tx.campaigns.get(campaign_id)
            if record is None or record.state is CampaignState.CREATING:
                return None
            counts = await tx.campaigns.counts([record.id])
        return campaign_view(record, counts[record.id])

    # -- pause, resume, cancel ----------------------------------------------------------------

    async def pause(self, campaign_id: str) -> CampaignView:
        """No new calls from now on; calls under way finish. Pausing a paused one is a no-op."""
        return await self._move(campaign_id, CampaignState.PAUSED, {CampaignState.ACTIVE})

    async def resume(self, campaign_id: str) -> CampaignView:
        """Dial again (what fell due while paused goes first). Resuming an active one: no-op."""
        return await self._move(campaign_id, CampaignState.ACTIVE, {CampaignState.PAUSED})

    async def cancel(self, campaign_id: str) -> CampaignView:
        """Cancel every pending notification; calls under way finish, none is placed later."""
        return await self._move(
            campaign_id, CampaignState.CANCELLED, {CampaignState.ACTIVE, CampaignState.PAUSED}
        )

    async def _move(
        self, campaign_id: str, state: CampaignState, allowed: set[CampaignState]
    ) -> CampaignView:
        async with self.store.transaction() as tx:
            moved = await tx.campaigns.set_state(campaign_id, state, from_states=allowed)
            if moved and state is CampaignState.PAUSED:
                await tx.campaigns.hold_pending(campaign_id)
            elif moved and state is CampaignState.ACTIVE:
                await tx.campaigns.release_held(campaign_id)
            elif moved and state is CampaignState.CANCELLED:
                await tx.campaigns.cancel_pending(campaign_id)
            record = await tx.campaigns.get(campaign_id)
            if record is None or record.state is CampaignState.CREATING:
                raise CampaignNotFound(campaign_id)
            view = campaign_view(record, (await tx.campaigns.counts([record.id]))[record.id])
        if not moved and record.state is not state:
            verb = {"paused": "pause", "active": "resume", "cancelled": "cancel"}[state.value]
            raise CampaignStateError(
                f"campaign {campaign_id} is {record.state.value}: it cannot {verb}", view
            )
        return view

    # -- export -------------------------------------------------------------------------------

    async def export_csv(self, campaign_id: str) -> AsyncIterator[str]:
        """The results as CSV text, a header then one row per notification, in pieces.

        Raises CampaignNotFound (on the first piece) for an unknown campaign.
        """
        async with self.store.read() as tx:
            record = await tx.campaigns.get(campaign_id)
        if record is None or record.state is CampaignState.CREATING:
            raise CampaignNotFound(campaign_id)
        plan = self.plans.plans.get(record.plan_id)
        variables = list(plan.variables) if plan is not None else None
        after: tuple[datetime, str] | None = None
        first = True
        while True:
            async with self.store.read() as tx:
                page = await tx.campaigns.export_page(campaign_id, after, EXPORT_PAGE)
            if variables is None:  # the plan is gone: the variables the rows have
                variables = sorted({name for row in page for name in row.variables})
            lines: list[list[Any]] = []
            if first:
                lines.append(
                    ["id", "to", "status", "outcome", "attempts", "last_call_at", "skipped_reason"]
                    + [f"var.{name}" for name in variables]
                )
                first = False
            for row in page:
                last = row.last_call_at.astimezone(UTC).isoformat() if row.last_call_at else ""
                lines.append(
                    [row.id, row.to_number, row.status, row.outcome or "", row.attempts, last,
                     row.skipped_reason or ""]
                    + [_cell(row.variables.get(name)) for name in variables]
                )  # fmt: skip
            if lines:
                yield campaign_csv.csv_lines(lines)
            if len(page) < EXPORT_PAGE:
                return
            after = (page[-1].created_at, page[-1].id)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)
