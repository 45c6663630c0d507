"""``/api/v1/notifications`` over real HTTP: auth, create, idempotency, validation, list, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpServer

from tests.web.api_client import (
    ANNA,
    BORIS,
    REMINDER,
    TOKEN,
    Api,
    notification_body,
    running_api,
)

NOTIFICATIONS = "/api/v1/notifications"


@pytest.fixture
async def api(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Api]:
    async with running_api(tmp_path, aiohttp_server) as running:
        yield running


async def test_every_route_needs_the_bearer_token(api: Api) -> None:
    for authorization in (None, f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer ", TOKEN):
        for method, path in (
            ("GET", NOTIFICATIONS),
            ("POST", NOTIFICATIONS),
            ("GET", f"/api/v1/contacts/%2B{ANNA[1:]}"),
            ("DELETE", f"/api/v1/do-not-call/%2B{ANNA[1:]}"),
        ):
            reply = await api.call(method, path, token=None, authorization=authorization)
            assert reply.status == 401, (method, path, authorization)
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
            assert "token" in reply.body["error"]
    assert (await api.call("GET", NOTIFICATIONS)).status == 200
    # Nothing slipped through while unauthorized.
    assert (await api.call("GET", NOTIFICATIONS)).body["items"] == []


async def test_a_server_without_a_token_keeps_the_api_closed(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    async with running_api(tmp_path, aiohttp_server, api_token=None) as closed:
        for token in (None, TOKEN, ""):
            reply = await closed.call("POST", NOTIFICATIONS, json=notification_body(), token=token)
            assert reply.status == 503
            assert "IVR_API_TOKEN" in reply.body["error"]
        assert (await closed.call("GET", "/api/v1/openapi.json", token=None)).status == 200


async def test_create_answers_201_with_the_scheduled_notification(api: Api) -> None:
    reply = await api.call(
        "POST",
        NOTIFICATIONS,
        json=notification_body(category="marketing", timezone="America/New_York"),
    )
    assert reply.status == 201
    body = reply.body
    assert reply.headers["Location"] == f"{NOTIFICATIONS}/{body['id']}"
    assert body["id"]
    assert body["to"] == ANNA
    assert body["plan"] == "appointment_reminder"
    assert body["category"] == "marketing"
    assert body["status"] == "scheduled"
    assert body["outcome"] is None
    assert body["attempts"] == 0
    assert body["max_attempts"] == 3
    assert body["next_attempt_at"] is not None
    assert body["calls"] == []
    assert body["sms"] == []
    assert body["skipped_reason"] is None
    assert body["timezone"] == "America/New_York"
    # The plan's own category applies when the request names none.
    assert (await api.create(to=BORIS))["category"] == "transactional"


async def test_the_same_idempotency_key_returns_the_first_notification(api: Api) -> None:
    first = await api.create(idempotency_key="visit-4711")
    again = await api.call(
        "POST",
        NOTIFICATIONS,
        json=notification_body(idempotency_key="visit-4711", to=BORIS),
    )
    assert again.status == 200
    assert again.body["id"] == first["id"]
    assert again.body["to"] == ANNA
    listed = (await api.call("GET", NOTIFICATIONS)).body["items"]
    assert [item["id"] for item in listed] == [first["id"]]


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"to": "+1 555 0100"}, "to"),
        ({"to": "call me maybe"}, "to"),
        ({"plan": "no_such_plan"}, "plan"),
        ({"plan": "order_status_line"}, "plan"),  # inbound plans cannot be sent
        ({"variables": _without(REMINDER, "when")}, "variables.when"),
        ({"variables": {**REMINDER, "when": "next tuesday"}}, "variables.when"),
        ({"variables": {**REMINDER, "colour": "red"}}, "variables.colour"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"attempts": {"max": 50}}, "attempts.max"),
        ({"attempts": {"max": 0}}, "attempts.max"),
        ({"attempts": {"max": 2, "retry_after": "0s"}}, "attempts.retry_after"),
        ({"attempts": {"max": 2, "retry_after": "30d"}}, "attempts.retry_after"),
        ({"attempts": {"max": 2, "retry_after": "soon"}}, "attempts.retry_after"),
        ({"not_before": "2031-01-02T10:00", "not_after": "2031-01-01T10:00"}, "not_after"),
        ({"callback_url": "ftp://crm.example"}, "callback_url"),
        ({"category": "not a name"}, "category"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_validation_names_the_bad_field(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    reply = await api.call("POST", NOTIFICATIONS, json=notification_body(**changes))
    assert reply.status == 422
    assert [error["field"] for error in reply.body["errors"]] == [field]
    assert all(error["message"] for error in reply.body["errors"])
    assert (await api.call("GET", NOTIFICATIONS)).body["items"] == []


async def test_validation_names_every_bad_field_at_once(api: Api) -> None:
    body = notification_body(to="+1 555 0100", plan="nope", timezone="Nowhere/Town")
    reply = await api.call("POST", NOTIFICATIONS, json=body)
    assert reply.status == 422
    assert {error["field"] for error in reply.body["errors"]} == {"to", "plan", "timezone"}
    missing = await api.call("POST", NOTIFICATIONS, json={"variables": []})
    assert {error["field"] for error in missing.body["errors"]} == {"to", "plan", "variables"}


async def test_malformed_json_is_a_400(api: Api) -> None:
    reply = await api.call("POST", NOTIFICATIONS, data='{"to": "+12025550142",')
    assert reply.status == 400
    assert "JSON" in reply.body["error"]
    not_an_object = await api.call("POST", NOTIFICATIONS, json=["to", ANNA])
    assert not_an_object.status == 400  # a malformed body, like malformed JSON: no fields
    assert "array" in not_an_object.body["error"]


async def test_get_shows_the_notification_and_404s_unknown_ids(api: Api) -> None:
    created = await api.create()
    reply = await api.call("GET", f"{NOTIFICATIONS}/{created['id']}")
    assert (reply.status, reply.body) == (200, created)
    unknown = await api.call("GET", f"{NOTIFICATIONS}/N-nope")
    assert unknown.status == 404
    assert "N-nope" in unknown.body["error"]


async def test_list_pages_and_filters(api: Api) -> None:
    ids = [(await api.create(to=ANNA))["id"] for _ in range(3)]
    ids += [(await api.create(to=BORIS, category="marketing"))["id"] for _ in range(2)]
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": "2"} if after is None else {"limit": "2", "after": after}
        page = (await api.call("GET", NOTIFICATIONS, params=params)).body
        seen += [item["id"] for item in page["items"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
        assert after == page["items"][-1]["id"]
    assert (seen, pages) == (ids, 3)
    exactly_full = (await api.call("GET", NOTIFICATIONS, params={"limit": "5"})).body
    assert (len(exactly_full["items"]), exactly_full["next"]) == (5, None)

    async def ids_for(query: str) -> list[str]:
        reply = await api.call("GET", f"{NOTIFICATIONS}?{query}")
        assert reply.status == 200, reply.body
        return [item["id"] for item in reply.body["items"]]

    assert await ids_for(f"to=%2B{BORIS[1:]}") == ids[3:]
    assert await ids_for(f"to=+{BORIS[1:]}") == ids[3:]  # "+" decoded as a space
    assert await ids_for("status=scheduled&plan=appointment_reminder") == ids
    assert await ids_for("status=done") == []
    assert await ids_for("plan=delivery_notice") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=finished", "status"),
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("limit=ten", "limit"),
        ("to=12345", "to"),
        ("plan_id=x", "plan_id"),
    ],
)
async def test_list_rejects_bad_query_parameters(api: Api, query: str, field: str) -> None:
    reply = await api.call("GET", f"{NOTIFICATIONS}?{query}")
    assert reply.status == 422
    assert [error["field"] for error in reply.body["errors"]] == [field]


async def test_cancel_only_before_the_first_call(api: Api) -> None:
    waiting = await api.create()
    reply = await api.call("DELETE", f"{NOTIFICATIONS}/{waiting['id']}")
    assert reply.status == 200
    assert reply.body["status"] == "cancelled"
    assert reply.body["next_attempt_at"] is None
    assert (await api.call("GET", f"{NOTIFICATIONS}/{waiting['id']}")).body["status"] == (
        "cancelled"
    )
    again = await api.call("DELETE", f"{NOTIFICATIONS}/{waiting['id']}")
    assert again.status == 409
    assert again.body["notification"]["status"] == "cancelled"

    started = await api.create(to=BORIS)
    async with api.store.transaction() as tx:  # as the scheduler leaves it after a first call
        assert await tx.notifications.change(started["id"], None, attempts=1)
    refused = await api.call("DELETE", f"{NOTIFICATIONS}/{started['id']}")
    assert refused.status == 409
    assert "started" in refused.body["error"] or "1 call" in refused.body["error"]
    assert (await api.call("GET", f"{NOTIFICATIONS}/{started['id']}")).body["status"] == (
        "scheduled"
    )
    assert (await api.call("DELETE", f"{NOTIFICATIONS}/N-nope")).status == 404
