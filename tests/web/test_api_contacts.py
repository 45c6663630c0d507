"""``/api/v1/contacts`` and ``/api/v1/do-not-call`` over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpServer

from tests.web.api_client import ANNA, BORIS, Api, running_api

ENCODED = f"%2B{ANNA[1:]}"  # +12025550142 as a careful client writes it in a path
RAW = ANNA  # as is: "+" is a plain character in a path
AS_SPACE = f"%20{ANNA[1:]}"  # what a "+" becomes when something decodes the path as a form


@pytest.fixture
async def api(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Api]:
    async with running_api(tmp_path, aiohttp_server) as running:
        yield running


def _categories(contact: dict[str, object]) -> dict[str, object]:
    opt_outs = contact["opt_outs"]
    assert isinstance(opt_outs, list)
    return {row["category"]: (row["source"], row["reason"]) for row in opt_outs}


async def test_a_number_never_seen_has_the_defaults(api: Api) -> None:
    reply = await api.call("GET", f"/api/v1/contacts/{ENCODED}")
    assert reply.status == 200
    assert reply.body == {
        "number": ANNA,
        "timezone": None,
        "multiple_channels": False,
        "do_not_call": False,
        "do_not_call_reason": None,
        "opt_outs": [],
    }


async def test_preferences_round_trip_whichever_way_the_plus_is_written(api: Api) -> None:
    preferences = {
        "timezone": "Europe/Moscow",
        "categories": {
            "marketing": {"opt_out": True, "reason": "too many calls"},
            "news": {"opt_out": False},
        },
        "multiple_channels": True,
    }
    reply = await api.call("PUT", f"/api/v1/contacts/{ENCODED}/preferences", json=preferences)
    assert reply.status == 200, reply.body
    assert reply.body["number"] == ANNA
    assert reply.body["timezone"] == "Europe/Moscow"
    assert reply.body["multiple_channels"] is True
    assert _categories(reply.body) == {"marketing": ("api", "too many calls")}
    assert reply.body["opt_outs"][0]["since"].endswith("+00:00")
    for path in (RAW, ENCODED, AS_SPACE):
        shown = await api.call("GET", f"/api/v1/contacts/{path}")
        assert (shown.status, shown.body) == (200, reply.body), path
    async with api.store.read() as tx:
        assert await tx.opt_outs.is_opted_out(ANNA, "marketing")
        assert not await tx.opt_outs.is_opted_out(ANNA, "news")

    # Only what a request names changes; a raw "+" and a decoded space reach the same contact.
    await api.call("PUT", f"/api/v1/contacts/{RAW}/preferences", json={"multiple_channels": False})
    cleared = await api.call(
        "PUT", f"/api/v1/contacts/{AS_SPACE}/preferences", json={"timezone": None}
    )
    assert cleared.status == 200
    assert (cleared.body["timezone"], cleared.body["multiple_channels"]) == (None, False)
    assert _categories(cleared.body) == {"marketing": ("api", "too many calls")}


async def test_opt_out_then_back_in(api: Api) -> None:
    path = f"/api/v1/contacts/{ENCODED}/preferences"
    out = {"categories": {"news": {"opt_out": True}, "*": {"opt_out": True, "reason": "all"}}}
    assert _categories((await api.call("PUT", path, json=out)).body) == {
        "*": ("api", "all"),
        "news": ("api", None),
    }
    back = {"categories": {"news": {"opt_out": False}, "*": {"opt_out": False}}}
    reply = await api.call("PUT", path, json=back)
    assert reply.body["opt_outs"] == []
    async with api.store.read() as tx:
        assert not await tx.opt_outs.is_opted_out(ANNA, "news")


@pytest.mark.parametrize(
    ("preferences", "field"),
    [
        ({"categories": {"appointment": {"opt_out": True}}}, "categories.appointment"),
        ({"categories": {"transactional": {"opt_out": True}}}, "categories.transactional"),
        ({"timezone": "Moon/Tranquility"}, "timezone"),
        ({"timezone": "localtime"}, "timezone"),
        ({"categories": {"no spaces": {"opt_out": True}}}, "categories.no spaces"),
        ({"categories": {"news": {"opt_out": "yes"}}}, "categories.news.opt_out"),
        ({"categories": {"news": {}}}, "categories.news.opt_out"),
        ({"multiple_channels": "sure"}, "multiple_channels"),
        ({"time_zone": "Europe/Moscow"}, "time_zone"),
    ],
)
async def test_preferences_that_cannot_apply_are_422_and_change_nothing(
    api: Api, preferences: dict[str, object], field: str
) -> None:
    # Valid parts of the same request are not applied either.
    body = {"multiple_channels": True, **preferences}
    reply = await api.call("PUT", f"/api/v1/contacts/{ENCODED}/preferences", json=body)
    assert reply.status == 422
    assert [error["field"] for error in reply.body["errors"]] == [field]
    contact = (await api.call("GET", f"/api/v1/contacts/{ENCODED}")).body
    assert (contact["multiple_channels"], contact["opt_outs"]) == (False, [])


async def test_transactional_message_names_the_category(api: Api) -> None:
    body = {"categories": {"delivery": {"opt_out": True}, "marketing": {"opt_out": True}}}
    reply = await api.call("PUT", f"/api/v1/contacts/{ENCODED}/preferences", json=body)
    assert reply.status == 422
    (error,) = reply.body["errors"]
    assert error["field"] == "categories.delivery"
    assert "transactional" in error["message"]
    # Opting in to a transactional category is harmless: it is always delivered anyway.
    opt_in = {"categories": {"delivery": {"opt_out": False}}}
    reply = await api.call("PUT", f"/api/v1/contacts/{ENCODED}/preferences", json=opt_in)
    assert reply.status == 200


@pytest.mark.parametrize("number", ["12025550142", "+1555", "%2Bcall-me", "%2B1%20555%200100"])
async def test_a_bad_number_in_the_path_is_422(api: Api, number: str) -> None:
    for method, path, body in (
        ("GET", f"/api/v1/contacts/{number}", None),
        ("PUT", f"/api/v1/contacts/{number}/preferences", {}),
        ("PUT", f"/api/v1/do-not-call/{number}", None),
    ):
        reply = await api.call(method, path, json=body)
        assert reply.status == 422, (method, path)
        assert [error["field"] for error in reply.body["errors"]] == ["number"]


async def test_malformed_preferences_are_400(api: Api) -> None:
    reply = await api.call("PUT", f"/api/v1/contacts/{ENCODED}/preferences", data="{timezone")
    assert reply.status == 400
    assert "JSON" in reply.body["error"]


async def test_do_not_call_list(api: Api) -> None:
    assert (await api.call("GET", "/api/v1/do-not-call")).body == {"items": []}
    added = await api.call("PUT", f"/api/v1/do-not-call/{ENCODED}", json={"reason": "asked"})
    assert added.status == 200
    assert (added.body["do_not_call"], added.body["do_not_call_reason"]) == (True, "asked")
    no_body = await api.call("PUT", f"/api/v1/do-not-call/{BORIS}")
    assert (no_body.status, no_body.body["do_not_call"]) == (200, True)
    assert (await api.call("GET", "/api/v1/do-not-call")).body == {
        "items": [{"number": ANNA, "reason": "asked"}, {"number": BORIS, "reason": None}]
    }
    assert (await api.call("GET", f"/api/v1/contacts/{RAW}")).body["do_not_call"] is True

    removed = await api.call("DELETE", f"/api/v1/do-not-call/{AS_SPACE}")
    assert removed.status == 200
    assert (removed.body["do_not_call"], removed.body["do_not_call_reason"]) == (False, None)
    # A repeated DELETE (a retry) is still a 200.
    assert (await api.call("DELETE", f"/api/v1/do-not-call/{ENCODED}")).status == 200
    assert (await api.call("GET", "/api/v1/do-not-call")).body == {
        "items": [{"number": BORIS, "reason": None}]
    }
    bad = await api.call("PUT", f"/api/v1/do-not-call/{ENCODED}", json={"why": "x"})
    assert [error["field"] for error in bad.body["errors"]] == ["why"]
