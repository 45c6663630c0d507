"""Reports, plans and contacts in headless chromium: the chart and the graph are really drawn
(by the vendored Chart.js and Mermaid, under the strict CSP), try-it answers, do-not-call."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.console.conftest import Browser, ConsoleServer
from tests.store.report_data import insert_report_data


def _page_errors(browser: Browser) -> list[str]:
    """What the page logged as errors: a CSP violation or a script error fails the test.

    Except one kind: Mermaid sets style attributes while it draws, which the CSP blocks
    (style-src 'self', no inline styles) and Chromium logs once per attribute. The graph is
    styled by reports.css instead (the test checks a node's colour), so those are expected.
    """
    return [
        error
        for error in browser.console_errors()
        if not ("vendor/mermaid/mermaid.min.js" in error and "Applying inline style" in error)
    ]


def test_the_reports_chart_is_drawn(signed_in: Browser, console: ConsoleServer) -> None:
    async def fill() -> None:
        async with console.store.transaction() as tx:
            await insert_report_data(tx)

    console.run(fill())
    signed_in.open("/console/reports?since=2026-11-01&until=2026-11-03")
    signed_in.wait_for(
        lambda d: d.find_elements(By.CSS_SELECTOR, "canvas#outcomes-chart[data-rendered='1']"),
        "the outcomes chart",
    )
    signed_in.shot("reports")
    drawn = signed_in.driver.execute_script(
        "const chart = Chart.getChart(document.getElementById('outcomes-chart'));"
        "return chart ? [chart.data.labels, chart.data.datasets.map(d => d.label),"
        " chart.canvas.width > 0] : null;"
    )
    assert drawn is not None, "no Chart instance on the canvas"
    labels, series, has_size = drawn
    assert labels == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert series[:3] == ["confirmed", "cancelled", "opted_out"]
    assert has_size
    assert "57.1 %" in signed_in.text_of("#kpi-answer")
    assert _page_errors(signed_in) == []


def test_the_plan_graph_is_drawn_and_try_it_confirms(signed_in: Browser) -> None:
    signed_in.open("/console/plans")
    signed_in.wait_text("#plans", "appointment_reminder")
    signed_in.shot("plans")
    signed_in.find("tr[data-plan='appointment_reminder'] a").click()
    signed_in.wait_for(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#plan-graph[data-rendered='1'] svg"),
        "the state graph's SVG",
    )
    graph = signed_in.text_of("#plan-graph")
    for state in ("greet", "ask", "confirmed", "cancelled"):
        assert state in graph
    assert signed_in.driver.execute_script(
        "return document.querySelectorAll('#plan-graph svg g.node, #plan-graph svg g.stateGroup')"
        ".length"
    ) >= len(("greet", "ask", "confirmed", "cancelled"))
    # Mermaid's own inline styles are blocked by the CSP; the stylesheet colours the states.
    fill = signed_in.driver.execute_script(
        "const box = document.querySelector('#plan-graph svg g.node rect');"
        "return box ? getComputedStyle(box).fill : null;"
    )
    assert fill == "rgb(238, 243, 252)"
    signed_in.shot("plan-graph")

    signed_in.find("input[name='var.name']").clear()
    signed_in.find("input[name='var.name']").send_keys("<b>Ann</b>")
    signed_in.submit("#start-form")
    signed_in.wait_text("#transcript", "Hello <b>Ann</b>.")
    assert not signed_in.find_all("#transcript b")  # the name is text, not markup
    signed_in.find("#reply").send_keys("yes")
    signed_in.find("#reply-form button[value='say']").click()
    signed_in.wait_text("#call-ended", "outcome: confirmed")
    assert 'says "yes"' in signed_in.text_of("#transcript")
    signed_in.shot("try-it")
    assert _page_errors(signed_in) == []


def test_a_number_goes_on_do_not_call_and_off_again(
    signed_in: Browser, console: ConsoleServer
) -> None:
    signed_in.open("/console/contacts")
    signed_in.find("#dnc-add-form input[name=number]").send_keys("+12025550177")
    signed_in.find("#dnc-add-form input[name=reason]").send_keys("asked on the phone")
    signed_in.submit("#dnc-add-form")
    signed_in.wait_text("#contact-message", "Added to the do-not-call list")
    assert signed_in.text_of("#contact-dnc") == "yes: asked on the phone"
    signed_in.shot("contact-dnc")

    async def listed() -> bool:
        async with console.store.read() as tx:
            contact = await tx.contacts.get("+12025550177")
        return bool(contact and contact.do_not_call)

    assert console.run(listed())
    signed_in.open("/console/contacts?dnc=1")
    signed_in.wait_text("#contacts", "+12025550177")
    signed_in.shot("contacts-dnc")
    signed_in.find("tr[data-number='+12025550177'] a").click()
    signed_in.wait_for(lambda d: d.find_elements(By.ID, "dnc-remove-form"), "the remove form")
    signed_in.submit("#dnc-remove-form")
    signed_in.wait_text("#contact-message", "Taken off the do-not-call list")
    assert signed_in.text_of("#contact-dnc") == "no"
    assert not console.run(listed())
    assert _page_errors(signed_in) == []
