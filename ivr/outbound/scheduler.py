"""The dialer: claims due notifications, applies the policy, calls, and reacts to the end.

Nothing lost, nothing twice:
- a notification is claimed under a lease (one worker at a time; a dead worker's lease runs
  out); the attempt's call row and the notification's new state are committed together,
  *before* the provider is asked to dial;
- a notification becomes final through one conditional UPDATE, so it ends exactly once, and
  its fallback SMS and result webhook are recorded in that same transaction;
- after a restart, ``reconcile`` asks the provider (``GET Calls/{sid}.json``) how in-flight
  attempts ended instead of dialing them again; an attempt the provider never confirmed is
  looked up among its calls to that number, and counts as failed only if none is found once
  ``unconfirmed_call_grace`` has passed;
- a fallback SMS is recorded ``scheduled`` with the end and moved to ``queued`` in a commit
  of its own just before it is handed to the provider: one still ``scheduled`` after a
  restart was certainly never sent and goes out then, one ``queued`` without a sid may have
  been, and is not sent again (at most once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from ivr.calls.service import CallService
from ivr.dialplan.schema import VOICEMAIL, Attempts, Plan
from ivr.dialplan.session import Session
from ivr.dialplan.templating import render
from ivr.outbound.campaign_dialing import SLOT_HORIZON, CampaignPacer
from ivr.outbound.opt_outs import apply_opt_out
from ivr.outbound.policy import (
    CallAt,
    CallNow,
    Channel,
    ContactFacts,
    Delivery,
    NotificationFacts,
    ReasonCode,
    SendSms,
    calling_window,
    decide,
    next_attempt,
    opt_out_for_outcome,
    recipient_timezone,
)
from ivr.store import (
    FINAL_CALL_STATUSES,
    CallRecord,
    CallStatus,
    CampaignRecord,
    CampaignState,
    Direction,
    NotificationRecord,
    NotificationStatus,
    SmsRecord,
    SmsStatus,
    Transaction,
)
from ivr.telephony.provider import ProviderError

log = logging.getLogger(__name__)

UNREACHED = "unreached"
INCOMPLETE = "incomplete"  # answered, but the plan reached no outcome (the caller hung up)
SMS_ONLY = "sms_sent"
# Seconds after which a fallback SMS still not handed to the provider was left by a crash.
UNSENT_SMS_GRACE = 10.0
# Seconds the provider's clock may be behind ours (its timestamps are whole seconds too).
PROVIDER_CLOCK_SKEW = 2.0


class Scheduler:
    def __init__(self, calls: CallService, owner: str) -> None:
        self.calls = calls
        self.s = calls.s
        self.owner = owner
        self.policy = self.s.settings.policy()
        self.wake = asyncio.Event()
        # The pacing clock; a test swaps in a virtual one to check the spacing of dials
        # without depending on how fast the machine is.
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._next_dial = 0.0
        self.pacer = CampaignPacer(self.policy)
        calls.ended_listeners.append(self.on_call_ended)

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Claim and process due notifications until cancelled; reconcile now and then."""
        settings = self.s.settings
        last_reconcile = 0.0
        while True:
            try:
                if time.monotonic() - last_reconcile > max(settings.lease, 5.0):
                    await self.reconcile()
                    last_reconcile = time.monotonic()
                while await self.tick():
                    pass
            except Exception:  # the loop must survive a bad row or a database hiccup
                log.exception("scheduler tick failed")
            self.wake.clear()
            # asyncio.timeout: wait_for (Python 3.11) loses a cancellation that comes as the
            # wake-up does, and the scheduler would then outlive its stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.scheduler_interval):
                    await self.wake.wait()

    async def tick(self) -> int:
        """Process one batch of due notifications; returns how many were claimed."""
        settings = self.s.settings
        async with self.s.store.transaction() as tx:
            live = await tx.notifications.count(NotificationStatus.IN_PROGRESS)
            free = settings.max_concurrent_calls - live
            claimed = await tx.notifications.claim_due(
                self.owner, self.now(), min(free, 50), settings.lease
            )
        for notification in claimed:
            await self._process(notification)
        return len(claimed)

    async def _process(self, n: NotificationRecord) -> None:
        plan = self.s.plan(n.plan_id)
        if plan is None:
            async with self.s.store.transaction() as tx:
                await self._finish(tx, n, NotificationStatus.FAILED, None, "plan no longer loaded")
            return
        async with self.s.store.read() as tx:
            contact = await self._contact(tx, n)
            campaign = await tx.campaigns.get(n.campaign_id) if n.campaign_id else None
        if campaign is not None and campaign.state is CampaignState.CANCELLED:
            # e.g. the retry of a call that was under way when the campaign was cancelled
            async with self.s.store.transaction() as tx:
                await self._finish(tx, n, NotificationStatus.CANCELLED, None, "campaign cancelled")
            return
        decision = decide(self._facts(n, plan, Channel.CALL), contact, self.policy, self.now())
        if isinstance(decision, CallNow) and campaign is not None:
            opening = self.pacer.window_opening(campaign, n, contact.timezone, self.now())
            if opening is not None:
                decision = CallAt(opening, ReasonCode.OUTSIDE_CALLING_HOURS, "campaign window")
        if isinstance(decision, CallNow):
            await self._dial(n, campaign)
        elif isinstance(decision, CallAt):
            await self._release(n, decision.at)
        elif isinstance(decision, SendSms):
            if decision.at > self.now():
                await self._release(n, decision.at)
            else:
                async with self.s.store.transaction() as tx:
                    message = await self._finish(tx, n, NotificationStatus.DONE, SMS_ONLY, sms=plan)
                await self._send(message)
        else:
            async with self.s.store.transaction() as tx:
                await self._finish(
                    tx, n, NotificationStatus.SKIPPED, None, decision.message, decision.code
                )

    async def _dial(self, n: NotificationRecord, campaign: CampaignRecord | None = None) -> None:
        await self._pace()
        dial_at = None
        async with self.s.store.transaction() as tx:
            if campaign is not None:  # paused or cancelled since, or its next slot is later
                admission = await tx.campaigns.admit(campaign.id, self.now(), SLOT_HORIZON)
                if (dial_at := admission.dial_at) is None:
                    if admission.state is CampaignState.CANCELLED:
                        await self._finish(
                            tx, n, NotificationStatus.CANCELLED, None, "campaign cancelled"
                        )
                        return
                    hold = self.pacer.hold_until(campaign, admission, self.now())
                    await tx.notifications.change(
                        n.id,
                        self.owner,
                        next_attempt_at=hold,
                        lease_owner=None,
                        lease_expires_at=None,
                    )
                    return
            call = await self.calls.record_outbound_call(
                tx, n.to_number, n.plan_id, n.variables, notification_id=n.id
            )
            used = sorted({*n.channels_used, Channel.CALL.value})
            moved = await tx.notifications.change(
                n.id, self.owner, status=NotificationStatus.IN_PROGRESS.value,
                attempts=n.attempts + 1, active_call_id=call.id, channels_used=used,
                next_attempt_at=None, lease_owner=None, lease_expires_at=None,
            )  # fmt: skip
            if not moved:  # the lease ran out and another worker has it: do not dial
                await tx.session.rollback()
                return
        if dial_at is not None and (wait := (dial_at - self.now()).total_seconds()) > 0:
            await self.sleep(wait)  # the campaign's slot, less than SLOT_HORIZON away
        await self.calls.dial(call)

    async def _pace(self) -> None:
        """At most ``calls_per_second`` dial requests from this worker."""
        gap = 1.0 / self.s.settings.calls_per_second
        wait = self._next_dial - self.clock()
        if wait > 0:
            await self.sleep(wait)
        # An idle spell earns no burst: the next dial is one gap after this one.
        self._next_dial = max(self._next_dial, self.clock()) + gap

    async def _release(self, n: NotificationRecord, at: datetime) -> None:
        async with self.s.store.transaction() as tx:
            await tx.notifications.change(
                n.id, self.owner, next_attempt_at=at, lease_owner=None, lease_expires_at=None
            )

    # -- facts for the policy ---------------------------------------------------------------

    def _facts(self, n: NotificationRecord, plan: Plan, channel: Channel) -> NotificationFacts:
        # A call is the next attempt; the fallback SMS follows the last one.
        attempt = n.attempts + 1 if channel == Channel.CALL else max(n.attempts, 1)
        return NotificationFacts(
            to=n.to_number, category=n.category, attempt=min(attempt, n.attempts_max),
            attempts=Attempts(max=n.attempts_max, retry_after=n.retry_after), channel=channel,
            not_before=n.not_before, not_after=n.not_after, timezone=n.timezone,
            has_sms_text=plan.fallback_sms is not None,
            channels_used=frozenset(Channel(c) for c in n.channels_used),
        )  # fmt: skip

    async def _contact(self, tx: Transaction, n: NotificationRecord) -> ContactFacts:
        contact = await tx.contacts.get(n.to_number)
        opted_out = frozenset(o.category for o in await tx.opt_outs.list(n.to_number))
        since = self.now() - timedelta(days=366)
        delivered = await tx.notifications.delivered_since(n.to_number, since, exclude=n.id)
        return ContactFacts(
            timezone=contact.timezone if contact else None,
            opted_out=opted_out,
            do_not_call=bool(contact and contact.do_not_call),
            do_not_call_reason=contact.do_not_call_reason if contact else None,
            deliveries=tuple(Delivery(category, at) for category, at in delivered),
            multiple_channels=bool(contact and contact.multiple_channels),
        )

    # -- the end of an attempt --------------------------------------------------------------

    async def on_call_ended(self, ref: str) -> None:
        """A call reached a final status: record the outcome, retry, or fall back to SMS."""
        async with self.s.store.read() as tx:
            call = await tx.calls.get(ref)
            n = (
                await tx.notifications.get(call.notification_id)
                if call and call.notification_id
                else None
            )
            if call is None or n is None or n.is_final or n.active_call_id != call.id:
                return
            # Only a retry or the fallback SMS needs the contact's facts (three queries).
            reached = call.status == CallStatus.COMPLETED
            contact = None if reached else await self._contact(tx, n)
        plan = self.s.plan(n.plan_id)
        async with self.s.store.transaction() as tx:
            if contact is None:
                message = await self._reached(tx, n, call, plan)
            else:
                message = await self._unreached(tx, n, call, plan, contact)
        await self._send(message)
        self.wake.set()

    async def _reached(
        self, tx: Transaction, n: NotificationRecord, call: CallRecord, plan: Plan | None
    ) -> SmsRecord | None:
        outcome = Session.from_json(call.session_json).outcome or INCOMPLETE
        if (change := opt_out_for_outcome(outcome, n.category, self.policy)) is not None:
            await apply_opt_out(tx, n.to_number, change)
        sms = plan if outcome == VOICEMAIL else None
        return await self._finish(tx, n, NotificationStatus.DONE, outcome, sms=sms, call=call.id)

    async def _unreached(
        self,
        tx: Transaction,
        n: NotificationRecord,
        call: CallRecord,
        plan: Plan | None,
        contact: ContactFacts,
    ) -> SmsRecord | None:
        tz = recipient_timezone(
            n.to_number, n.timezone, contact.timezone, self.policy.default_timezone
        )
        attempts = Attempts(max=n.attempts_max, retry_after=n.retry_after)
        window = calling_window(n.category, self.policy)
        at = next_attempt(
            call.status.value, n.attempts, attempts, self.now(), window, tz, n.not_after
        )
        if at is not None:
            await tx.notifications.change(
                n.id, None, active_call=call.id, status=NotificationStatus.SCHEDULED.value,
                next_attempt_at=at, active_call_id=None,
            )  # fmt: skip
            return None
        sms = None
        if plan is not None:
            decision = decide(self._facts(n, plan, Channel.SMS), contact, self.policy, self.now())
            sms = plan if isinstance(decision, SendSms | CallNow) else None
        return await self._finish(tx, n, NotificationStatus.DONE, UNREACHED, sms=sms, call=call.id)

    async def _finish(
        self,
        tx: Transaction,
        n: NotificationRecord,
        status: NotificationStatus,
        outcome: str | None,
        reason: str | None = None,
        code: str | None = None,
        sms: Plan | None = None,
        call: str | None = None,
    ) -> SmsRecord | None:
        """End ``n`` once, recording its fallback SMS and result webhook in the same commit.

        ``call``: the attempt whose end this is; nothing happens unless it is still the
        notification's attempt in progress. Without it, ``n`` must still be leased by this
        worker (a lease that ran out may have gone to another, which may be dialing it).
        Returns the SMS to hand to the provider once the caller's transaction has committed.
        """
        text = self._fallback_text(n, sms) if sms is not None else None
        channels = sorted({*n.channels_used, Channel.SMS.value}) if text else None
        finished = await tx.notifications.finish(
            n.id, status, outcome=outcome, skipped_code=code, skipped_reason=reason,
            channels_used=channels, active_call=call, owner=None if call else self.owner,
        )  # fmt: skip
        if not finished:
            return None
        if n.callback_url:
            await tx.webhooks.enqueue(n.id, n.callback_url, self.now())
        if text is None:
            return None
        return await tx.sms.create(
            direction=Direction.OUTBOUND, from_number=self.s.settings.caller_id,
            to_number=n.to_number, body=text, notification_id=n.id, status=SmsStatus.SCHEDULED,
        )  # fmt: skip

    def _fallback_text(self, n: NotificationRecord, plan: Plan) -> str | None:
        if plan.fallback_sms is None:
            return None
        text, error = render(plan.fallback_sms, n.variables, plan.language)
        if error is not None or not text:
            log.warning("fallback SMS of %s could not be rendered: %s", n.id, error)
            return None
        return text

    async def _send(self, message: SmsRecord | None) -> None:
        """Hand a recorded fallback SMS to the provider, unless someone already did."""
        if message is not None:
            await self.calls.send_recorded_sms(message)

    # -- after a restart --------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle attempts nothing was heard of for a while: ask the provider, never redial."""
        settings = self.s.settings
        quiet_since = self.now() - timedelta(seconds=settings.ring_timeout)
        async with self.s.store.read() as tx:
            stale = await tx.notifications.in_progress(quiet_since)
            calls = [await tx.calls.get(n.active_call_id) for n in stale if n.active_call_id]
            # A live process hands its SMS over within milliseconds of recording them.
            unsent = await tx.sms.unsent(self.now() - timedelta(seconds=UNSENT_SMS_GRACE))
        for message in unsent:
            log.info("reconciled SMS %s: recorded but never sent, sending it now", message.id)
            await self._send(message)
        for call in calls:
            if call is None:
                continue
            if call.is_final:
                await self.on_call_ended(call.id)
            elif call.provider_sid is not None:
                await self._ask_provider(call)
            elif (found := await self._find_unconfirmed(call)) is not None:
                await self._ask_provider(found)
            elif call.created_at < self.now() - timedelta(seconds=settings.unconfirmed_call_grace):
                log.info("reconciled call %s: never confirmed by the provider, failed", call.id)
                async with self.s.store.transaction() as tx:
                    await tx.calls.update_status(CallStatus.FAILED, ref=call.id)
                    await tx.events.append(
                        call.id, "error", {"never confirmed by the provider": True}
                    )
                await self.on_call_ended(call.id)

    async def _find_unconfirmed(self, call: CallRecord) -> CallRecord | None:
        """The provider's call for an attempt whose create was never confirmed, if it placed one.

        A crash between the provider's answer and our commit of its sid (or a create that timed
        out) leaves an attempt without a sid; if the status callbacks were lost as well, only
        the provider knows the call exists. A call to the same number, created since the attempt
        was recorded and known to no other attempt, is this attempt's: adopt its sid rather than
        fail the attempt and dial the person a second time.
        """
        since = call.created_at - timedelta(seconds=PROVIDER_CLOCK_SKEW)
        try:
            listed = await self.s.provider.find_calls(call.to_number, since)
        except ProviderError as exc:
            log.warning("reconcile %s: cannot list calls to %s: %s", call.id, call.to_number, exc)
            return None
        async with self.s.store.read() as tx:
            unknown = [info for info in listed if await tx.calls.get_by_sid(info.sid) is None]
        if len(unknown) != 1:
            if unknown:
                log.warning("reconcile %s: %d unknown calls to %s: adopting none",
                            call.id, len(unknown), call.to_number)  # fmt: skip
            return None
        async with self.s.store.transaction() as tx:
            adopted = await tx.calls.set_sid(call.id, unknown[0].sid)
            if adopted:
                await tx.events.append(call.id, "reconciled", {"adopted_sid": unknown[0].sid})
            found = await tx.calls.get(call.id)
        if not adopted or found is None:
            return None
        log.info("reconciled call %s: the provider placed it as %s", call.id, unknown[0].sid)
        return found

    async def _ask_provider(self, call: CallRecord) -> None:
        assert call.provider_sid is not None
        try:
            info = await self.s.provider.get_call(call.provider_sid)
        except ProviderError as exc:
            log.warning("reconcile %s: %s", call.id, exc)
            return
        log.info("reconciled call %s (%s): the provider says %s", call.id, info.sid, info.status)
        if info.status in {status.value for status in FINAL_CALL_STATUSES}:
            await self.calls.on_status(
                call.id, call.provider_sid, info.status, info.answered_by, info.duration
            )
