"""CampaignService and its repository on SQLite and PostgreSQL: create, idempotency, CSV rows
with hostile cells, pause/resume/cancel, progress and the export."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from ivr.config import Settings
from ivr.dialplan.loader import PlanSet
from ivr.outbound.campaigns import (
    CampaignNotFound,
    CampaignService,
    CampaignStateError,
    IdempotencyConflict,
)
from ivr.outbound.requests import RequestError
from ivr.store import CampaignState, NotificationStatus, Store
from ivr.store.models import CAMPAIGNS, NOTIFICATIONS
from tests.conftest import DIALPLANS
from tests.store.conftest import (  # noqa: F401 - fixtures
    backend,
    database_url,
    postgres_migrated_url,
    postgres_server,
    sqlite_migrated_template,
    store,
)

VARS = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"}
HEADER = "to,name,var.clinic,when\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        provider="simulator", database_url=f"sqlite:///{tmp_path}/unused.db", dialplans=DIALPLANS,
        audio_dir=tmp_path / "audio", var_dir=tmp_path / "var", default_timezone="UTC",
        call_window="09:00-21:00", optional_call_window="10:00-20:00",
    )  # fmt: skip


@pytest.fixture
async def service(
    store: Store,  # noqa: F811
    shipped_plans: PlanSet,
    settings: Settings,
) -> CampaignService:
    return CampaignService(store, shipped_plans, settings)


def rows(*numbers: str) -> list[dict[str, object]]:
    return [{"to": number, "variables": VARS} for number in numbers]


async def test_create_from_rows_makes_one_notification_per_row(service: CampaignService) -> None:
    view, errors = await service.create(
        "November reminders", "appointment_reminder", rows("+12025550101", "+12025550102"),
        calls_per_second=2.5, window="09:30-17:00",
    )  # fmt: skip
    assert errors == []
    assert view is not None
    assert (view.name, view.plan, view.state, view.calls_per_second, view.window) == (
        "November reminders", "appointment_reminder", "active", 2.5, "09:30-17:00",
    )  # fmt: skip
    assert view.progress.total == 2
    assert view.progress.by_status == {"scheduled": 2}
    async with service.store.read() as tx:
        statement = select(NOTIFICATIONS.c.to_number, NOTIFICATIONS.c.campaign_id)
        found = (await tx.session.execute(statement)).all()
    assert sorted(found) == [("+12025550101", view.id), ("+12025550102", view.id)]
    assert await service.get(view.id) == view
    assert [v.id for v in await service.list()] == [view.id]


async def test_one_bad_row_creates_nothing_and_names_every_row(service: CampaignService) -> None:
    bad = [
        {"to": "+12025550101", "variables": VARS},
        {"to": "not a number", "variables": VARS},
        {"to": "+12025550103", "variables": {**VARS, "when": "soon"}},
        {"to": "+12025550104", "variables": VARS, "plan": "delivery_notice"},
        "just a string",
    ]
    view, errors = await service.create("bad", "appointment_reminder", bad)  # type: ignore[arg-type]
    assert view is None
    assert [(e.row, e.field) for e in errors] == [
        (2, "to"), (3, "variables.when"), (4, "plan"), (5, "row"),
    ]  # fmt: skip
    assert "E.164" in errors[0].message
    assert await service.list() == []
    async with service.store.read() as tx:
        assert await tx.notifications.count(NotificationStatus.SCHEDULED) == 0


async def test_campaign_wide_problems_raise_naming_the_field(service: CampaignService) -> None:
    with pytest.raises(RequestError) as caught:
        await service.create(" ", "no_such_plan", rows("+12025550101"), calls_per_second=0,
                             window="25:00-26:00")  # fmt: skip
    assert set(caught.value.problems) == {"name", "plan", "calls_per_second", "window"}
    # A window outside the server's calling window (09:00-21:00) could never call anyone.
    with pytest.raises(RequestError) as caught:
        await service.create("night", "appointment_reminder", rows("+12025550101"),
                             window="22:00-23:00")  # fmt: skip
    assert "never overlaps the calling window 09:00-21:00" in caught.value.problems["window"]


async def test_idempotency_same_body_same_campaign_other_body_conflicts(
    service: CampaignService,
) -> None:
    first, _ = await service.create("a", "appointment_reminder", rows("+12025550101"),
                                    idempotency_key="batch-7")  # fmt: skip
    again = await service.submit("a", "appointment_reminder", rows("+12025550101"),
                                 idempotency_key="batch-7")  # fmt: skip
    assert first is not None
    assert again.view is not None
    assert (again.view.id, again.created) == (first.id, False)
    assert again.view.progress.total == 1
    with pytest.raises(IdempotencyConflict):
        await service.create("a", "appointment_reminder", rows("+12025550102"),
                             idempotency_key="batch-7")  # fmt: skip
    assert len(await service.list()) == 1


async def test_row_idempotency_keys_must_be_new(service: CampaignService) -> None:
    keyed = [{"to": "+12025550101", "variables": VARS, "idempotency_key": "appt-1"}]
    view, errors = await service.create("first", "appointment_reminder", keyed)
    assert view is not None
    assert errors == []
    twice = keyed + [{"to": "+12025550102", "variables": VARS, "idempotency_key": "appt-2"}] * 2
    view, errors = await service.create("second", "appointment_reminder", twice)
    assert view is None
    assert [(e.row, e.field, e.message) for e in errors] == [
        (1, "idempotency_key", "already used by another notification"),
        (3, "idempotency_key", "already used by row 2"),
    ]


async def test_csv_rows_become_notifications(service: CampaignService) -> None:
    text = (
        "\ufeffto,name,var.clinic,when,earliest,category\n"
        "+1 202 555-0101,Anna,Sunrise Clinic,2026-11-24T10:00,,\n"
        "\n"
        "+12025550102,Bob,Sunrise Clinic,2026-11-24T11:00,2026-11-20T09:00,marketing\n"
    )
    view, errors = await service.create_from_csv("csv", "appointment_reminder", text)
    assert errors == []
    assert view is not None
    assert view.progress.total == 2
    async with service.store.read() as tx:
        found = {n.to_number: n for n in await tx.notifications.page()}
    assert found["+12025550101"].variables["name"] == "Anna"
    assert found["+12025550102"].category == "marketing"
    assert found["+12025550102"].not_before is not None


@pytest.mark.parametrize(
    ("line", "column", "words"),
    [
        ("=cmd|' /C calc'!A0,Anna,Clinic,2026-11-24T10:00", "to", "formula"),
        ("+12025550101,=cmd|' /C calc'!A0,Clinic,2026-11-24T10:00", "name", "formula"),
        ("+12025550101,@SUM(A1:A9),Clinic,2026-11-24T10:00", "name", "formula"),
        ("+12025550101,+cmd|x,Clinic,2026-11-24T10:00", "name", "formula"),
        ("+12025550101,<script>alert(1)</script>,Clinic,2026-11-24T10:00", "name", "markup"),
        ("+12025550101,Anna,<img src=x onerror=alert(1)>,2026-11-24T10:00", "var.clinic", "markup"),
        (f"+12025550101,{'A' * 5000},Clinic,2026-11-24T10:00", "name", "at most 1000"),
        ('+12025550101,"two\nlines",Clinic,2026-11-24T10:00', "name", "control character"),
        (",Anna,Clinic,2026-11-24T10:00", "to", "every row needs a number"),
        ("+12025550101,Anna,Clinic", "row", "3 cells, but the header has 4"),
        ("+12025550101,Anna,Clinic,next week", "when", ""),
    ],
)
async def test_hostile_csv_cells_are_row_errors(
    service: CampaignService, line: str, column: str, words: str
) -> None:
    good = "+12025550199,Zoe,Clinic,2026-11-24T10:00\n"
    view, errors = await service.create_from_csv(
        "hostile", "appointment_reminder", HEADER + good + line + "\n"
    )
    assert view is None
    [error] = errors
    assert (error.row, error.field) == (3, column)
    assert words in error.message
    assert await service.list() == []


async def test_csv_file_problems(service: CampaignService) -> None:
    async def errors_of(data: str | bytes) -> list[tuple[int, str]]:
        view, errors = await service.create_from_csv("f", "appointment_reminder", data)
        assert view is None
        return [(e.row, e.field) for e in errors]

    assert await errors_of("") == [(1, "file")]
    assert await errors_of(HEADER) == [(2, "file")]
    assert await errors_of("name,when\nAnna,2026-11-24T10:00\n") == [(1, "to")]
    assert await errors_of("to,name,nickname\n+12025550101,A,B\n") == [(1, "nickname")]
    assert await errors_of("to,name,var.name\n") == [(1, "var.name")]
    latin1 = (HEADER + "+12025550101,Jos\xe9,Clinic,2026-11-24T10:00\n").encode("latin-1")
    assert await errors_of(latin1) == [(2, "file")]


async def test_pause_resume_cancel(service: CampaignService) -> None:
    view, _ = await service.create(
        "p", "appointment_reminder", rows("+12025550101", "+12025550102")
    )
    assert view is not None
    now = datetime.now(UTC) + timedelta(days=1)  # both are due by then
    assert (await service.pause(view.id)).state == "paused"
    assert (await service.pause(view.id)).state == "paused"  # again: no change, no error
    async with service.store.transaction() as tx:
        # A paused campaign's notifications are not claimed, however due: also one that got
        # a time of its own while paused (a retry), which only the claim's filter holds back.
        await tx.session.execute(update(NOTIFICATIONS).values(next_attempt_at=datetime.now(UTC)))
        assert await tx.notifications.claim_due("w", now, 10, 30) == []
    assert (await service.resume(view.id)).state == "active"
    async with service.store.transaction() as tx:
        claimed = await tx.notifications.claim_due("w", now, 1, 30)
    assert len(claimed) == 1
    cancelled = await service.cancel(view.id)
    assert cancelled.state == "cancelled"
    # Both were pending (one leased by a worker, which then cannot move it on): both cancelled.
    assert cancelled.progress.by_status == {"cancelled": 2}
    async with service.store.transaction() as tx:
        assert not await tx.notifications.change(claimed[0].id, "w", status="in_progress")
    with pytest.raises(CampaignStateError):
        await service.resume(view.id)
    with pytest.raises(CampaignStateError):
        await service.pause(view.id)
    with pytest.raises(CampaignNotFound):
        await service.pause("nope")


async def test_done_once_every_notification_ended(service: CampaignService) -> None:
    view, _ = await service.create("d", "appointment_reminder", rows("+12025550101"))
    assert view is not None
    async with service.store.transaction() as tx:
        await tx.session.execute(
            update(NOTIFICATIONS).values(status="done", outcome="confirmed", attempts=1)
        )
    done = await service.get(view.id)
    assert done is not None
    assert (done.state, done.progress.by_outcome) == ("done", {"confirmed": 1})
    async with service.store.read() as tx:
        stored = (await tx.session.execute(select(CAMPAIGNS.c.state))).scalar_one()
    assert stored == CampaignState.ACTIVE.value


async def test_export_is_one_safe_row_per_notification(service: CampaignService) -> None:
    people = [
        {"to": "+12025550101", "variables": {**VARS, "name": "-Anna"}},
        {"to": "+12025550102", "variables": {**VARS, "name": 'Bob, "the" builder'}},
    ]
    view, _ = await service.create("e", "appointment_reminder", people)
    assert view is not None
    text = "".join([piece async for piece in service.export_csv(view.id)])
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header == [
        "id", "to", "status", "outcome", "attempts", "last_call_at", "skipped_reason",
        "var.name", "var.clinic", "var.when",
    ]  # fmt: skip
    assert [(line[1], line[2], line[4], line[7]) for line in lines] == [
        ("'+12025550101", "scheduled", "0", "'-Anna"),
        ("'+12025550102", "scheduled", "0", 'Bob, "the" builder'),
    ]
    with pytest.raises(CampaignNotFound):
        [piece async for piece in service.export_csv("nope")]


async def test_export_pages_through_every_row_in_file_order(
    service: CampaignService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.outbound.campaigns.EXPORT_PAGE", 2)
    people = [f"+1202555011{i}" for i in range(5)]
    view, _ = await service.create("paged", "appointment_reminder", rows(*people))
    assert view is not None
    pieces = [piece async for piece in service.export_csv(view.id)]
    assert len(pieces) == 3
    _, *lines = list(csv.reader(io.StringIO("".join(pieces))))
    assert [line[1] for line in lines] == ["'" + number for number in people]


async def test_a_pause_parks_next_attempt_at_and_resume_gives_it_back(
    service: CampaignService,
) -> None:
    later = "2031-01-05T10:00:00+00:00"
    people = [
        {"to": "+12025550101", "variables": VARS},
        {"to": "+12025550102", "variables": VARS, "not_before": later},
    ]
    view, _ = await service.create("parked", "appointment_reminder", people)
    assert view is not None

    async def times() -> dict[str, tuple[object, object]]:
        statement = select(
            NOTIFICATIONS.c.to_number,
            NOTIFICATIONS.c.next_attempt_at,
            NOTIFICATIONS.c.paused_next_attempt_at,
        )
        async with service.store.read() as tx:
            return {r[0]: (r[1], r[2]) for r in await tx.session.execute(statement)}

    before = await times()
    await service.pause(view.id)
    # The claims' index range (status, next_attempt_at) does not reach them any more.
    assert await times() == {n: (None, next_at) for n, (next_at, _) in before.items()}
    # A retry scheduled while paused (a call under way at the pause) keeps its own time.
    retry = datetime(2031, 2, 1, tzinfo=UTC)
    async with service.store.transaction() as tx:
        await tx.session.execute(
            update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.to_number == "+12025550101")
            .values(next_attempt_at=retry)
        )
    await service.resume(view.id)
    assert await times() == {
        "+12025550101": (retry, None),
        "+12025550102": (before["+12025550102"][0], None),
    }


class _KeyTakenMeanwhile(CampaignService):
    """Someone creates a notification with a row's idempotency key between the check and
    the insert (the race, made to happen every time)."""

    def _resolve_rows(self, *args: Any, **kwargs: Any) -> Any:
        resolved, errors = super()._resolve_rows(*args, **kwargs)
        taken = resolved[-1]
        # Its own thread and loop: this runs in a worker thread of the service's loop.
        other = threading.Thread(target=asyncio.run, args=(self._take(taken),))
        other.start()
        other.join()
        return resolved, errors

    async def _take(self, new: Any) -> None:
        async with Store.open(self.store.url) as other, other.transaction() as tx:
            await tx.notifications.create(dataclasses.replace(new, to_number="+12025550199"))


async def test_a_row_key_taken_during_creation_takes_the_campaign_back(
    store: Store,  # noqa: F811
    shipped_plans: PlanSet,
    settings: Settings,
) -> None:
    service = _KeyTakenMeanwhile(store, shipped_plans, settings)
    keyed = [
        {"to": f"+1202555010{i}", "variables": VARS, "idempotency_key": f"k{i}"} for i in range(3)
    ]
    view, errors = await service.create("raced", "appointment_reminder", keyed)
    assert view is None
    assert [(e.row, e.field) for e in errors] == [(3, "idempotency_key")]
    assert await service.list() == []
    async with store.read() as tx:
        left = (await tx.session.execute(select(NOTIFICATIONS.c.to_number))).scalars().all()
        campaigns = (await tx.session.execute(select(CAMPAIGNS.c.id))).all()
    assert (left, campaigns) == (["+12025550199"], [])


async def test_written_and_unparked_in_batches(
    service: CampaignService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.outbound.campaigns.INSERT_BATCH", 1)  # unparked 4 at a time
    people = [f"+1202555012{i}" for i in range(5)]
    view, _ = await service.create("batches", "appointment_reminder", rows(*people))
    assert view is not None
    assert (view.state, view.progress.total) == ("active", 5)
    async with service.store.transaction() as tx:
        statement = select(NOTIFICATIONS.c.paused_next_attempt_at)
        assert set((await tx.session.execute(statement)).scalars()) == {None}
        soon = datetime.now(UTC) + timedelta(minutes=1)
        assert len(await tx.notifications.claim_due("w", soon, 10, 30)) == 5
