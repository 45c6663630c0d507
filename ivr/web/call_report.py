"""A finished call's facts read back from the store (its row, event log and SMS)."""

from __future__ import annotations

from ivr.dialplan.session import Session
from ivr.simulation.runner import CallFacts
from ivr.store import Transaction


async def call_facts(tx: Transaction, ref: str) -> CallFacts | None:
    call = await tx.calls.get(ref)
    if call is None:
        return None
    events = await tx.events.list(ref)
    said = " ".join(e.data.get("text", "") for e in events if e.kind == "Say")
    states = [e.data["state"] for e in events if e.kind == "Entered"]
    transfers = [e.data["number"] for e in events if e.kind == "Transfer"]
    sms = [message.body for message in await tx.sms.list_for(call_ref=ref)]
    session = Session.from_json(call.session_json)
    transfer = transfers[-1] if transfers else None
    return CallFacts(session.outcome, session.end_reason, transfer, sms, said, states)
