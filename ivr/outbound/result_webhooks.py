"""Telling the integrator how a notification ended: a signed POST to its ``callback_url``.

The body is the notification's JSON (as ``GET /api/v1/notifications/{id}`` shows it). Headers:
``X-IVR-Timestamp`` (Unix seconds) and ``X-IVR-Signature: sha256=HEX``, the HMAC-SHA256 of
``TIMESTAMP + "." + body`` keyed by ``IVR_WEBHOOK_SECRET``: the receiver recomputes it and
rejects old timestamps, so a captured request cannot be replayed later. A delivery that does
not get a 2xx is retried with growing delays; every try is visible in the notification's
``webhook_deliveries``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from ivr.outbound.service import view
from ivr.store import Store, WebhookDeliveryRecord

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-IVR-Signature"
TIMESTAMP_HEADER = "X-IVR-Timestamp"
# Seconds before each retry; after the last one the delivery is given up (status failed).
BACKOFF = (5, 30, 120, 600, 1800, 3600, 7200, 14400)
TRY_TIMEOUT = 10.0


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class ResultWebhooks:
    def __init__(self, store: Store, http: aiohttp.ClientSession, secret: bytes) -> None:
        self.store = store
        self.http = http
        self.secret = secret
        self.backoff = BACKOFF
        # When tries are due; a test swaps in a virtual clock to walk the whole schedule
        # (hours of backoff) without waiting.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # keep delivering the others
                log.exception("result webhook delivery failed")
            await asyncio.sleep(interval)

    async def deliver_due(self) -> int:
        now = self.clock()
        async with self.store.transaction() as tx:
            due = await tx.webhooks.due(now, 20)
            retry_if_lost = now + timedelta(seconds=TRY_TIMEOUT * 3)
            claimed = [
                d
                for d in due
                if d.next_try_at is not None
                and await tx.webhooks.claim(d.id, d.next_try_at, retry_if_lost)
            ]
        for delivery in claimed:
            await self._try(delivery)
        return len(claimed)

    async def _try(self, delivery: WebhookDeliveryRecord) -> None:
        async with self.store.read() as tx:
            notification = await tx.notifications.get(delivery.notification_id)
            assert notification is not None  # deliveries cascade with their notification
            body = json.dumps(await view(tx, notification), ensure_ascii=False).encode()
        timestamp = str(int(datetime.now(UTC).timestamp()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self.secret, timestamp, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=TRY_TIMEOUT)
            async with self.http.post(
                delivery.url, data=body, headers=headers, timeout=timeout
            ) as r:
                status = r.status
                error = None if 200 <= r.status < 300 else f"HTTP {r.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
        tries = delivery.attempt + 1
        if error is None:
            outcome, next_try = "delivered", None
        elif tries > len(self.backoff):
            outcome, next_try = "failed", None
        else:
            delay = timedelta(seconds=self.backoff[tries - 1])
            outcome, next_try = "pending", self.clock() + delay
        async with self.store.transaction() as tx:
            await tx.webhooks.record_try(delivery.id, outcome, status, error, next_try)
