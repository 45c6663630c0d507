"""A webhook's turn follows lookups until the plan waits again, and logs everything."""

from __future__ import annotations

import json

from ivr.calls.turns import run_turn
from ivr.dialplan.loader import PlanSet
from ivr.dialplan.session import new_session
from ivr.dialplan.vocabulary import (
    CallAnswered,
    KeysPressed,
    Listen,
    Lookup,
    LookupFinished,
    Say,
    SpeechRecognized,
)


async def test_lookup_answers_are_fed_back_until_the_plan_listens(shipped_plans: PlanSet) -> None:
    plan = shipped_plans.plans["order_status_line"]
    asked: list[Lookup] = []

    async def lookup(action: Lookup) -> LookupFinished:
        asked.append(action)
        return LookupFinished("ok", {"status": "packed"})

    session = new_session(
        plan.id, {"orders_api": "http://orders.test", "shop": "S", "operator": "+12025550123"}
    )
    first = await run_turn(plan, session, CallAnswered(), lookup)
    second = await run_turn(plan, first.session, KeysPressed("1"), lookup)
    third = await run_turn(plan, second.session, SpeechRecognized("four two oh seven"), lookup)
    assert [a.url for a in asked] == ["http://orders.test/orders/4207"]
    said = [o.text for o in third.outputs if isinstance(o, Say)]
    assert said[0] == "Order four two zero seven is packed."
    assert isinstance(third.outputs[-1], Listen)
    assert third.session.state == "anything_else"
    kinds = [kind for kind, _ in third.log]
    assert kinds[:2] == ["SpeechRecognized", "Understood"]
    assert "LookupFinished" in kinds
    listen = dict(third.log)["Listen"]
    assert listen["state"] == "anything_else"
    assert listen["spec"]["intents"]["order"]["press"] == "1"
    json.dumps(third.log)  # the event log is stored as JSON


async def test_sms_of_a_turn_are_listed(shipped_plans: PlanSet) -> None:
    plan = shipped_plans.plans["delivery_notice"]
    slot = {"slot_start": "2026-11-25T14:00", "slot_end": "2026-11-25T16:00"}
    variables = {"name": "Sam", "company": "Parcelly", "order": "5", **slot}

    async def no_lookup(action: Lookup) -> LookupFinished:
        raise AssertionError(f"unexpected lookup {action}")

    answered = await run_turn(plan, new_session(plan.id, variables), CallAnswered(), no_lookup)
    rescheduled = await run_turn(plan, answered.session, KeysPressed("2"), no_lookup)
    assert rescheduled.sms == [
        "Parcelly: choose a new delivery day for order 5 by replying with a date."
    ]
    assert answered.sms == []
