"""Campaigns through the real scheduler and the simulator over real HTTP (SQLite).

The app runs without its background scheduler; the test drives ``Scheduler.tick`` itself,
so "nothing was dialed while paused" is a fact about ticks that ran, not about timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer
from sqlalchemy import select, update

from ivr.config import Settings
from ivr.outbound.campaign_dialing import next_in_windows
from ivr.outbound.policy import parse_call_window
from ivr.simulation.scenario import Turn
from ivr.store.models import CALLS, NOTIFICATIONS
from ivr.telephony.simulator import Persona, Simulator
from ivr.web.app import OUTBOUND, SIMULATOR, AppParts, Outbound, create_app
from tests.conftest import DIALPLANS, FSDD

TOKEN = "campaign-dialing-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VARS = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2031-11-24T10:00"}


class Rig:
    def __init__(self, server: TestServer) -> None:
        self.server = server

    @property
    def outbound(self) -> Outbound:
        return self.server.app[OUTBOUND]

    @property
    def sim(self) -> Simulator:
        return self.server.app[SIMULATOR]

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.server.make_url(f"/api/v1/campaigns{path}")
        async with (
            aiohttp.ClientSession(headers=AUTH) as http,
            http.request(method, url, **kwargs) as response,
        ):
            assert response.status in (200, 201), await response.text()
            return await response.json()

    async def create(self, name: str, numbers: list[str], **fields: Any) -> dict[str, Any]:
        rows = [{"to": n, "variables": VARS, "timezone": "UTC"} for n in numbers]
        body = {"name": name, "plan": "appointment_reminder", "rows": rows, **fields}
        created: dict[str, Any] = await self.api("POST", "", json=body)
        return created

    async def drive(self, until: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
        """Run scheduler rounds until ``until`` holds (the deadline is only a safety net)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not await until():
            assert asyncio.get_running_loop().time() < deadline, "the campaign did not settle"
            await self.outbound.scheduler.tick()
            await asyncio.sleep(0.05)

    async def state(self, campaign_id: str) -> dict[str, Any]:
        view: dict[str, Any] = await self.api("GET", f"/{campaign_id}")
        return view

    async def ended(self, campaign_id: str) -> bool:
        return (await self.state(campaign_id))["state"] == "done"

    def called(self, *numbers: str) -> list[str]:
        return sorted(c.to for c in self.sim.calls.values() if c.to in numbers)


@pytest.fixture
async def rig(tmp_path: Path, aiohttp_server: AiohttpServer) -> Rig:
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="simulator", public_url=url, database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS, audio_dir=tmp_path / "audio", var_dir=tmp_path / "var",
        call_window="00:00-24:00", optional_call_window="00:00-24:00", calls_per_second=50,
        default_timezone="UTC", api_token=TOKEN,
    )  # fmt: skip
    parts = AppParts(simulator_audio=[FSDD], background=False, warm_up=False)
    return Rig(await aiohttp_server(create_app(settings, url, parts), port=port))


def confirms() -> Persona:
    return Persona.person(Turn(press="1"))


async def test_a_paused_campaign_places_no_call_while_another_goes(rig: Rig) -> None:
    paused_numbers = ["+12025550101", "+12025550102"]
    going_numbers = ["+12025550201", "+12025550202"]
    for number in paused_numbers + going_numbers:
        rig.sim.expect(number, confirms())
    paused = await rig.create("paused", paused_numbers)
    going = await rig.create("going", going_numbers)
    assert (await rig.api("POST", f"/{paused['id']}/pause"))["state"] == "paused"

    await rig.drive(lambda: rig.ended(going["id"]))
    assert rig.called(*going_numbers) == going_numbers
    assert rig.called(*paused_numbers) == []
    held = await rig.state(paused["id"])
    assert (held["state"], held["progress"]["by_status"]) == ("paused", {"scheduled": 2})
    assert (await rig.state(going["id"]))["progress"]["by_outcome"] == {"confirmed": 2}

    assert (await rig.api("POST", f"/{paused['id']}/resume"))["state"] == "active"
    await rig.drive(lambda: rig.ended(paused["id"]))
    assert rig.called(*paused_numbers) == paused_numbers  # once each
    assert (await rig.state(paused["id"]))["progress"]["by_outcome"] == {"confirmed": 2}


async def test_a_call_under_way_finishes_when_its_campaign_is_paused(rig: Rig) -> None:
    rig.sim.expect("+12025550301", confirms())
    created = await rig.create("one", ["+12025550301"])
    await rig.drive(lambda: _has_calls(rig, 1))  # dialed: the call is under way
    await rig.api("POST", f"/{created['id']}/pause")
    await rig.drive(lambda: rig.ended(created["id"]))
    view = await rig.state(created["id"])
    assert view["progress"]["by_outcome"] == {"confirmed": 1}


async def _has_calls(rig: Rig, count: int) -> bool:
    return len(rig.sim.calls) >= count


async def test_cancel_cancels_what_is_pending_and_nothing_is_dialed_later(rig: Rig) -> None:
    rig.sim.expect("+12025550401", Persona.nobody("no-answer"), confirms())
    rig.sim.expect("+12025550402", confirms())
    later = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()
    rows = [
        {"to": "+12025550401", "variables": VARS, "attempts": {"max": 3, "retry_after": "1s"}},
        {"to": "+12025550402", "variables": VARS},
        {"to": "+12025550403", "variables": VARS, "not_before": later, "timezone": "UTC"},
    ]
    body = {"name": "cancel me", "plan": "appointment_reminder", "rows": rows}
    created = await rig.api("POST", "", json=body)

    async def retry_pending() -> bool:
        by_status = (await rig.state(created["id"]))["progress"]["by_status"]
        first_call_ended = len([c for c in rig.sim.calls.values() if c.status != "queued"]) >= 1
        return by_status.get("done") == 1 and by_status.get("scheduled") == 2 and first_call_ended

    await rig.drive(retry_pending)
    cancelled = await rig.api("POST", f"/{created['id']}/cancel")
    assert cancelled["state"] == "cancelled"
    assert cancelled["progress"]["by_status"] == {"done": 1, "cancelled": 2}
    for _ in range(10):
        await rig.outbound.scheduler.tick()
    assert rig.called("+12025550401", "+12025550402", "+12025550403") == [
        "+12025550401", "+12025550402",
    ]  # fmt: skip


async def test_a_retry_after_the_cancel_ends_cancelled_without_a_call(rig: Rig) -> None:
    # A call under way at the cancel may end unreached and schedule a retry afterwards.
    created = await rig.create("late retry", ["+12025550501"])
    await rig.api("POST", f"/{created['id']}/cancel")
    store = rig.outbound.campaigns.store
    async with store.transaction() as tx:
        await tx.session.execute(
            update(NOTIFICATIONS).values(
                status="scheduled", attempts=1, next_attempt_at=datetime.now(UTC)
            )
        )
    await rig.outbound.scheduler.tick()
    async with store.read() as tx:
        status = (await tx.session.execute(select(NOTIFICATIONS.c.status))).scalar_one()
        calls = (await tx.session.execute(select(CALLS.c.id))).all()
    assert (status, calls) == ("cancelled", [])
    assert rig.sim.calls == {}


async def test_calls_per_second_spaces_the_dials(rig: Rig) -> None:
    numbers = [f"+120255506{i:02d}" for i in range(4)]
    for number in numbers:
        rig.sim.expect(number, confirms())
    created = await rig.create("paced", numbers, calls_per_second=2)
    await rig.drive(lambda: rig.ended(created["id"]))
    assert rig.called(*numbers) == numbers
    async with rig.outbound.campaigns.store.read() as tx:
        recorded = [row[0] for row in await tx.session.execute(select(CALLS.c.created_at))]
    first_slot = min(recorded)
    # Slots 0.5 s apart, and no dial request leaves before its slot: the fourth left at
    # least 1.5 s after the first slot (a loaded machine only makes it later).
    last_request = max(c.created for c in rig.sim.calls.values())
    assert (last_request - first_slot).total_seconds() >= 1.45


async def test_outside_the_campaign_window_nothing_is_dialed_until_it_opens(rig: Rig) -> None:
    now = datetime.now(UTC)
    start = now + timedelta(hours=6)
    window = f"{start:%H:%M}-{start + timedelta(hours=1):%H:%M}"
    created = await rig.create("windowed", ["+12025550701"], window=window)
    for _ in range(3):
        await rig.outbound.scheduler.tick()
    assert rig.sim.calls == {}
    async with rig.outbound.campaigns.store.read() as tx:
        [n] = await tx.notifications.page()
    assert n.next_attempt_at is not None
    assert n.next_attempt_at == start.replace(second=0, microsecond=0)
    assert (await rig.state(created["id"]))["progress"]["by_status"] == {"scheduled": 1}


@pytest.mark.parametrize(
    ("windows", "at", "expected"),
    [
        (["08:00-12:00", "11:00-20:00"], "07:00", "11:00"),
        (["20:00-02:00", "01:00-21:00"], "03:00", "20:00"),
        (["20:00-02:00", "01:00-21:00"], "21:30", "01:00"),
        (["09:00-17:00", "00:00-24:00"], "10:15", "10:15"),
    ],
)
def test_the_next_moment_inside_both_windows(windows: list[str], at: str, expected: str) -> None:
    tz = ZoneInfo("Europe/Berlin")
    day = datetime(2026, 6, 10, tzinfo=tz)
    moment = datetime.combine(day.date(), datetime.strptime(at, "%H:%M").time(), tz)
    found = next_in_windows(moment, [parse_call_window(w) for w in windows], tz)
    assert found.astimezone(tz).strftime("%H:%M") == expected
    assert found >= moment
