"""One calling-hours variable: the optional window follows ``IVR_CALL_WINDOW`` unless it is set.

Setting only ``IVR_CALL_WINDOW`` must start the server (it used to stop on the default optional
window lying outside it); two explicit settings that conflict still stop it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from pytest_aiohttp import AiohttpServer

from ivr.config import ConfigError, load_settings
from ivr.outbound.policy import (
    CallAt,
    CallNow,
    ContactFacts,
    NotificationFacts,
    decide,
    parse_call_window,
)
from ivr.outbound.policy_hours import CallWindow, clip_window
from ivr.web.app import AppParts, create_app
from tests.conftest import DIALPLANS


def optional_window(env: dict[str, str]) -> str:
    window = load_settings(env).policy().optional_call_window
    assert window is not None
    return str(window)


@pytest.mark.parametrize(
    ("call_window", "optional"),
    [
        ("09:00-21:00", "10:00-20:00"),  # the defaults: the optional one lies inside
        ("12:00-22:00", "12:00-20:00"),  # overlapping: the default clipped to the call window
        ("08:00-11:30", "10:00-11:30"),
        ("00:00-24:00", "10:00-20:00"),
        ("21:00-23:00", "21:00-23:00"),  # no overlap: the call window itself
        ("20:00-02:00", "20:00-02:00"),  # 20:00 is the default's (exclusive) end: no overlap
        ("17:00-12:00", "17:00-20:00"),  # two pieces (10-12, 17-20): the longer one
        ("19:00-11:00", "10:00-11:00"),  # two equal pieces: the earlier one
    ],
)
def test_unset_optional_window_follows_the_call_window(call_window: str, optional: str) -> None:
    assert optional_window({"IVR_CALL_WINDOW": call_window}) == optional


def test_an_explicit_optional_window_is_kept() -> None:
    env = {"IVR_CALL_WINDOW": "08:00-22:00", "IVR_OPTIONAL_CALL_WINDOW": "09:00-12:00"}
    assert optional_window(env) == "09:00-12:00"


@pytest.mark.parametrize(
    "env",
    [
        {"IVR_CALL_WINDOW": "21:00-23:00", "IVR_OPTIONAL_CALL_WINDOW": "10:00-20:00"},
        {"IVR_CALL_WINDOW": "09:00-17:00", "IVR_OPTIONAL_CALL_WINDOW": "16:00-18:00"},
    ],
)
def test_two_explicit_windows_that_conflict_still_stop_start_up(env: dict[str, str]) -> None:
    optional = env["IVR_OPTIONAL_CALL_WINDOW"]
    with pytest.raises(ConfigError, match=f"optional calling window {optional} is not inside"):
        load_settings(env)


def test_a_bad_optional_window_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="IVR_OPTIONAL_CALL_WINDOW: bad calling window"):
        load_settings({"IVR_OPTIONAL_CALL_WINDOW": "late"})


def test_clip_window_is_inside_both() -> None:
    windows = ["09:00-21:00", "21:00-23:00", "20:00-02:00", "19:00-11:00", "00:00-24:00"]
    for a in windows:
        for b in windows:
            clipped = clip_window(parse_call_window(a), parse_call_window(b))
            if clipped is None:
                assert not parse_call_window(a).minutes & parse_call_window(b).minutes
                continue
            assert parse_call_window(a).covers(clipped), (a, b, clipped)
            assert parse_call_window(b).covers(clipped), (a, b, clipped)
    assert clip_window(CallWindow(0, 1440), CallWindow(0, 1440)) == CallWindow(0, 1440)


def test_an_optional_notice_at_night_is_called_in_the_night_window() -> None:
    policy = load_settings({"IVR_CALL_WINDOW": "21:00-23:00"}).policy()
    notice = NotificationFacts(to="+12025550123", category="marketing", timezone="UTC")
    at_22 = datetime(2026, 6, 12, 22, 0, tzinfo=UTC)
    assert isinstance(decide(notice, ContactFacts(), policy, at_22), CallNow)
    later = decide(notice, ContactFacts(), policy, datetime(2026, 6, 12, 15, 0, tzinfo=UTC))
    assert isinstance(later, CallAt)
    assert later.at == datetime(2026, 6, 12, 21, 0, tzinfo=UTC)


async def test_start_up_with_only_the_call_window_set_logs_both_windows(
    tmp_path: Path, aiohttp_server: AiohttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    settings = load_settings(
        {
            "IVR_CALL_WINDOW": "21:00-23:00",
            "IVR_DATABASE_URL": f"sqlite:///{tmp_path}/ivr.db",
            "IVR_DIALPLANS": str(DIALPLANS),
            "IVR_AUDIO_DIR": str(tmp_path / "audio"),
            "IVR_VAR_DIR": str(tmp_path / "var"),
        }
    )
    parts = AppParts(recognizer=None, background=False, warm_up=False)
    with caplog.at_level(logging.INFO, logger="ivr.web.app"):
        server = await aiohttp_server(create_app(settings, url, parts))
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/healthz")) as answer:
        assert answer.status == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "ivr.web.app"]
    assert (
        "calling window 21:00-23:00 (transactional), 21:00-23:00 for optional categories "
        "(following IVR_CALL_WINDOW)"
    ) in logged
