"""Bad request bodies on the JSON API: each refused with the field or the reason, nothing stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpServer
from yarl import URL

from ivr.outbound.requests import MAX_IDEMPOTENCY_KEY
from tests.web.api_client import TOKEN, Api, Reply, notification_body, running_api
from tests.web.snapshot import snapshot

NOTIFICATIONS = "/api/v1/notifications"


@pytest.fixture
async def api(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Api]:
    async with running_api(tmp_path, aiohttp_server) as running:
        yield running


async def post_raw(api: Api, body: bytes, content_type: str | None = "application/json") -> Reply:
    return await post_raw_to(api, NOTIFICATIONS, body, content_type)


async def post_raw_to(
    api: Api, path: str, body: bytes, content_type: str | None = "application/json"
) -> Reply:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with api.http.post(api.url + path, data=body, headers=headers) as response:
        document = await response.json() if response.content_type == "application/json" else None
        return Reply(response.status, document, dict(response.headers))


def encoded(**changes: Any) -> bytes:
    return json.dumps(notification_body(**changes)).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"", "application/json", 400, "empty"),
        (b"  \n", "application/json", 400, "empty"),
        (encoded(), "text/plain", 415, "application/json"),
        (encoded(), "application/x-www-form-urlencoded", 415, "application/json"),
        (encoded(), None, 415, "application/json"),
        (encoded(variables={"name": "Zo\xeb"}).replace(b"\\u00eb", b"\xeb"), None, 415, "json"),
        (
            encoded(variables={"name": "Zo\xeb"}).replace(b"\\u00eb", b"\xeb"),
            "application/json",
            400,
            "not UTF-8: byte 0xeb",
        ),
        (json.dumps(notification_body()).encode("utf-16"), "application/json", 400, "UTF-8"),
        (b"\xef\xbb\xbf" + encoded(), "application/json", 400, "BOM"),
        (b'{"to": "+12025550142",', "application/json", 400, "not valid JSON"),
        # Each of these was a 500 (found by test_bad_input_properties.py).
        (b"[" * 30_000 + b"]" * 30_000, "application/json", 400, "nested too deeply"),
        (b'{"a":' * 20_000 + b"0" + b"}" * 20_000, "application/json", 400, "nested too deeply"),
        (
            encoded(attempts={"max": 1}).replace(b'"max": 1', b'"max": ' + b"1" * 5000),
            "application/json",
            400,
            "4300 digits",
        ),
        # Python's json reads these; JSON has no such numbers, and they could not be echoed.
        (
            encoded(variables={"name": 1}).replace(b"1}", b"NaN}"),
            "application/json",
            400,
            "NaN is not a JSON number",
        ),
        (
            encoded(variables={"name": 1}).replace(b"1}", b"-Infinity}"),
            "application/json",
            400,
            "-Infinity is not",
        ),
        (
            encoded(variables={"name": 1}).replace(b"1}", b"1e999}"),
            "application/json",
            400,
            "1e999 is out of range",
        ),
        # PostgreSQL stores no NUL in text or JSONB: a 500 at the commit there.
        (encoded(variables={"name": "An\u0000n"}), "application/json", 400, "NUL character"),
        (encoded(variables={"na\u0000me": "Ann"}), "application/json", 400, "NUL character"),
    ],
    ids=[
        "empty",
        "blank",
        "text",
        "form",
        "untyped",
        "latin1-untyped",
        "latin1",
        "utf16",
        "bom",
        "truncated",
        "deep-array",
        "deep-object",
        "huge-integer",
        "nan",
        "infinity",
        "overflowing-float",
        "nul-in-a-value",
        "nul-in-a-key",
    ],
)
async def test_a_body_that_is_no_json_document_is_refused_as_a_whole(
    api: Api, body: bytes, content_type: str | None, status: int, says: str
) -> None:
    before = await snapshot(api.store)
    reply = await post_raw(api, body, content_type)
    assert reply.status == status
    assert says in reply.body["error"]
    assert await snapshot(api.store) == before


async def test_a_body_over_the_limit_is_a_413_in_json(api: Api) -> None:
    padding = "x" * (300 * 1024)
    reply = await post_raw(api, encoded(variables={"name": padding}))
    assert reply.status == 413
    assert "262144" in reply.body["error"]
    assert (await api.call("GET", NOTIFICATIONS)).body["items"] == []


async def test_a_vendor_json_type_is_accepted(api: Api) -> None:
    reply = await post_raw(api, encoded(), "application/vnd.crm+json; charset=utf-8")
    assert reply.status == 201, reply.body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"to": 123}, "to"),
        ({"to": None}, "to"),
        ({"plan": ["appointment_reminder"]}, "plan"),
        ({"variables": "x"}, "variables"),
        ({"variables": ["name", "Anna"]}, "variables"),
        ({"attempts": 3}, "attempts"),
        ({"attempts": {"max": "three"}}, "attempts.max"),
        ({"not_before": {"at": "now"}}, "not_before"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 10_240}, "idempotency_key"),
        ({"idempotency_key": "k" * (MAX_IDEMPOTENCY_KEY + 1)}, "idempotency_key"),
        ({"idempotency_key": 42}, "idempotency_key"),
        ({"to": "+1 202 555 ABCD"}, "to"),
        ({"to": "+1 202 555 0142 ext. 5"}, "to"),
        ({"to": "tel:+1-202-555-0142"}, "to"),
        ({"to": "202 555 0142"}, "to"),
        ({"to": "+" + "1" * 10_000}, "to"),
    ],
)
async def test_a_mistyped_field_is_named(api: Api, changes: dict[str, Any], field: str) -> None:
    reply = await api.call("POST", NOTIFICATIONS, json=notification_body(**changes))
    assert reply.status == 422, reply.body
    assert [error["field"] for error in reply.body["errors"]] == [field]
    assert all(error["message"] for error in reply.body["errors"])
    assert len(json.dumps(reply.body)) < 2000  # a 10 kB value is not echoed back whole
    assert (await api.call("GET", NOTIFICATIONS)).body["items"] == []


async def test_the_longest_idempotency_key_is_accepted(api: Api) -> None:
    key = "k" * MAX_IDEMPOTENCY_KEY
    first = await api.call("POST", NOTIFICATIONS, json=notification_body(idempotency_key=key))
    assert first.status == 201, first.body
    again = await api.call("POST", NOTIFICATIONS, json=notification_body(idempotency_key=key))
    assert (again.status, again.body["id"]) == (200, first.body["id"])


@pytest.mark.parametrize(
    "written",
    ["+1 202 555 0142", "+1 (202) 555-0142", "+1.202.555.0142", " +1-202-555-0142 "],
)
async def test_a_formatted_number_is_stored_as_e164(api: Api, written: str) -> None:
    reply = await api.call("POST", NOTIFICATIONS, json=notification_body(to=written))
    assert reply.status == 201, reply.body
    assert reply.body["to"] == "+12025550142"
    listed = await api.call("GET", NOTIFICATIONS, params={"to": written})
    assert [item["id"] for item in listed.body["items"]] == [reply.body["id"]]


BODY_ROUTES = [
    ("POST", NOTIFICATIONS),
    ("PUT", "/api/v1/contacts/%2B12025550142/preferences"),
    ("PUT", "/api/v1/do-not-call/%2B12025550142"),
]


@pytest.mark.parametrize(("method", "path"), [*BODY_ROUTES, ("POST", "/api/v1/campaigns")])
@pytest.mark.parametrize(
    ("document", "kind"),
    [("[]", "an array"), ('["to", "+12025550142"]', "an array"), ('"to"', "a string"),
     ("3", "a number"), ("-2.5e3", "a number"), ("true", "a boolean"), ("null", "null")],
)  # fmt: skip
async def test_a_json_document_that_is_not_an_object_is_a_400(
    api: Api, method: str, path: str, document: str, kind: str
) -> None:
    """A malformed body is refused as a whole (400); only an object's fields are 422s."""
    before = await snapshot(api.store)
    reply = await api.call(method, path, data=document)
    assert reply.status == 400, reply.body
    assert reply.body == {"error": f"the body is {kind}: send a JSON object"}
    assert await snapshot(api.store) == before


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_every_body_route_refuses_unreadable_bodies_alike(
    api: Api, method: str, path: str
) -> None:
    before = await snapshot(api.store)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for body, content_type, status in (
        (b"x" * (300 * 1024), "application/json", 413),
        (b'{"reason": "asked"}', "text/plain", 415),
        (b'{"reason": "\xff"}', "application/json", 400),
        (b'{"reason": ', "application/json", 400),
    ):
        headers["Content-Type"] = content_type
        async with api.http.request(
            method, URL(api.url + path, encoded=True), data=body, headers=headers
        ) as response:
            assert response.status == status, (body[:20], content_type)
            assert response.content_type == "application/json"
            assert (await response.json())["error"].startswith("the body is")
    assert await snapshot(api.store) == before


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"name": "n", "plan": "appointment_reminder", "calls_per_second": NaN}', "NaN"),
        (b'{"name": "n", "plan": "appointment_reminder", "rows": ' + b"1" * 5000 + b"}", "4300"),
        (b'{"name": "caf\xe9"}', "not UTF-8: byte 0xe9"),
    ],
    ids=["deep", "nan", "huge-integer", "latin1"],
)
async def test_a_campaign_body_is_read_as_every_api_body_is(
    api: Api, body: bytes, says: str
) -> None:
    """The campaign route reads JSON itself (its bodies may be 32 MiB); these were 500s."""
    before = await snapshot(api.store)
    reply = await post_raw_to(api, "/api/v1/campaigns", body)
    assert reply.status == 400, reply.body
    assert says in reply.body["error"]
    assert await snapshot(api.store) == before
