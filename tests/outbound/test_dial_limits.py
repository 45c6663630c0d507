"""``IVR_MAX_CONCURRENT_CALLS`` and ``IVR_CALLS_PER_SECOND``, asserted where they matter.

Concurrency is counted by the telephone network (the simulator): at every dial request, the
calls not yet final. Pacing is read on the scheduler's clock, a virtual one that only its own
sleeps move, so the spacing of dials is exact and no assertion depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpServer

from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import Persona
from tests.outbound.scheduler_rig import Rig, start_rig

NUMBERS = [f"+1212555{1000 + i}" for i in range(7)]
CONFIRMS = Persona.person(Turn(press="1"))


@pytest.fixture
async def two_lines(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Rig]:
    async for rig in start_rig(tmp_path, aiohttp_server, max_concurrent_calls=2):
        yield rig


@pytest.fixture
async def two_per_second(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Rig]:
    async for rig in start_rig(tmp_path, aiohttp_server, calls_per_second=2):
        yield rig


async def test_never_more_calls_in_flight_than_allowed(two_lines: Rig) -> None:
    rig, simulator = two_lines, two_lines.simulator
    for number in NUMBERS:
        simulator.assign(number, CONFIRMS)
    refs = [await rig.notify(number) for number in NUMBERS]
    dialed: list[int] = []
    while len(simulator.calls) < len(NUMBERS):
        simulator.ringing.clear()  # the phones ring until the test lets them be answered
        before = len(simulator.calls)
        await rig.tick_all()
        dialed.append(len(simulator.calls) - before)
        assert simulator.in_flight() <= 2
        # Both lines busy: another tick dials nobody, however long the calls take.
        assert await rig.scheduler.tick() == 0
        assert len(simulator.calls) == before + dialed[-1]
        simulator.ringing.set()
        await rig.until(lambda: _no_notification_in_progress(rig), "the calls of this round ended")
    assert dialed == [2, 2, 2, 1]
    assert max(simulator.in_flight_at_dial) == 2
    docs = await rig.settled(*refs)
    assert [d["outcome"] for d in docs] == ["confirmed"] * len(NUMBERS)
    assert sorted(call.to for call in simulator.calls.values()) == sorted(NUMBERS)


async def test_the_running_scheduler_keeps_the_limit_too(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    """The loop itself (``run``), calls ending whenever they end: the limit is an invariant."""
    async for rig in start_rig(
        tmp_path, aiohttp_server, max_concurrent_calls=3, scheduler_interval=0.02
    ):
        for number in NUMBERS:
            rig.simulator.assign(number, CONFIRMS)
        refs = [await rig.notify(number) for number in NUMBERS]
        loop = asyncio.create_task(rig.scheduler.run())
        try:
            docs = await rig.settled(*refs)
        finally:
            loop.cancel()
        assert [d["outcome"] for d in docs] == ["confirmed"] * len(NUMBERS)
        assert len(rig.simulator.in_flight_at_dial) == len(NUMBERS)
        assert max(rig.simulator.in_flight_at_dial) <= 3


async def test_dials_are_spaced_by_calls_per_second(two_per_second: Rig) -> None:
    rig, simulator, clock = two_per_second, two_per_second.simulator, two_per_second.clock
    simulator.ringing.clear()  # nobody answers while we count: only the dialing matters
    for number in NUMBERS[:5]:
        await rig.notify(number)
    start = clock()
    assert await rig.tick_all() == 5  # one tick claims them all; pacing spaces the dials
    assert [at - start for at in simulator.dialed_at] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]
    # An idle spell earns no burst: after it, the dials are one gap apart again.
    clock.now += 60
    for number in NUMBERS[5:]:
        await rig.notify(number)
    restart = clock()
    assert await rig.tick_all() == 2
    assert [at - restart for at in simulator.dialed_at[5:]] == [0.0, 0.5]


async def _no_notification_in_progress(rig: Rig) -> bool:
    async with rig.store.read() as tx:
        counts = await tx.notifications.count_by_status()
    return counts.get("in_progress", 0) == 0
