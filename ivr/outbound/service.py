"""Notifications as integrators see them: create (once per idempotency key), show, cancel.

The JSON a notification shows (``view``) is also the body of its result webhook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from ivr.config import Settings
from ivr.dialplan.loader import PlanSet
from ivr.outbound.requests import NotificationRequest, RequestError, e164, resolve
from ivr.store import CallRecord, NewNotification, NotificationRecord, Store, Transaction

# The caller's side of a transcript: what they pressed or said, as the engine understood it.
_TRANSCRIPT_KINDS = ("Say", "Understood", "Transfer", "SendSms")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


async def _call_view(tx: Transaction, call: CallRecord) -> dict[str, Any]:
    transcript = []
    for event in await tx.events.list(call.id):
        if event.kind == "Say":
            transcript.append({"robot": event.data.get("text", "")})
        elif event.kind == "Understood":
            heard = {"caller": event.data.get("heard", ""), "intent": event.data.get("intent")}
            if event.data.get("digits"):
                heard["digits"] = event.data["digits"]
            heard["confidence"] = event.data.get("confidence")
            transcript.append(heard)
    return {
        "id": call.id,
        "sid": call.provider_sid,
        "status": call.status.value,
        "answered_by": call.answered_by,
        "outcome": call.outcome,
        "duration": call.duration_seconds,
        "started_at": _iso(call.created_at),
        "ended_at": _iso(call.ended_at),
        "transcript": transcript,
    }


async def view(tx: Transaction, notification: NotificationRecord) -> dict[str, Any]:
    """The notification's JSON (``GET /api/v1/notifications/{id}`` and the result webhook)."""
    calls = [
        await _call_view(tx, call) for call in await tx.calls.for_notification(notification.id)
    ]
    messages = await tx.sms.list_for(notification_id=notification.id)
    deliveries = await tx.webhooks.for_notification(notification.id)
    return {
        "id": notification.id,
        "to": notification.to_number,
        "plan": notification.plan_id,
        "category": notification.category,
        "status": notification.status.value,
        "outcome": notification.outcome,
        "attempts": notification.attempts,
        "max_attempts": notification.attempts_max,
        "next_attempt_at": _iso(notification.next_attempt_at),
        "not_before": _iso(notification.not_before),
        "not_after": _iso(notification.not_after),
        "timezone": notification.timezone,
        "idempotency_key": notification.idempotency_key,
        "callback_url": notification.callback_url,
        "skipped_reason": notification.skipped_reason,
        "skipped_code": notification.skipped_code,
        "created_at": _iso(notification.created_at),
        "finished_at": _iso(notification.finished_at),
        "calls": calls,
        "sms": [
            {"body": m.body, "status": m.status.value, "sid": m.provider_sid} for m in messages
        ],
        "webhook_deliveries": [
            {
                "attempt": d.attempt,
                "status": d.status,
                "response_status": d.response_status,
                "error": d.error,
                "next_try_at": _iso(d.next_try_at),
            }
            for d in deliveries
        ],
    }


class NotificationService:
    def __init__(self, store: Store, plans: PlanSet, settings: Settings) -> None:
        self.store = store
        self.plans = plans
        self.settings = settings

    async def create(
        self, request: NotificationRequest, now: datetime | None = None
    ) -> tuple[dict[str, Any], bool]:
        """``(notification JSON, created)``; the same idempotency key gives back the first one.

        Raises RequestError naming the bad fields.
        """
        now = now or datetime.now(UTC)
        async with self.store.transaction() as tx:
            if request.idempotency_key is not None:
                existing = await tx.notifications.get_by_idempotency_key(request.idempotency_key)
                if existing is not None:
                    return await view(tx, existing), False
            try:
                contact = await tx.contacts.get(e164(request.to))
            except RequestError:
                contact = None  # resolve() names the bad number
            resolved = resolve(
                request,
                self.plans,
                self.settings.default_timezone,
                contact.timezone if contact else None,
                self.settings.plan_variables.get(request.plan, {}),
                now,
            )
            record, created = await tx.notifications.create(resolved.notification)
            return await view(tx, record), created

    async def create_many(
        self, requests: Sequence[NotificationRequest], now: datetime | None = None
    ) -> list[bool | RequestError]:
        """Create a batch of notifications (a CSV import): per request, True when created,
        False when its idempotency key already existed, or the RequestError rejecting it.

        A rejected request does not stop the others. Unlike ``create`` no JSON is built (three
        queries a row that an import never shows), and the write transaction holds only the
        INSERT: on SQLite a running server's webhooks wait for it, so the checks run before.
        """
        now = now or datetime.now(UTC)
        numbers: dict[str, str] = {}
        for request in requests:
            with contextlib.suppress(RequestError):  # resolve() names the bad number
                numbers[request.to] = e164(request.to)
        async with self.store.read() as tx:
            keys = [r.idempotency_key for r in requests if r.idempotency_key is not None]
            existing = await tx.notifications.existing_idempotency_keys(keys)
            zones = await tx.contacts.timezones(numbers.values())
        # Per request: False (existed), its RequestError, or None: decided by the INSERT below.
        results: list[bool | RequestError | None] = []
        pending: list[NewNotification] = []
        for request in requests:
            if request.idempotency_key in existing:
                results.append(False)
                continue
            try:
                resolved = resolve(
                    request,
                    self.plans,
                    self.settings.default_timezone,
                    zones.get(numbers.get(request.to, "")),
                    self.settings.plan_variables.get(request.plan, {}),
                    now,
                )
            except RequestError as exc:
                results.append(exc)
                continue
            results.append(None)
            pending.append(resolved.notification)
        created: Iterator[bool] = iter(())
        if pending:
            async with self.store.transaction() as tx:
                created = iter(await tx.notifications.create_many(pending))
        # A key created by someone else since the check above conflicts: it existed.
        return [next(created) if result is None else result for result in results]

    async def get(self, notification_id: str) -> dict[str, Any] | None:
        async with self.store.read() as tx:
            record = await tx.notifications.get(notification_id)
            return None if record is None else await view(tx, record)

    async def page(self, **filters: Any) -> list[dict[str, Any]]:
        async with self.store.read() as tx:
            records = await tx.notifications.page(**filters)
            return [await view(tx, record) for record in records]

    async def cancel(self, notification_id: str) -> tuple[bool, dict[str, Any] | None]:
        """``(cancelled, notification)``: only a notification that has not started cancels."""
        async with self.store.transaction() as tx:
            cancelled = await tx.notifications.cancel(notification_id)
            record = await tx.notifications.get(notification_id)
            return cancelled, None if record is None else await view(tx, record)
