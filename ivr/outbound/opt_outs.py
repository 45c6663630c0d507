"""Applying the policy's opt-out changes (from an IVR outcome or an SMS keyword) to the store."""

from __future__ import annotations

from ivr.outbound.policy import OptOutAction, OptOutChange
from ivr.store import Transaction


async def apply_opt_out(tx: Transaction, number: str, change: OptOutChange) -> None:
    if change.action == OptOutAction.OPT_OUT:
        await tx.opt_outs.opt_out(number, change.category, change.source, change.reason)
    else:
        await tx.opt_outs.opt_in(number, change.category)
