"""The policy's rules as the real scheduler applies them, on real SQLite, against the simulator.

The pure rules are tested in test_policy_*.py; here each one is shown to be wired: the facts
come from the database (``delivered_since``, the contact's do-not-call flag, opt-outs from an
SMS STOP), and what the scheduler does reaches, or does not reach, the telephone network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpServer

from ivr.simulation.scenario import Turn
from ivr.store.models import NotificationStatus
from ivr.store.notifications import NewNotification
from ivr.telephony.simulator import Persona
from tests.outbound.scheduler_rig import CALLER_ID, Rig, start_rig

ANN = "+12125550101"
BEN = "+13125550102"
CONFIRMS = Persona.person(Turn(press="1"))


@pytest.fixture
async def rig(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Rig]:
    async for made in start_rig(tmp_path, aiohttp_server):
        yield made


# -- the frequency cap ------------------------------------------------------------------------


async def test_a_second_optional_notice_within_the_cap_is_skipped(rig: Rig) -> None:
    rig.simulator.assign(ANN, CONFIRMS)
    first = await rig.notify(ANN, category="marketing")
    assert await rig.tick_all() == 1
    [done] = await rig.settled(first)
    assert (done["status"], done["outcome"]) == ("done", "confirmed")

    second = await rig.notify(ANN, category="marketing")
    other_category = await rig.notify(ANN, category="news")
    reminder = await rig.notify(ANN)  # transactional: no cap
    assert await rig.tick_all() == 3
    capped, news, transactional = await rig.settled(second, other_category, reminder)
    assert capped["status"] == "skipped"
    assert capped["skipped_code"] == "frequency_cap"
    # The cap is 1/7d: it frees a week after the first delivery, and says so.
    freed = datetime.fromisoformat(done["finished_at"]) + timedelta(days=7)
    assert freed.strftime("%Y-%m-%d") in capped["skipped_reason"]
    assert capped["calls"] == []
    assert (news["status"], news["outcome"]) == ("done", "confirmed")
    assert (transactional["status"], transactional["outcome"]) == ("done", "confirmed")
    assert len(rig.simulator.calls_to(ANN)) == 3  # the first, the news and the reminder


async def test_an_unreached_notice_does_not_count_against_the_cap(rig: Rig) -> None:
    rig.simulator.expect(ANN, Persona.nobody("busy"), CONFIRMS)
    unreached = await rig.notify(ANN, category="marketing", attempts={"max": 1})
    await rig.tick_all()
    [doc] = await rig.settled(unreached)
    assert (doc["status"], doc["outcome"]) == ("done", "unreached")
    again = await rig.notify(ANN, category="marketing")
    await rig.tick_all()
    [doc] = await rig.settled(again)
    assert (doc["status"], doc["outcome"]) == ("done", "confirmed")


async def test_delivered_since_returns_reached_notices_of_the_number_only(rig: Rig) -> None:
    now = datetime.now(UTC)

    async def notice(to: str, category: str, status: NotificationStatus, outcome: str) -> str:
        new = NewNotification(to, "appointment_reminder", category, {}, 1, [], now)
        async with rig.store.transaction() as tx:
            record, _ = await tx.notifications.create(new)
            await tx.notifications.finish(record.id, status, outcome=outcome)
        return record.id

    reached = await notice(ANN, "marketing", NotificationStatus.DONE, "confirmed")
    this_one = await notice(ANN, "news", NotificationStatus.DONE, "confirmed")
    await notice(ANN, "marketing", NotificationStatus.DONE, "unreached")
    await notice(ANN, "marketing", NotificationStatus.SKIPPED, "opted_out")
    await notice(BEN, "marketing", NotificationStatus.DONE, "confirmed")
    async with rig.store.read() as tx:
        delivered = await tx.notifications.delivered_since(ANN, now, exclude=this_one)
        later = await tx.notifications.delivered_since(
            ANN, now + timedelta(hours=1), exclude=this_one
        )
        record = await tx.notifications.get(reached)
    assert record is not None
    assert record.finished_at is not None
    assert delivered == [("marketing", record.finished_at)]
    assert delivered[0][1].utcoffset() is not None  # aware, as the policy requires
    assert later == []


# -- do not call ------------------------------------------------------------------------------


async def test_a_do_not_call_number_is_never_dialed_and_the_reason_is_recorded(rig: Rig) -> None:
    async with rig.http.put(
        rig.url(f"/api/v1/do-not-call/{ANN}"), json={"reason": "asked by letter"}
    ) as response:
        assert response.status == 200, await response.text()
    rig.simulator.assign(ANN, CONFIRMS)
    rig.simulator.assign(BEN, CONFIRMS)
    refs = [
        await rig.notify(ANN),
        await rig.notify(ANN, category="marketing"),
        await rig.notify(BEN),
    ]
    assert await rig.tick_all() == 3
    reminder, marketing, ben = await rig.settled(*refs)
    for doc in (reminder, marketing):
        assert doc["status"] == "skipped"
        assert doc["skipped_code"] == "do_not_call"
        # The reason recorded with the listing comes along, for whoever reads the skip.
        assert doc["skipped_reason"] == f"{ANN} is on the do-not-call list (asked by letter)."
        assert doc["calls"] == []
        assert doc["sms"] == []
    assert ben["outcome"] == "confirmed"
    assert rig.simulator.calls_to(ANN) == []
    assert [m.to for m in rig.simulator.messages.values()] == []


# -- SMS STOP ---------------------------------------------------------------------------------


async def test_sms_stop_skips_a_later_optional_notice_but_not_a_transactional_one(
    rig: Rig,
) -> None:
    replies = await rig.simulator.incoming_sms(ANN, CALLER_ID, "STOP", rig.url("/twilio/sms"))
    async with rig.http.get(rig.url(f"/api/v1/contacts/{ANN}")) as response:
        contact = await response.json()
    assert [o["category"] for o in contact["opt_outs"]] == ["*"]
    assert all("STOP" not in reply for reply in replies)  # the carrier confirms, not us

    rig.simulator.assign(ANN, CONFIRMS)
    marketing = await rig.notify(ANN, category="marketing")
    reminder = await rig.notify(ANN)
    assert await rig.tick_all() == 2
    skipped, called = await rig.settled(marketing, reminder)
    assert skipped["status"] == "skipped"
    assert skipped["skipped_code"] == "opted_out"
    assert skipped["calls"] == []
    assert (called["status"], called["outcome"]) == ("done", "confirmed")
    assert len(rig.simulator.calls_to(ANN)) == 1

    # START undoes it: the next optional notice is called.
    await rig.simulator.incoming_sms(ANN, CALLER_ID, "START", rig.url("/twilio/sms"))
    again = await rig.notify(ANN, category="news")
    await rig.tick_all()
    [doc] = await rig.settled(again)
    assert doc["outcome"] == "confirmed"
