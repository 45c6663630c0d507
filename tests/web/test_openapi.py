"""``/api/v1/openapi.json`` describes exactly the app's API routes and what they answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pytest_aiohttp import AiohttpServer

from ivr.outbound.contact_preferences import ContactPreferences, DoNotCallRequest
from ivr.outbound.requests import NotificationRequest
from ivr.web.api_http import NotificationQuery
from tests.web.api_client import ANNA, Api, running_api

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
async def api(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Api]:
    async with running_api(tmp_path, aiohttp_server) as running:
        yield running


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    reply = await api.call("GET", "/api/v1/openapi.json", token=None)
    assert reply.status == 200
    body: dict[str, Any] = reply.body
    return body


def _router_operations(api: Api) -> set[tuple[str, str]]:
    operations = set()
    for route in api.server.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        # aiohttp answers HEAD for every GET by itself; it is not an API operation.
        if path.startswith("/api/") and route.method != "HEAD":
            operations.add((path, route.method.lower()))
    return operations


def _document_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


async def test_the_document_lists_exactly_the_routes_of_the_app(
    api: Api, document: dict[str, Any]
) -> None:
    assert document["openapi"].startswith("3.1")
    router = _router_operations(api)
    assert _document_operations(document) == router
    assert ("/api/v1/notifications/{id}", "delete") in router
    assert ("/api/v1/contacts/{number}/preferences", "put") in router
    assert len(router) == 17


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


async def test_every_reference_resolves_and_every_route_is_secured(
    document: dict[str, Any],
) -> None:
    for ref in _refs(document):
        _resolve(document, ref)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearer": []}]
    for path, method in _document_operations(document):
        operation = document["paths"][path][method]
        if path.endswith("/openapi.json"):
            assert operation["security"] == []
        else:
            assert {"401", "503"} <= set(operation["responses"]), (path, method)
            assert "security" not in operation
    created = document["paths"]["/api/v1/notifications"]["post"]["responses"]
    assert {"201", "200", "400", "422"} <= set(created)
    assert "idempotency_key" in created["200"]["description"]
    cancel = document["paths"]["/api/v1/notifications/{id}"]["delete"]["responses"]
    assert {"200", "404", "409"} <= set(cancel)


@pytest.mark.parametrize(
    ("path", "method", "model"),
    [
        ("/api/v1/notifications", "post", NotificationRequest),
        ("/api/v1/contacts/{number}/preferences", "put", ContactPreferences),
        ("/api/v1/do-not-call/{number}", "put", DoNotCallRequest),
    ],
)
async def test_request_bodies_are_the_models_the_handlers_validate_with(
    document: dict[str, Any], path: str, method: str, model: type[BaseModel]
) -> None:
    body = document["paths"][path][method]["requestBody"]
    schema = _resolve(document, body["content"]["application/json"]["schema"]["$ref"])
    assert set(schema["properties"]) == set(model.model_fields)
    assert schema["additionalProperties"] is False


async def test_durations_are_documented_as_written(document: dict[str, Any]) -> None:
    retry_after = document["components"]["schemas"]["AttemptsOverride"]["properties"]["retry_after"]
    types = str(retry_after)
    assert "'type': 'string'" in types
    assert "ms|s|m|h|d" in types


async def test_list_parameters_are_the_query_the_handler_accepts(
    document: dict[str, Any],
) -> None:
    parameters = document["paths"]["/api/v1/notifications"]["get"]["parameters"]
    assert {p["name"] for p in parameters} == set(NotificationQuery.model_fields)
    status = next(p for p in parameters if p["name"] == "status")
    assert "in_progress" in status["schema"]["enum"]


async def test_response_schemas_match_what_the_api_answers(
    api: Api, document: dict[str, Any]
) -> None:
    schemas = document["components"]["schemas"]
    notification = (
        await api.call(
            "POST",
            "/api/v1/notifications",
            json={
                "to": ANNA,
                "plan": "appointment_reminder",
                "variables": {"name": "Anna", "clinic": "Sunrise", "when": "2031-01-01T10:00"},
            },
        )
    ).body
    assert set(notification) == set(schemas["Notification"]["properties"])
    assert set(schemas["Notification"]["required"]) == set(notification)
    page = (await api.call("GET", "/api/v1/notifications")).body
    assert set(page) == set(schemas["NotificationPage"]["properties"])
    preferences = {"categories": {"marketing": {"opt_out": True}}}
    contact = (await api.call("PUT", f"/api/v1/contacts/{ANNA}/preferences", json=preferences)).body
    assert set(contact) == set(schemas["Contact"]["properties"])
    assert set(contact["opt_outs"][0]) == set(schemas["OptOut"]["properties"])
    await api.call("PUT", f"/api/v1/do-not-call/{ANNA}")
    listed = (await api.call("GET", "/api/v1/do-not-call")).body
    item_schema = schemas["DoNotCallList"]["properties"]["items"]["items"]
    assert set(listed["items"][0]) == set(item_schema["properties"])
    invalid = (await api.call("POST", "/api/v1/notifications", json={})).body
    error_schema = schemas["ValidationErrors"]["properties"]["errors"]["items"]
    assert set(invalid["errors"][0]) == set(error_schema["properties"])


async def test_the_result_webhook_and_its_signature_headers_are_described(
    document: dict[str, Any],
) -> None:
    hook = document["webhooks"]["notificationResult"]["post"]
    headers = {p["name"] for p in hook["parameters"] if p["in"] == "header"}
    assert headers == {"X-IVR-Signature", "X-IVR-Timestamp"}
    schema = hook["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Notification"}
