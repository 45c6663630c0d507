"""The live calls page follows calls placed through the simulator without reloading."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import Persona, SimulatorSettings
from tests.console.conftest import Browser, ConsoleServer
from tests.console.support import notify, wait_done


def test_a_call_shows_up_live_with_its_state_and_leaves_when_it_ends(
    signed_in: Browser, console: ConsoleServer
) -> None:
    signed_in.open("/console/calls")
    signed_in.wait_text("#live-calls", "No calls under way")
    signed_in.wait_for(
        lambda d: "on" in d.find_element(By.ID, "live-status").get_attribute("class"),
        "the live stream to connect",
    )
    # A marker on the page: it must survive every update (the page is never reloaded).
    signed_in.driver.execute_script("window.__notReloaded = true;")
    # At half the real pace the call rings ~2 s and talks for several seconds: long enough
    # for each state to be seen by a stream that polls every second, on any machine.
    console.call(lambda: setattr(console.simulator, "settings", SimulatorSettings(pace=0.5)))
    persona = Persona.person(Turn(press="1"), ring_seconds=4, barge_in_after=None)
    ref = notify(console, "+12025550111", persona, name="Bea")

    row = "#live-calls tr[data-call]"
    signed_in.wait_text(row, "Bea")
    signed_in.wait_text(row, "+12025550111")
    signed_in.wait_text(row, "appointment_reminder")
    signed_in.shot("live-call-ringing")
    signed_in.wait_text(row, "in-progress")
    signed_in.wait_text(row, "ask")  # the plan's state while the robot waits for an answer
    signed_in.shot("live-call-in-progress")
    assert signed_in.text_of("#calls-total").startswith("1 call under way")

    doc = wait_done(console, ref)
    assert doc["outcome"] == "confirmed"
    signed_in.wait_text("#live-calls", "No calls under way")
    assert signed_in.driver.execute_script("return window.__notReloaded === true;")
    assert int(signed_in.find("#live-status").get_attribute("data-updates")) >= 3
    assert signed_in.console_errors() == []
