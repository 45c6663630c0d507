"""The campaigns part of the OpenAPI document (openapi.py assembles it with the rest)."""

from __future__ import annotations

from ivr.outbound.campaign_csv import MAX_CELL_CHARS
from ivr.store import NotificationStatus
from ivr.web import openapi as base
from ivr.web.api_campaigns import CAMPAIGNS_PATH, CampaignPageQuery, CampaignQuery

Schema = base.Schema
_ID = base._path_parameter("id", "the campaign's id")
_STATES = ["active", "paused", "cancelled", "done"]


def schemas() -> dict[str, Schema]:
    count: Schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    return {
        "Campaign": base._object(
            {
                "id": base._STRING,
                "name": base._STRING,
                "plan": base._STRING,
                "state": {
                    "type": "string",
                    "enum": _STATES,
                    "description": "done: every notification has ended (a stored active or "
                    "paused campaign is shown done then)",
                },
                "calls_per_second": base._nullable({"type": "number"}),
                "window": {
                    **base._nullable(base._STRING),
                    "description": "HH:MM-HH:MM, the recipient's local time",
                },
                "idempotency_key": base._nullable(base._STRING),
                "created_at": base._TIME,
                "updated_at": base._TIME,
                "progress": base._object(
                    {
                        "total": {"type": "integer"},
                        "by_status": {
                            **count,
                            "description": ", ".join(s.value for s in NotificationStatus),
                        },
                        "by_outcome": {**count, "description": "confirmed, unreached, ..."},
                    }
                ),
            }
        ),
        "CampaignPage": base._object(
            {
                "items": {"type": "array", "items": base._ref("Campaign")},
                "total": {"type": "integer"},
                "next_offset": {
                    **base._nullable({"type": "integer"}),
                    "description": "pass as `offset` for the next page; null on the last page",
                },
            }
        ),
        "RowErrors": {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "row": {
                                "type": "integer",
                                "description": "from 1: the position in rows, or the CSV "
                                "line as a spreadsheet numbers it (header = 1); 0 for the file",
                            },
                            "field": {
                                "type": "string",
                                "description": "to, variables.when, a CSV column, row, file",
                            },
                            "message": base._STRING,
                        },
                        "required": ["field", "message"],
                    },
                },
                "more_errors": {"type": "integer", "description": "errors beyond the first 1000"},
            },
            "required": ["errors"],
        },
    }


def paths() -> dict[str, dict[str, Schema]]:
    campaign = base._json(base._ref("Campaign"), "the campaign")
    not_found = base._json(base._ref("Error"), "no such campaign")
    conflict = base._json(base._ref("Error"), "the campaign's state does not allow it")
    create = base._operation(
        "Create a campaign from rows (JSON) or a CSV file",
        {
            "201": {
                **base._json(base._ref("Campaign"), "created"),
                "headers": {"Location": {"schema": base._STRING}},
            },
            "200": base._json(
                base._ref("Campaign"),
                "the idempotency_key's earlier campaign (same request): nothing new is created",
            ),
            "409": base._json(
                base._ref("Error"), "the idempotency_key was used for another request"
            ),
            "422": base._json(
                base._ref("RowErrors"),
                "fields or rows that cannot be accepted; nothing was created",
            ),
        },
        body="CampaignRequest",
        parameters=base._query_parameters(CampaignQuery),
        description="All or nothing: any row error creates nothing. Each row is validated as "
        "POST /api/v1/notifications validates a request. As text/csv: a header row (to, "
        "variables as NAME or var.NAME, optional timezone, not_before/earliest, "
        "not_after/latest, category, idempotency_key, callback_url) and the query parameters "
        "name and plan; formulas (=, @, +/- not a number), markup, control characters and "
        f"cells over {MAX_CELL_CHARS} characters are row errors. 32 MiB at most.",
    )
    create["requestBody"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    create["responses"]["415"] = base._json(base._ref("Error"), "neither JSON nor CSV")
    create["responses"]["413"] = base._json(base._ref("Error"), "the body is over 32 MiB")

    def change(summary: str) -> Schema:
        return base._operation(
            summary,
            {"200": campaign, "404": not_found, "409": conflict},
            parameters=[_ID],
        )

    return {
        CAMPAIGNS_PATH: {
            "post": create,
            "get": base._operation(
                "List campaigns, newest first",
                {
                    "200": base._json(base._ref("CampaignPage"), "a page"),
                    "422": base._use("Invalid"),
                },
                parameters=base._query_parameters(CampaignPageQuery),
            ),
        },
        f"{CAMPAIGNS_PATH}/{{id}}": {
            "get": base._operation(
                "Show a campaign and its progress",
                {"200": campaign, "404": not_found},
                parameters=[_ID],
            ),
        },
        f"{CAMPAIGNS_PATH}/{{id}}/pause": {
            "post": change("Pause: no new calls; calls under way finish")
        },
        f"{CAMPAIGNS_PATH}/{{id}}/resume": {"post": change("Resume a paused campaign")},
        f"{CAMPAIGNS_PATH}/{{id}}/cancel": {
            "post": change("Cancel: pending notifications are cancelled, no call is placed later")
        },
        f"{CAMPAIGNS_PATH}/{{id}}/export.csv": {
            "get": base._operation(
                "The results as CSV, one row per notification",
                {
                    "200": {
                        "description": "id, to, status, outcome, attempts, last_call_at, "
                        "skipped_reason, var.NAME...; a cell a spreadsheet could run as a "
                        "formula is prefixed with '",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    "404": not_found,
                },
                parameters=[_ID],
            )
        },
    }
