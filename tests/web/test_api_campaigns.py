"""``/api/v1/campaigns`` over real HTTP (no scheduler: notifications stay as the API left them)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpServer
from yarl import URL

from ivr.web.api_campaigns import MAX_CAMPAIGN_BYTES
from tests.web.api_client import ANNA, BORIS, REMINDER, TOKEN, Api, Reply, running_api

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CSV = (
    "to,name,clinic,var.when,idempotency\n"
    f"{ANNA},Anna,Sunrise Clinic,2031-11-24T10:00,appt-1\n"
    f"{BORIS},Boris,Sunrise Clinic,2031-11-24T11:00,appt-2\n"
)


@pytest.fixture
async def api(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Api]:
    async with running_api(tmp_path, aiohttp_server) as running:
        yield running


def campaign(**fields: Any) -> dict[str, Any]:
    rows = [{"to": ANNA, "variables": REMINDER}, {"to": BORIS, "variables": REMINDER}]
    return {"name": "November", "plan": "appointment_reminder", "rows": rows, **fields}


async def upload(
    api: Api, body: str | bytes, content_type: str = "text/csv", **query: str
) -> Reply:
    params = {"name": "From a file", "plan": "appointment_reminder", **query}
    async with api.http.post(
        URL(api.url + "/api/v1/campaigns").with_query(params),
        data=io.BytesIO(body.encode() if isinstance(body, str) else body),
        headers={**AUTH, "Content-Type": content_type},
    ) as response:
        document = await response.json() if response.content_type == "application/json" else None
        return Reply(response.status, document, dict(response.headers))


async def test_create_show_list(api: Api) -> None:
    reply = await api.call(
        "POST", "/api/v1/campaigns", json=campaign(calls_per_second=2, window="10:00-18:00")
    )
    assert reply.status == 201, reply.body
    created = reply.body
    assert reply.headers["Location"] == f"/api/v1/campaigns/{created['id']}"
    assert created["state"] == "active"
    assert created["window"] == "10:00-18:00"
    assert created["calls_per_second"] == 2
    assert created["progress"] == {"total": 2, "by_status": {"scheduled": 2}, "by_outcome": {}}
    shown = await api.call("GET", f"/api/v1/campaigns/{created['id']}")
    assert shown.body == created
    listed = await api.call("GET", "/api/v1/campaigns")
    assert listed.body == {"items": [created], "total": 1, "next_offset": None}
    # The notifications are ordinary notifications too.
    notifications = await api.call("GET", "/api/v1/notifications")
    assert sorted(n["to"] for n in notifications.body["items"]) == [ANNA, BORIS]


async def test_list_pages_newest_first(api: Api) -> None:
    ids = []
    for number in range(3):
        reply = await api.call("POST", "/api/v1/campaigns", json=campaign(name=f"c{number}"))
        ids.append(reply.body["id"])
    first = await api.call("GET", "/api/v1/campaigns?limit=2")
    assert [c["id"] for c in first.body["items"]] == ids[::-1][:2]
    assert first.body["next_offset"] == 2
    second = await api.call("GET", "/api/v1/campaigns?limit=2&offset=2")
    assert [c["id"] for c in second.body["items"]] == [ids[0]]
    assert second.body["next_offset"] is None
    bad = await api.call("GET", "/api/v1/campaigns?limit=0")
    assert bad.status == 422
    assert bad.body["errors"][0]["field"] == "limit"


async def test_row_errors_are_422_naming_row_and_field(api: Api) -> None:
    body = campaign()
    body["rows"].append({"to": "+1", "variables": {**REMINDER, "when": "someday"}})
    reply = await api.call("POST", "/api/v1/campaigns", json=body)
    assert reply.status == 422
    assert [(e["row"], e["field"]) for e in reply.body["errors"]] == [(3, "to")]
    body["rows"][2]["to"] = "+12025550144"
    reply = await api.call("POST", "/api/v1/campaigns", json=body)
    assert [(e["row"], e["field"]) for e in reply.body["errors"]] == [(3, "variables.when")]
    assert (await api.call("GET", "/api/v1/campaigns")).body["total"] == 0


async def test_campaign_fields_are_422_naming_the_field(api: Api) -> None:
    reply = await api.call(
        "POST", "/api/v1/campaigns", json=campaign(plan="nope", window="9-5", rows=[])
    )
    assert reply.status == 422
    assert {e["field"] for e in reply.body["errors"]} == {"rows"}
    reply = await api.call("POST", "/api/v1/campaigns", json=campaign(plan="nope", window="9-5"))
    assert {e["field"] for e in reply.body["errors"]} == {"plan", "window"}
    reply = await api.call("POST", "/api/v1/campaigns", json={"name": "x", "rows": [{}]})
    assert {e["field"] for e in reply.body["errors"]} == {"plan"}


async def test_bad_bodies(api: Api) -> None:
    assert (await api.call("POST", "/api/v1/campaigns", data="")).status == 400
    assert (await api.call("POST", "/api/v1/campaigns", data="{oops")).status == 400
    assert (await upload(api, "a,b", content_type="application/xml")).status == 415
    assert (await upload(api, b"x" * (MAX_CAMPAIGN_BYTES + 1))).status == 413
    unauthorized = await api.call("POST", "/api/v1/campaigns", json=campaign(), token=None)
    assert unauthorized.status == 401


async def test_idempotency(api: Api) -> None:
    body = campaign(idempotency_key="nov-2031")
    first = await api.call("POST", "/api/v1/campaigns", json=body)
    again = await api.call("POST", "/api/v1/campaigns", json=body)
    assert (first.status, again.status) == (201, 200)
    assert again.body["id"] == first.body["id"]
    other = await api.call("POST", "/api/v1/campaigns", json={**body, "name": "changed"})
    assert other.status == 409
    assert other.body["campaign"]["id"] == first.body["id"]
    assert (await api.call("GET", "/api/v1/campaigns")).body["total"] == 1


async def test_csv_upload(api: Api) -> None:
    reply = await upload(api, CSV, idempotency_key="file-1")
    assert reply.status == 201, reply.body
    assert reply.body["progress"]["total"] == 2
    assert (await upload(api, CSV, idempotency_key="file-1")).status == 200
    # The rows' idempotency keys are taken now: the same file as a new campaign is refused.
    again = await upload(api, CSV)
    assert again.status == 422
    assert [(e["row"], e["field"]) for e in again.body["errors"]] == [
        (2, "idempotency"),
        (3, "idempotency"),
    ]


async def test_hostile_csv_is_refused_whole(api: Api) -> None:
    hostile = (
        "to,name,clinic,when\n"
        f"{ANNA},Anna,Clinic,2031-11-24T10:00\n"
        "=cmd|' /C calc'!A0,Eve,Clinic,2031-11-24T10:00\n"
        f"{BORIS},<script>alert(1)</script>,Clinic,2031-11-24T10:00\n"
        f"{BORIS},Bob,{'x' * 2000},2031-11-24T10:00\n"
        ",Nobody,Clinic,2031-11-24T10:00\n"
    )
    reply = await upload(api, hostile)
    assert reply.status == 422
    assert [(e["row"], e["field"]) for e in reply.body["errors"]] == [
        (3, "to"), (4, "name"), (5, "clinic"), (6, "to"),
    ]  # fmt: skip
    latin1 = await upload(api, "to,name,clinic,when\n+12025550142,Jos\xe9,C,x\n".encode("latin-1"))
    assert latin1.status == 422
    assert latin1.body["errors"] == [
        {"row": 2, "field": "file", "message": latin1.body["errors"][0]["message"]}
    ]
    assert "not UTF-8" in latin1.body["errors"][0]["message"]
    missing = await upload(api, CSV, name="")
    assert missing.status == 422
    assert missing.body["errors"][0]["field"] == "name"
    assert (await api.call("GET", "/api/v1/campaigns")).body["total"] == 0


async def test_pause_resume_cancel(api: Api) -> None:
    created = (await api.call("POST", "/api/v1/campaigns", json=campaign())).body
    path = f"/api/v1/campaigns/{created['id']}"
    assert (await api.call("POST", path + "/pause")).body["state"] == "paused"
    assert (await api.call("POST", path + "/resume")).body["state"] == "active"
    cancelled = await api.call("POST", path + "/cancel")
    assert cancelled.body["state"] == "cancelled"
    assert cancelled.body["progress"]["by_status"] == {"cancelled": 2}
    refused = await api.call("POST", path + "/resume")
    assert refused.status == 409
    assert "cancelled" in refused.body["error"]
    assert (await api.call("POST", "/api/v1/campaigns/nope/pause")).status == 404
    assert (await api.call("GET", "/api/v1/campaigns/nope")).status == 404


async def test_export(api: Api) -> None:
    rows = [{"to": ANNA, "variables": {**REMINDER, "name": '=HYPERLINK("http://x")'}}]
    created = (await api.call("POST", "/api/v1/campaigns", json=campaign(rows=rows))).body
    async with api.http.get(
        api.url + f"/api/v1/campaigns/{created['id']}/export.csv", headers=AUTH
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        text = await response.text()
    header, row = list(csv.reader(io.StringIO(text)))
    record = dict(zip(header, row, strict=True))
    assert record["to"] == "'" + ANNA
    assert record["status"] == "scheduled"
    assert record["var.name"] == '\'=HYPERLINK("http://x")'
    assert record["last_call_at"] == ""
    missing = await api.call("GET", "/api/v1/campaigns/nope/export.csv")
    assert missing.status == 404
