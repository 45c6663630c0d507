"""What console tests do on the server side: notifications to scripted people, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ivr.outbound.requests import NotificationRequest
from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import Persona
from tests.console.conftest import ConsoleServer

WHEN = "2026-11-24T10:00"


def notify(
    console: ConsoleServer,
    number: str,
    persona: Persona | None,
    name: str = "Ann",
    plan: str = "appointment_reminder",
    **fields: Any,
) -> str:
    """Create a notification to ``number`` (answered by ``persona``); its id."""
    if persona is not None:
        console.call(lambda: console.simulator.assign(number, persona))
    request = NotificationRequest(
        to=number,
        plan=plan,
        variables={"name": name, "clinic": "Sunrise Clinic", "when": WHEN},
        timezone="UTC",
        **fields,
    )

    async def create() -> str:
        doc, _ = await console.notifications.create(request)
        return str(doc["id"])

    return console.run(create())


def wait_done(console: ConsoleServer, ref: str, timeout: float = 90) -> dict[str, Any]:
    """Poll the notification until it is final; its API document."""

    async def poll() -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = await console.notifications.get(ref)
            assert doc is not None
            if doc["status"] not in ("scheduled", "in_progress"):
                return doc
            assert time.monotonic() < deadline, f"notification {ref} still {doc['status']}"
            await asyncio.sleep(0.2)

    return console.run(poll(), timeout + 10)


def confirms_by_voice(words: str = "yes") -> Persona:
    return Persona.person(Turn(say=words))


def wait_until(console: ConsoleServer, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` on the server's loop until it holds (the pages are rendered once: wait
    for the fact before opening the page that shows it)."""

    async def poll() -> None:
        deadline = time.monotonic() + 60
        while not await check():
            assert time.monotonic() < deadline, f"not within 60 s: {what}"
            await asyncio.sleep(0.2)

    console.run(poll(), 70)
