"""Sample rows for the store tests."""

from __future__ import annotations

from ivr.store import CallRecord, CallStatus, Direction, Transaction

CALLER = "+12025550123"
ROBOT = "+12025550100"


async def create_call(
    tx: Transaction, *, status: CallStatus = CallStatus.QUEUED, session_json: str = "{}"
) -> CallRecord:
    return await tx.calls.create(
        direction=Direction.OUTBOUND,
        plan_id="appointment_reminder",
        plan_hash="a" * 64,
        from_number=ROBOT,
        to_number=CALLER,
        session_json=session_json,
        status=status,
    )
