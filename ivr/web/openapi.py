"""The OpenAPI 3.1 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Request bodies and the list query come from the pydantic models the handlers validate with,
so they cannot drift; the response shapes are written out here and tests compare them with
what the API really answers, and the paths with the app's router.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from ivr.dialplan.durations import parse_duration
from ivr.outbound.campaigns import CampaignRequest
from ivr.outbound.contact_preferences import ContactPreferences, DoNotCallRequest
from ivr.outbound.requests import NotificationRequest
from ivr.outbound.result_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from ivr.store import NotificationStatus
from ivr.web.api_http import API_PREFIX, OPENAPI_PATH, NotificationQuery

Schema = dict[str, Any]

REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    NotificationRequest,
    CampaignRequest,
    ContactPreferences,
    DoNotCallRequest,
)

DURATION_SCHEMA: Schema = {
    "description": "30s, 10m, 1h, 2d, 500ms, or a number of seconds",
    "anyOf": [
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
        {"type": "number", "minimum": 0},
    ],
}


class _ApiJsonSchema(GenerateJsonSchema):
    """Pydantic's generator, except that a Duration shows what it accepts, not the float."""

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        if schema["function"]["function"] is parse_duration:
            return dict(DURATION_SCHEMA)
        return super().function_before_schema(schema)


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_STRING: Schema = {"type": "string"}
_TIME: Schema = _nullable({"type": "string", "format": "date-time"})


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _response_schemas() -> dict[str, Schema]:
    return {
        "Call": _object(
            {
                "id": _STRING,
                "sid": _nullable(_STRING),
                "status": _STRING,
                "answered_by": _nullable(_STRING),
                "outcome": _nullable(_STRING),
                "duration": _nullable({"type": "number"}),
                "started_at": _TIME,
                "ended_at": _TIME,
                "transcript": {
                    "type": "array",
                    "description": "{robot: text} for prompts, {caller, intent, ...} for answers",
                    "items": {"type": "object"},
                },
            }
        ),
        "Sms": _object(
            {"body": _STRING, "status": _STRING, "sid": _nullable(_STRING)},
        ),
        "WebhookDelivery": _object(
            {
                "attempt": {"type": "integer"},
                "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                "response_status": _nullable({"type": "integer"}),
                "error": _nullable(_STRING),
                "next_try_at": _TIME,
            }
        ),
        "Notification": _object(
            {
                "id": _STRING,
                "to": {"type": "string", "description": "E.164"},
                "plan": _STRING,
                "category": _STRING,
                "status": {"type": "string", "enum": [s.value for s in NotificationStatus]},
                "outcome": {
                    **_nullable(_STRING),
                    "description": "the plan's outcome (confirmed, opted_out, ...), voicemail "
                    "or unreached",
                },
                "attempts": {"type": "integer", "description": "calls placed so far"},
                "max_attempts": {"type": "integer"},
                "next_attempt_at": _TIME,
                "not_before": _TIME,
                "not_after": _TIME,
                "timezone": _nullable(_STRING),
                "idempotency_key": _nullable(_STRING),
                "callback_url": _nullable(_STRING),
                "skipped_reason": _nullable(_STRING),
                "skipped_code": _nullable(_STRING),
                "created_at": _TIME,
                "finished_at": _TIME,
                "calls": {"type": "array", "items": _ref("Call")},
                "sms": {"type": "array", "items": _ref("Sms")},
                "webhook_deliveries": {"type": "array", "items": _ref("WebhookDelivery")},
            }
        ),
        "NotificationPage": _object(
            {
                "items": {"type": "array", "items": _ref("Notification")},
                "next": {
                    **_nullable(_STRING),
                    "description": "pass as `after` for the next page; null on the last page",
                },
            }
        ),
        "OptOut": _object(
            {
                "category": {"type": "string", "description": "a category, or * for all"},
                "source": {"type": "string", "enum": ["api", "ivr", "sms"]},
                "reason": _nullable(_STRING),
                "since": {"type": "string", "format": "date-time"},
            }
        ),
        "Contact": _object(
            {
                "number": _STRING,
                "timezone": _nullable(_STRING),
                "multiple_channels": {"type": "boolean"},
                "do_not_call": {"type": "boolean"},
                "do_not_call_reason": _nullable(_STRING),
                "opt_outs": {"type": "array", "items": _ref("OptOut")},
            }
        ),
        "DoNotCallList": _object(
            {
                "items": {
                    "type": "array",
                    "items": _object({"number": _STRING, "reason": _nullable(_STRING)}),
                }
            }
        ),
        "Error": {
            "type": "object",
            "properties": {
                "error": _STRING,
                "notification": _ref("Notification"),
                "campaign": _ref("Campaign"),
            },
            "required": ["error"],
        },
        "ValidationErrors": _object(
            {
                "errors": {
                    "type": "array",
                    "items": _object(
                        {
                            "field": {
                                "type": "string",
                                "description": "dotted path: to, variables.when, "
                                "attempts.retry_after, categories.marketing, number",
                            },
                            "message": _STRING,
                        }
                    ),
                }
            }
        ),
    }


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_COMMON_RESPONSES: dict[str, Schema] = {
    "Unauthorized": {
        **_json(_ref("Error"), "missing or wrong bearer token"),
        "headers": {"WWW-Authenticate": {"schema": _STRING}},
    },
    "Disabled": _json(_ref("Error"), "the API is disabled: the server has no IVR_API_TOKEN"),
    "BadJson": _json(
        _ref("Error"), "the body is empty, not UTF-8, not valid JSON or not a JSON object"
    ),
    "TooLarge": _json(_ref("Error"), "the body is over the server's limit (256 KiB)"),
    "NotJson": _json(_ref("Error"), "the body's Content-Type is not application/json"),
    "Invalid": _json(_ref("ValidationErrors"), "fields that cannot be accepted, each named"),
    "NotFound": _json(_ref("Error"), "no such notification"),
}


def _use(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def _operation(
    summary: str,
    responses: dict[str, Schema],
    *,
    body: str | None = None,
    body_required: bool = True,
    parameters: list[Schema] | None = None,
    description: str | None = None,
) -> Schema:
    operation: Schema = {"summary": summary}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    operation["responses"] = {**responses, "401": _use("Unauthorized"), "503": _use("Disabled")}
    if body:
        operation["responses"]["400"] = _use("BadJson")
        operation["responses"]["413"] = _use("TooLarge")
        operation["responses"]["415"] = _use("NotJson")
    return operation


def _path_parameter(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": _STRING,
        "description": description,
    }


_NUMBER = _path_parameter(
    "number", "E.164 number; its + may be sent as is or as %2B (a + decoded as a space works too)"
)
_ID = _path_parameter("id", "the notification's id")


def _query_parameters(model: type[BaseModel]) -> list[Schema]:
    """The model's fields as optional query parameters (an absent one, never a null)."""
    schema = model.model_json_schema(schema_generator=_ApiJsonSchema)
    definitions = schema.get("$defs", {})
    parameters = []
    for name, field in schema["properties"].items():
        (value,) = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
        if "$ref" in value:
            value = definitions[value["$ref"].rsplit("/", 1)[-1]]
        value = {k: v for k, v in value.items() if k not in ("title", "default")}
        if field.get("default") is not None:
            value["default"] = field["default"]
        parameters.append({"name": name, "in": "query", "required": False, "schema": value})
    return parameters


def _paths() -> dict[str, dict[str, Schema]]:
    notification = _json(_ref("Notification"), "the notification")
    contact = _json(_ref("Contact"), "the contact")
    return {
        f"{API_PREFIX}/notifications": {
            "post": _operation(
                "Create a notification",
                {
                    "201": {
                        **_json(_ref("Notification"), "created"),
                        "headers": {"Location": {"schema": _STRING}},
                    },
                    "200": _json(
                        _ref("Notification"),
                        "the idempotency_key was seen before: the existing notification, "
                        "nothing new is created or called",
                    ),
                    "422": _use("Invalid"),
                },
                body="NotificationRequest",
                description="Times without an offset are in the recipient's time zone. "
                "Validation names every bad field: to, plan, variables.NAME, timezone, "
                "attempts.max, attempts.retry_after, not_after, ...",
            ),
            "get": _operation(
                "List notifications, oldest first",
                {"200": _json(_ref("NotificationPage"), "a page"), "422": _use("Invalid")},
                parameters=_query_parameters(NotificationQuery),
            ),
        },
        f"{API_PREFIX}/notifications/{{id}}": {
            "get": _operation(
                "Show a notification (also the result webhook's body)",
                {"200": notification, "404": _use("NotFound")},
                parameters=[_ID],
            ),
            "delete": _operation(
                "Cancel a notification that has not started",
                {
                    "200": _json(_ref("Notification"), "cancelled"),
                    "404": _use("NotFound"),
                    "409": _json(_ref("Error"), "a call was already placed, or it ended"),
                },
                parameters=[_ID],
            ),
        },
        f"{API_PREFIX}/contacts/{{number}}": {
            "get": _operation(
                "Show a contact (defaults for a number never seen)",
                {"200": contact, "422": _use("Invalid")},
                parameters=[_NUMBER],
            ),
        },
        f"{API_PREFIX}/contacts/{{number}}/preferences": {
            "put": _operation(
                "Set a contact's time zone, opt-outs per category and channels",
                {"200": contact, "422": _use("Invalid")},
                body="ContactPreferences",
                parameters=[_NUMBER],
                description="Transactional categories cannot be opted out of (422). "
                "timezone: null clears the contact's zone.",
            ),
        },
        f"{API_PREFIX}/do-not-call": {
            "get": _operation(
                "The do-not-call list", {"200": _json(_ref("DoNotCallList"), "every number")}
            ),
        },
        f"{API_PREFIX}/do-not-call/{{number}}": {
            "put": _operation(
                "Put a number on the do-not-call list (no call of any category)",
                {"200": contact, "422": _use("Invalid")},
                body="DoNotCallRequest",
                body_required=False,
                parameters=[_NUMBER],
            ),
            "delete": _operation(
                "Take a number off the do-not-call list (200 even if it was not on it)",
                {"200": contact, "422": _use("Invalid")},
                parameters=[_NUMBER],
            ),
        },
        OPENAPI_PATH: {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def _webhooks() -> dict[str, Schema]:
    headers = [
        {
            "name": TIMESTAMP_HEADER,
            "in": "header",
            "required": True,
            "schema": _STRING,
            "description": "Unix seconds when the request was signed; reject old ones",
        },
        {
            "name": SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
            "description": "sha256=HEX: HMAC-SHA256 of TIMESTAMP + '.' + body, keyed by "
            "IVR_WEBHOOK_SECRET",
        },
    ]
    return {
        "notificationResult": {
            "post": {
                "summary": "A notification became final (POSTed to its callback_url)",
                "parameters": headers,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Notification")}},
                },
                "responses": {
                    "2XX": {"description": "received; anything else is retried with backoff"}
                },
            }
        }
    }


@functools.cache
def document() -> dict[str, Any]:
    # Imported here: openapi_campaigns builds on this module's helpers.
    from ivr.web import openapi_campaigns

    _, definitions = models_json_schema(
        [(model, "validation") for model in REQUEST_MODELS],
        ref_template="#/components/schemas/{model}",
        schema_generator=_ApiJsonSchema,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IVR outbound notifications and campaigns API",
            "version": "1",
            "description": "Reminder and notice calls with SMS fallback. Every route except "
            "this document needs `Authorization: Bearer <IVR_API_TOKEN>`. Result webhooks "
            f"carry {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} (see webhooks).",
        },
        "security": [{"bearer": []}],
        "paths": {**_paths(), **openapi_campaigns.paths()},
        "webhooks": _webhooks(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **definitions["$defs"],
                **_response_schemas(),
                **openapi_campaigns.schemas(),
            },
            "responses": _COMMON_RESPONSES,
        },
    }
