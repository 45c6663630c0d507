"""The scenario runner reports what went wrong, and lookups really go over HTTP."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import pytest

from ivr.dialplan.loader import PlanLoadError, PlanSet
from ivr.dialplan.variables import VariableError
from ivr.dialplan.vocabulary import Lookup
from ivr.integrations.lookups import async_http_lookup, http_lookup, result_from_response
from ivr.simulation.runner import ScenarioError, run_scenario
from ivr.simulation.scenario import Scenario, load_scenario

ANNA = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"}


def scenario(**fields: object) -> Scenario:
    return Scenario.model_validate({"plan": "appointment_reminder", "name": "t", **fields})


def test_wrong_intent_outcome_and_prompt_are_reported(shipped_plans: PlanSet) -> None:
    s = scenario(
        variables=ANNA,
        turns=[{"expect": "Hello Bob", "say": "yes", "intent": "cancel"}],
        expect={"outcome": "cancelled", "end": "transfer", "sms": ["anything"]},
    )
    result = run_scenario(shipped_plans.plans["appointment_reminder"], s)
    assert result.failures == [
        "turn 1: expected the robot to say 'Hello Bob'",
        "turn 1: expected intent 'cancel', got 'confirm'",
        "expected outcome 'cancelled', got 'confirmed'",
        "expected the call to end by transfer, got hangup",
        "expected an SMS containing 'anything', got []",
    ]
    assert not result.passed


def test_turn_after_the_end_and_unexpected_sms(shipped_plans: PlanSet) -> None:
    s = scenario(
        variables=ANNA,
        turns=[{"silence": True}, {"silence": True}, {"silence": True}, {"press": "1"}],
        expect={"sms": [], "states": ["ask", "confirmed"]},
    )
    failures = run_scenario(shipped_plans.plans["appointment_reminder"], s).failures
    assert failures[0] == "turn 4: the call already ended (hangup)"
    assert failures[1].startswith("expected no SMS, got ['Sunrise Clinic: your visit")
    assert failures[2].startswith("expected states ['ask', 'confirmed'] in order")


def test_script_that_stops_early_hangs_up_for_the_caller(shipped_plans: PlanSet) -> None:
    result = run_scenario(shipped_plans.plans["appointment_reminder"], scenario(variables=ANNA))
    assert result.call.session.end_reason == "caller_hangup"
    assert result.call.lines[-1].text == "hangs up (end of script)"


def test_variables_override_and_are_checked(shipped_plans: PlanSet) -> None:
    plan = shipped_plans.plans["appointment_reminder"]
    result = run_scenario(plan, scenario(variables=ANNA), variables={"name": "Bob"})
    assert "Hello Bob." in result.call.lines[1].text
    with pytest.raises(VariableError) as err:
        run_scenario(plan, scenario(variables={**ANNA, "when": "tomorrow"}))
    assert "when" in err.value.problems


def test_audio_turn_needs_the_speech_engines(shipped_plans: PlanSet) -> None:
    s = scenario(variables=ANNA, turns=[{"audio": "1_jackson_0.wav"}])
    with pytest.raises(ScenarioError, match="--audio"):
        run_scenario(shipped_plans.plans["appointment_reminder"], s)


def test_unscripted_lookup_is_a_failure(shipped_plans: PlanSet) -> None:
    s = Scenario.model_validate(
        {
            "plan": "order_status_line",
            "name": "t",
            "lookups": [],
            "turns": [{"press": "1"}, {"press": "4207#"}],
        }
    )
    result = run_scenario(shipped_plans.plans["order_status_line"], s)
    assert "1 lookup(s) had no scripted answer" in result.failures
    assert "lookup_failed" in result.call.states


def test_scenario_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("plan: x\nname: y\nturns:\n  - say: hi\n    press: '1'\n  - bogus: 1\n")
    with pytest.raises(PlanLoadError) as err:
        load_scenario(path)
    text = str(err.value)
    assert f"{path}:4: scenario: turns.0: a turn does one thing" in text
    assert f"{path}:6: scenario: unknown field 'bogus'" in text


RELEASE_SLOW = threading.Event()


class _Orders(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/orders/4207"):
            self._send(200, json.dumps({"status": "shipped"}).encode())
        elif self.path.startswith("/orders/slow"):
            # Hangs until the module's tests are done: only the client's timeout can end the
            # wait, so an "error" answer proves the timeout fired, on any machine.
            RELEASE_SLOW.wait(60)
            self._send(200, b"{}")
        elif self.path.startswith("/orders/broken"):
            self._send(200, b"<html>")
        elif self.path.startswith("/orders/list"):
            self._send(200, b"[1, 2]")
        elif self.path.startswith("/orders/crash"):
            self._send(500, b"{}")
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(200, json.dumps({"echo": body, "type": self.headers["Content-Type"]}).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # In the slow case the client has given up waiting, as the test intends.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        del args


@pytest.fixture(scope="module")
def orders_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Orders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    RELEASE_SLOW.set()
    server.shutdown()
    server.server_close()


def test_order_line_looks_up_over_real_http(shipped_plans: PlanSet, orders_api: str) -> None:
    s = Scenario.model_validate(
        {
            "plan": "order_status_line",
            "name": "live",
            "turns": [{"press": "1"}, {"say": "four two oh seven"}, {"say": "goodbye"}],
            "expect": {"outcome": "status_told", "said": ["Order four two zero seven is shipped"]},
        }
    )
    result = run_scenario(
        shipped_plans.plans["order_status_line"], s, variables={"orders_api": orders_api}
    )
    assert result.failures == []
    lookup = next(line for line in result.call.lines if line.kind == "lookup")
    assert lookup.data == {
        "url": f"{orders_api}/orders/4207",
        "status": "ok",
        "data": {"status": "shipped"},
    }


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/orders/4207", "ok", None),
        ("/orders/9999", "not_found", None),
        ("/orders/crash", "error", "HTTP 500"),
        ("/orders/broken", "error", "the answer is not JSON"),
        ("/orders/list", "error", "the answer is not a JSON object"),
    ],
)
def test_http_lookup_results(orders_api: str, path: str, status: str, reason: str | None) -> None:
    result = http_lookup(Lookup("GET", orders_api + path, {"lang": "en"}, 2.0))
    assert result.status == status
    assert result.data.get("reason") == reason


def test_http_lookup_timeout_and_bad_url(orders_api: str) -> None:
    slow = http_lookup(Lookup("GET", orders_api + "/orders/slow", {}, 0.2))
    assert slow.status == "error"
    assert "timed out" in str(slow.data["reason"])
    assert http_lookup(Lookup("GET", "", {}, 1.0)).data["reason"] == "not an http(s) URL: ''"
    refused = http_lookup(Lookup("GET", "http://127.0.0.1:9/x", {}, 1.0))
    assert refused.status == "error"


def test_http_lookup_posts_json(orders_api: str) -> None:
    result = http_lookup(Lookup("POST", orders_api + "/orders", {"number": "4207"}, 2.0))
    assert result.data == {"echo": {"number": "4207"}, "type": "application/json"}


def test_result_from_response_accepts_any_2xx() -> None:
    assert result_from_response(201, b'{"a": 1}').data == {"a": 1}
    assert result_from_response(302, b"").status == "error"


async def test_async_lookup_follows_the_same_contract(orders_api: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path, status in [
            ("/orders/4207", "ok"),
            ("/orders/1", "not_found"),
            ("/orders/crash", "error"),
        ]:
            result = await async_http_lookup(session, Lookup("GET", orders_api + path, {}, 2.0))
            assert result == http_lookup(Lookup("GET", orders_api + path, {}, 2.0))
            assert result.status == status
        posted = await async_http_lookup(
            session, Lookup("POST", orders_api + "/o", {"n": "1"}, 2.0)
        )
        assert posted.data == {"echo": {"n": "1"}, "type": "application/json"}
        slow = await async_http_lookup(session, Lookup("GET", orders_api + "/orders/slow", {}, 0.2))
        assert slow.status == "error"  # the server never answers: the timeout ended it
        bad = await async_http_lookup(session, Lookup("GET", "ftp://x", {}, 1.0))
        assert bad.data == {"reason": "not an http(s) URL: 'ftp://x'"}
