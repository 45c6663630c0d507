"""Notifications, contacts and result webhooks on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from ivr.store import NewNotification, NotificationStatus, Store

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def new(to: str = "+12025550111", key: str | None = None, at: datetime = NOW) -> NewNotification:
    return NewNotification(
        to_number=to, plan_id="appointment_reminder", category="transactional",
        variables={"name": "Anna"}, attempts_max=3, retry_after=[600.0], next_attempt_at=at,
        idempotency_key=key,
    )  # fmt: skip


async def test_the_same_idempotency_key_returns_the_same_notification(store: Store) -> None:
    async with store.transaction() as tx:
        first, created = await tx.notifications.create(new(key="crm-42"))
        again, created_again = await tx.notifications.create(new(to="+12025550112", key="crm-42"))
        other, _ = await tx.notifications.create(new())
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert again.to_number == "+12025550111"
    assert other.id != first.id
    assert first.status is NotificationStatus.SCHEDULED


async def test_concurrent_workers_claim_each_notification_once(store: Store) -> None:
    async with store.transaction() as tx:
        for n in range(60):
            await tx.notifications.create(new(to=f"+1202555{n:04d}"))
    workers = [store, *(Store.open(store.url) for _ in range(3))]

    async def worker(index: int) -> list[str]:
        claimed: list[str] = []
        while True:
            async with workers[index].transaction() as tx:
                batch = await tx.notifications.claim_due(f"w{index}", NOW, 7, 30)
            if not batch:
                return claimed
            claimed += [n.id for n in batch]

    try:
        results = await asyncio.gather(*(worker(i) for i in range(len(workers))))
    finally:
        for other in workers[1:]:
            await other.close()
    everything = [ref for claimed in results for ref in claimed]
    assert len(everything) == 60
    assert len(set(everything)) == 60


async def test_a_lease_expires_and_only_due_notifications_are_claimed(store: Store) -> None:
    async with store.transaction() as tx:
        due, _ = await tx.notifications.create(new())
        await tx.notifications.create(new(at=NOW + timedelta(hours=1)))
        [claimed] = await tx.notifications.claim_due("dead-worker", NOW, 10, 30)
        assert claimed.id == due.id
        assert claimed.lease_owner == "dead-worker"
        assert await tx.notifications.claim_due("other", NOW + timedelta(seconds=29), 10, 30) == []
        [again] = await tx.notifications.claim_due("other", NOW + timedelta(seconds=31), 10, 30)
    assert again.id == due.id
    assert again.lease_owner == "other"


async def test_a_notification_finishes_once_and_cancels_only_before_it_starts(store: Store) -> None:
    async with store.transaction() as tx:
        one, _ = await tx.notifications.create(new())
        two, _ = await tx.notifications.create(new())
        assert await tx.notifications.change(two.id, None, attempts=1)
        assert await tx.notifications.finish(one.id, NotificationStatus.DONE, outcome="confirmed")
        assert not await tx.notifications.finish(one.id, NotificationStatus.FAILED)
        assert not await tx.notifications.cancel(one.id)
        assert not await tx.notifications.cancel(two.id)  # a call was already placed
        assert not await tx.notifications.change(one.id, None, attempts=5)
        finished = await tx.notifications.get(one.id)
    assert finished is not None
    assert (finished.status, finished.outcome) == (NotificationStatus.DONE, "confirmed")
    assert finished.finished_at is not None


async def test_the_end_of_an_old_attempt_leaves_a_newer_one_alone(store: Store) -> None:
    in_progress = NotificationStatus.IN_PROGRESS.value
    async with store.transaction() as tx:
        n, _ = await tx.notifications.create(new())
        # Attempt 1 ended and attempt 2 is under way when a late reaction to attempt 1 comes.
        assert await tx.notifications.change(n.id, None, status=in_progress, active_call_id="c2")
        assert not await tx.notifications.change(
            n.id, None, active_call="c1", status=NotificationStatus.SCHEDULED.value
        )
        assert not await tx.notifications.finish(n.id, NotificationStatus.DONE, active_call="c1")
        assert await tx.notifications.finish(n.id, NotificationStatus.DONE, active_call="c2")
        ended = await tx.notifications.get(n.id)
    assert ended is not None
    assert ended.status is NotificationStatus.DONE


async def test_pages_filters_and_deliveries(store: Store) -> None:
    async with store.transaction() as tx:
        made = [(await tx.notifications.create(new(to=f"+1202555{n:04d}")))[0] for n in range(5)]
        await tx.notifications.finish(made[0].id, NotificationStatus.DONE, outcome="confirmed")
        first = await tx.notifications.page(limit=2)
        second = await tx.notifications.page(limit=2, after=first[-1].id)
        done = await tx.notifications.page(status="done")
        counts = await tx.notifications.count_by_status()
        scheduled = await tx.notifications.count(NotificationStatus.SCHEDULED)
        delivered = await tx.notifications.delivered_since("+12025550000", NOW, exclude="x")
    assert [n.id for n in first + second] == [n.id for n in made[:4]]
    assert [n.id for n in done] == [made[0].id]
    assert counts == {"done": 1, "scheduled": 4}
    assert scheduled == 4
    assert [category for category, _ in delivered] == ["transactional"]


async def test_contacts_and_the_do_not_call_list(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.contacts.get("+12025550111") is None
        await tx.contacts.update("+12025550111", timezone="Europe/Moscow")
        contact = await tx.contacts.update(
            "+12025550111", do_not_call=True, do_not_call_reason="asked"
        )
        assert contact.timezone == "Europe/Moscow"
        assert contact.do_not_call
        await tx.contacts.update("+12025550112", timezone="Asia/Seoul")
        blocked = await tx.contacts.do_not_call_list()
    assert [c.number for c in blocked] == ["+12025550111"]


async def test_result_webhooks_are_queued_and_tried(store: Store) -> None:
    async with store.transaction() as tx:
        notification, _ = await tx.notifications.create(new())
        await tx.webhooks.enqueue(notification.id, "http://crm.test/hook", NOW)
        [due] = await tx.webhooks.due(NOW, 10)
        await tx.webhooks.record_try(
            due.id, "pending", 503, "HTTP 503", NOW + timedelta(seconds=10)
        )
        assert await tx.webhooks.due(NOW, 10) == []
        [retry] = await tx.webhooks.due(NOW + timedelta(seconds=10), 10)
        await tx.webhooks.record_try(retry.id, "delivered", 200, None, None)
        [final] = await tx.webhooks.for_notification(notification.id)
    assert (final.attempt, final.status, final.response_status) == (2, "delivered", 200)
