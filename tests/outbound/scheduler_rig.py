"""The real server and scheduler on real SQLite, dialing a simulator over real HTTP, step by step.

The scheduler's loop and the result-webhook sender do not run by themselves here: a test calls
``tick()`` and ``deliver_due()`` when it wants, so what happens per step is exact, whatever the
machine's load. The simulator is the ordinary one with two observation points: it notes how many
calls were in flight at each dial (as the network sees them: not yet final), and a gate holds
ringing phones until the test lets them be answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer

from ivr.config import Settings
from ivr.outbound.result_webhooks import ResultWebhooks
from ivr.outbound.scheduler import Scheduler
from ivr.store import Store
from ivr.telephony.simulator import CallRecord, Simulator
from ivr.web.app import OUTBOUND, AppParts, create_app
from ivr.web.keys import SERVICES
from tests.conftest import DIALPLANS

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "rig-auth-token"
API_TOKEN = "rig-api-token"
WEBHOOK_SECRET = "rig-webhook-secret"
CALLER_ID = "+12025550100"
REMINDER = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2031-11-24T10:00"}


class VirtualClock:
    """A monotonic clock for the scheduler's pacing: sleeping moves it, nothing else does."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class ObservedSimulator(Simulator):
    """The simulator, noting each dial and holding ringing phones while ``ringing`` is closed."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(ACCOUNT_SID, AUTH_TOKEN)
        self.clock = clock
        self.ringing = asyncio.Event()
        self.ringing.set()
        self.in_flight_at_dial: list[int] = []
        self.dialed_at: list[float] = []  # the pacing clock's time at each dial request

    def place_call(self, **options: Any) -> CallRecord:
        call = super().place_call(**options)
        self.in_flight_at_dial.append(sum(not c.final for c in self.calls.values()))
        self.dialed_at.append(self.clock())
        return call

    async def _wait(self, call: CallRecord, seconds: float) -> bool:
        await self.ringing.wait()  # a phone rings until the test lets it be picked up
        return await super()._wait(call, seconds)

    def in_flight(self) -> int:
        return sum(not c.final for c in self.calls.values())


@dataclass
class Rig:
    server: TestServer
    simulator: ObservedSimulator
    clock: VirtualClock
    http: aiohttp.ClientSession

    @property
    def scheduler(self) -> Scheduler:
        return self.server.app[OUTBOUND].scheduler

    @property
    def webhooks(self) -> ResultWebhooks:
        return self.server.app[OUTBOUND].webhooks

    @property
    def store(self) -> Store:
        return self.server.app[SERVICES].store

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def notify(self, to: str, **fields: Any) -> str:
        """POST a notification (the appointment reminder unless ``fields`` say otherwise)."""
        body = {"to": to, "plan": "appointment_reminder", "variables": REMINDER, **fields}
        async with self.http.post(self.url("/api/v1/notifications"), json=body) as response:
            assert response.status == 201, await response.text()
            return str((await response.json())["id"])

    async def get(self, ref: str) -> dict[str, Any]:
        async with self.http.get(self.url(f"/api/v1/notifications/{ref}")) as response:
            assert response.status == 200, await response.text()
            doc: dict[str, Any] = await response.json()
            return doc

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll ``check`` (no fixed sleep); a generous deadline only catches a hang."""
        deadline = time.monotonic() + 60
        while not await check():
            assert time.monotonic() < deadline, f"{what}: not within 60 s"
            await asyncio.sleep(0.02)

    async def settled(self, *refs: str) -> list[dict[str, Any]]:
        """Until every notification in ``refs`` is final and the simulator is idle."""

        async def final() -> bool:
            docs = [await self.get(ref) for ref in refs]
            return all(d["status"] in ("done", "skipped", "failed", "cancelled") for d in docs)

        await self.until(final, f"notifications {refs} final")
        await self.simulator.wait_idle(timeout=60)
        return [await self.get(ref) for ref in refs]

    async def tick_all(self) -> int:
        """Ticks until nothing more is due now; how many notifications were claimed."""
        total = 0
        while claimed := await self.scheduler.tick():
            total += claimed
        return total


async def start_rig(
    tmp_path: Path, aiohttp_server: AiohttpServer, **overrides: Any
) -> AsyncIterator[Rig]:
    clock = VirtualClock()
    simulator = ObservedSimulator(clock)
    api_base = await simulator.start()
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = {
        "provider": "twilio",
        "public_url": url,
        "database_url": f"sqlite:///{tmp_path}/ivr.db",
        "dialplans": DIALPLANS,
        "audio_dir": tmp_path / "audio",
        "var_dir": tmp_path / "var",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": CALLER_ID,
        "twilio_api_base": api_base,
        "api_token": API_TOKEN,
        "webhook_secret": WEBHOOK_SECRET,
        # Calling hours are tested elsewhere: here every notice may go out at any hour.
        "call_window": "00:00-24:00",
        "optional_call_window": "00:00-24:00",
        "default_timezone": "UTC",
        "calls_per_second": 1000,
        **overrides,
    }
    parts = AppParts(recognizer=None, background=False, warm_up=False)
    server = await aiohttp_server(create_app(Settings(**values), url, parts), port=port)
    scheduler = server.app[OUTBOUND].scheduler
    scheduler.clock, scheduler.sleep = clock, clock.sleep
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        try:
            yield Rig(server, simulator, clock, http)
        finally:
            simulator.ringing.set()
            await simulator.close()
