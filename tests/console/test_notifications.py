"""A notification's page: its calls as timelines with playable prompts, SMS and webhooks; and
what callers and integrators typed shown as text, never run as markup."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By

from ivr.dialplan.vocabulary import Listen, NoInput, SpeechRecognized
from ivr.telephony.simulator import Persona, SimulatorSettings
from tests.console.conftest import Browser, ConsoleServer, Receiver
from tests.console.support import confirms_by_voice, notify, wait_done, wait_until

AUDIO_STATE = """
const audio = document.querySelector(arguments[0]);
return audio ? [audio.readyState, audio.duration, audio.error && audio.error.code] : null;
"""


def test_a_transcript_reads_as_a_timeline_and_its_prompt_plays(
    signed_in: Browser, console: ConsoleServer, results: Receiver
) -> None:
    ann = notify(console, "+12025550121", confirms_by_voice("yes"), callback_url=results.url)
    dan = notify(console, "+12025550122", Persona.machine(), name="Dan", callback_url=results.url)
    assert wait_done(console, ann)["outcome"] == "confirmed"
    assert wait_done(console, dan)["outcome"] == "voicemail"

    async def reported_and_texted() -> bool:
        docs = [await console.notifications.get(ref) for ref in (ann, dan)]
        hooks = [d["status"] for doc in docs if doc for d in doc["webhook_deliveries"]]
        sms = [m["status"] for m in docs[1]["sms"]] if docs[1] else []
        return hooks == ["delivered", "delivered"] and sms == ["delivered"]

    wait_until(console, reported_and_texted, "both result webhooks and Dan's SMS delivered")

    signed_in.open("/console/notifications?status=done")
    signed_in.wait_text("#notifications", "Dan")
    signed_in.shot("notifications-done")
    rows = signed_in.find_all("#notifications tbody tr")
    assert len(rows) == 2
    signed_in.find(f"tr[data-notification='{ann}'] a").click()
    signed_in.wait_text("h1", "Ann")
    signed_in.wait_text("#notification-outcome", "confirmed")

    timeline = signed_in.text_of(".attempt .timeline")
    assert "Hello Ann. This is Sunrise Clinic." in timeline
    assert "greet → ask" in timeline
    assert "ask → confirmed" in timeline
    # The last answer is the one understood (a misheard first try would come before it).
    caller = signed_in.find_all(".timeline li.caller")[-1]
    assert "understood as confirm" in caller.text
    confidence = float(caller.find_element(By.CSS_SELECTOR, ".confidence").text)
    assert 0 < confidence <= 1
    assert "in-progress" in timeline
    assert "completed" in timeline
    signed_in.wait_text("#webhooks", "delivered")
    signed_in.shot("notification-timeline")

    # The first prompt's player: its audio is rendered for the browser and loads.
    first = ".timeline li.robot audio"
    signed_in.driver.execute_script("document.querySelector(arguments[0]).play();", first)

    def loaded(driver: Any) -> list[float] | None:
        state = driver.execute_script(AUDIO_STATE, first)
        assert state is not None, "no audio element"
        assert state[2] is None, f"the audio failed to load (MediaError {state[2]})"
        return state if state[0] >= 1 and state[1] > 0 else None

    _, duration, _ = signed_in.wait_for(loaded, "the prompt's audio to load")
    assert duration > 2  # the greeting is a sentence, not a click
    assert signed_in.console_errors() == []

    # Dan's answering machine: a voicemail, then the fallback SMS with its delivery status.
    signed_in.open(f"/console/notifications/{dan}")
    signed_in.wait_text("#sms", "Hi Dan, Sunrise Clinic reminds you of your visit")
    signed_in.wait_text("#sms", "delivered")
    assert "machine" in signed_in.text_of(".attempt h3")
    signed_in.shot("notification-sms")


class ScriptedAnswer:
    """Speech recognition that hears one fixed text: what a caller could make a real
    recognizer return in a free-form answer (the console must show it as text)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def supports(self, language: str) -> bool:
        return language.startswith("en")

    async def recognize(self, wav: bytes, listen: Listen) -> SpeechRecognized | NoInput:  # noqa: ARG002
        return SpeechRecognized(self.text, 0.87)


NAME = '<script>window.__pwned = "name";</script><img src=x onerror="window.__pwned=1">Zoe'
SPOKEN = '<script>window.__pwned = "answer";</script> yes'


@pytest.mark.console_server(recognizer=ScriptedAnswer(SPOKEN))
def test_what_callers_and_integrators_typed_is_shown_as_text(
    signed_in: Browser, console: ConsoleServer
) -> None:
    signed_in.open("/console/calls")
    signed_in.wait_for(
        lambda d: "on" in d.find_element(By.ID, "live-status").get_attribute("class"),
        "the live stream to connect",
    )
    console.call(lambda: setattr(console.simulator, "settings", SimulatorSettings(pace=0.5)))
    ref = notify(console, "+12025550131", confirms_by_voice("yes"), name=NAME)
    # The live table (built by script from the event stream) shows the name as text.
    shown = signed_in.wait_text("#live-calls .who-name", "Zoe")
    assert NAME in shown
    signed_in.shot("live-call-script-name")
    assert signed_in.driver.execute_script("return window.__pwned;") is None
    console.call(lambda: setattr(console.simulator, "settings", SimulatorSettings(pace=0.05)))
    wait_done(console, ref)

    signed_in.open("/console/notifications")
    assert NAME in signed_in.wait_text("#notifications .who-name", "Zoe")
    signed_in.open(f"/console/notifications/{ref}")
    assert signed_in.text_of("#person-name") == NAME
    assert NAME in signed_in.text_of("#variables")
    caller = signed_in.wait_text(".timeline li.caller", "window.__pwned")
    assert SPOKEN in caller
    assert f"Hello {NAME}." in signed_in.text_of(".timeline")
    signed_in.shot("transcript-script-answer")
    # Nothing ran and nothing was injected: the only scripts are the console's own files.
    assert signed_in.driver.execute_script("return window.__pwned;") is None
    assert signed_in.find_all("img") == []
    sources = [s.get_attribute("src") for s in signed_in.find_all("script")]
    assert all("/console/static/" in (src or "") for src in sources), sources
    assert signed_in.console_errors() == []
