"""A campaign through the real server, its scheduler, and the simulator over real HTTP.

Notifications are created and read back through the JSON API, as an integrator would.

Each person behaves differently (confirms by key, never answers, a machine, says stop, lives
where it is night); every notification must end the way the policy says, exactly once, with
its SMS and its signed result webhook.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer

from ivr.config import Settings
from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import Persona, Simulator
from ivr.web.app import OUTBOUND, SIMULATOR, AppParts, Outbound, create_app
from tests.conftest import DIALPLANS, FSDD

ANNA = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"}
SECRET = "campaign-secret"
TOKEN = "campaign-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Campaign:
    server: TestServer
    received: list[tuple[dict[str, Any], bool]] = field(default_factory=list)

    @property
    def outbound(self) -> Outbound:
        return self.server.app[OUTBOUND]

    @property
    def simulator(self) -> Simulator:
        return self.server.app[SIMULATOR]

    def api(self, path: str) -> str:
        return str(self.server.make_url(f"/api/v1/notifications{path}"))

    async def send(self, **fields: Any) -> str:
        async with (
            aiohttp.ClientSession(headers=AUTH) as http,
            http.post(self.api(""), json=fields) as response,
        ):
            assert response.status == 201, await response.text()
            return str((await response.json())["id"])

    async def get(self, ref: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(headers=AUTH) as http,
            http.get(self.api(f"/{ref}")) as response,
        ):
            assert response.status == 200, await response.text()
            doc: dict[str, Any] = await response.json()
            return doc

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            assert asyncio.get_running_loop().time() < deadline, "campaign did not settle"
            await asyncio.sleep(0.1)


@pytest.fixture
async def campaign(tmp_path: Path, aiohttp_server: AiohttpServer) -> Campaign:
    received: list[tuple[dict[str, Any], bool]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers["X-IVR-Timestamp"]
        expected = (
            "sha256="
            + hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        received.append(
            (json.loads(body), hmac.compare_digest(expected, request.headers["X-IVR-Signature"]))
        )
        return web.Response(status=204)

    crm = web.Application()
    crm.router.add_post("/results", hook)
    crm_server = await aiohttp_server(crm)
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="simulator", public_url=url, database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS, audio_dir=tmp_path / "audio", var_dir=tmp_path / "var",
        call_window="09:00-21:00", optional_call_window="09:00-21:00", scheduler_interval=0.05,
        calls_per_second=50, webhook_secret=SECRET, default_timezone="UTC", api_token=TOKEN,
    )  # fmt: skip
    server = await aiohttp_server(
        create_app(settings, url, AppParts(simulator_audio=[FSDD])), port=port
    )
    result = Campaign(server, received)
    result.crm_url = str(crm_server.make_url("/results"))  # type: ignore[attr-defined]
    return result


def daytime_zone() -> str:
    """An IANA zone where it is now mid-day, so calls go out whatever time the test runs."""
    hour = datetime.now(UTC).hour
    offset = 13 - hour  # local 13:00
    offset = (offset + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def night_zone() -> str:
    hour = datetime.now(UTC).hour
    offset = ((3 - hour) + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


async def test_a_campaign_ends_every_notification_once(campaign: Campaign) -> None:
    day = daytime_zone()
    sim = campaign.simulator
    sim.expect("+12025550101", Persona.person(Turn(press="1")))
    sim.expect("+12025550102", Persona.nobody("no-answer"), Persona.nobody("busy"))
    sim.expect("+12025550103", Persona.machine())
    sim.expect("+12025550104", Persona.person(Turn(press="9")))
    common = {"plan": "appointment_reminder", "variables": ANNA, "timezone": day,
              "callback_url": campaign.crm_url}  # type: ignore[attr-defined]  # fmt: skip
    ids = {
        "confirms": await campaign.send(to="+12025550101", **common),
        "never_answers": await campaign.send(
            to="+12025550102", attempts={"max": 2, "retry_after": "1s"}, **common
        ),
        "machine": await campaign.send(to="+12025550103", **common),
        "says_stop": await campaign.send(to="+12025550104", **common),
        "at_night": await campaign.send(to="+12025550105", **{**common, "timezone": night_zone()}),
    }

    async def settled() -> bool:
        docs = [
            await campaign.get(ids[k])
            for k in ("confirms", "never_answers", "machine", "says_stop")
        ]
        return all(d["status"] == "done" for d in docs) and len(campaign.received) >= 4

    await campaign.until(settled)
    docs = {name: await campaign.get(ref) for name, ref in ids.items()}
    assert {k: (d["status"], d["outcome"], d["attempts"]) for k, d in docs.items()} == {
        "confirms": ("done", "confirmed", 1),
        "never_answers": ("done", "unreached", 2),
        "machine": ("done", "voicemail", 1),
        "says_stop": ("done", "opted_out", 1),
        "at_night": ("scheduled", None, 0),
    }
    assert [c["status"] for c in docs["never_answers"]["calls"]] == ["no-answer", "busy"]
    [confirmed_call] = docs["confirms"]["calls"]
    assert confirmed_call["status"] == "completed"
    assert confirmed_call["answered_by"] == "human"
    assert "Tuesday, November 24" in json.dumps(confirmed_call["transcript"])
    assert docs["machine"]["calls"][0]["answered_by"].startswith("machine")
    for name in ("never_answers", "machine"):
        [sms] = docs[name]["sms"]
        assert sms["body"].startswith(
            "Hi Anna, Sunrise Clinic reminds you of your visit on Tuesday, November 24"
        )
        assert sms["status"] in ("sent", "delivered")
    assert docs["confirms"]["sms"] == []
    night = docs["at_night"]
    assert night["next_attempt_at"] > datetime.now(UTC).isoformat()
    # Each person was called exactly as often as attempts were recorded; nobody twice per attempt.
    placed = [call.to for call in sim.calls.values()]
    assert sorted(placed) == sorted(
        ["+12025550101", "+12025550102", "+12025550102", "+12025550103", "+12025550104"]
    )
    # Result webhooks: one per finished notification, signed.
    assert sorted(body["id"] for body, _ in campaign.received) == sorted(
        ids[k] for k in ("confirms", "never_answers", "machine", "says_stop")
    )
    assert all(valid for _, valid in campaign.received)
    # "stop" opted the number out of optional calls: a marketing notice to it is skipped.
    marketing = await campaign.send(to="+12025550104", plan="appointment_reminder", variables=ANNA,
                                    timezone=day, category="marketing")  # fmt: skip

    async def skipped() -> bool:
        return (await campaign.get(marketing))["status"] == "skipped"

    await campaign.until(skipped)
    doc = await campaign.get(marketing)
    assert doc["skipped_code"] == "opted_out"
    assert "+12025550104" in doc["skipped_reason"]
