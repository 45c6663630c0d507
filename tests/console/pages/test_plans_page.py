"""The dial-plan pages over HTTP: errors as file:line, the graph's text, the try-it call."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from tests.console.pages.conftest import ConsoleClient, text_of

TRY = "/console/plans/appointment_reminder/try"
VARIABLES = {"var.name": "Ann", "var.clinic": "Sunrise Clinic", "var.when": "2026-11-24T10:00"}


def token_of(html: str) -> str:
    found = re.search(r'name="token" value="([^"]*)"', html)
    assert found is not None, "no reply form on the page"
    return unescape(found.group(1))


def transcript(html: str) -> str:
    found = re.search(r'<ol class="transcript" id="transcript">(.*?)</ol>', html, re.S)
    assert found is not None, "no transcript on the page"
    return text_of(found.group(1))


async def test_the_list_shows_every_plan_and_the_errors_of_a_broken_file(
    console_client: ConsoleClient, plans_dir: Path
) -> None:
    html = await console_client.page("/console/plans")
    for plan_id in ("appointment_reminder", "delivery_notice", "order_status_line"):
        assert f'data-plan="{plan_id}"' in html
    assert "problem" not in text_of(html).lower()
    # Edited while the server runs: a new broken file, and a served plan changed on disk.
    broken = "id: broken\ndirection: outbound\nlanguage: en-US\nstart: a\nstates:\n  a:\n"
    (plans_dir / "broken.yaml").write_text(broken + "    next: nowhere\n")
    reminder = plans_dir / "delivery_notice.yaml"
    reminder.write_text(reminder.read_text() + "\n# edited\n")
    text = text_of(await console_client.page("/console/plans"))
    assert re.search(r"broken\.yaml:7: a: .*nowhere", text), text
    assert "changed: restart to serve" in text
    assert "cannot be loaded" in text


async def test_the_plan_page_holds_the_graph_source_as_text(console_client: ConsoleClient) -> None:
    html = await console_client.page("/console/plans/appointment_reminder")
    graph = re.search(r'<pre class="mermaid plan-graph" id="plan-graph">(.*?)</pre>', html, re.S)
    assert graph is not None
    source = unescape(graph.group(1))
    assert source.startswith("stateDiagram-v2")
    assert "[*] --> greet" in source
    assert "ask --> confirmed : confirm (1)" in source
    assert "--&gt;" in graph.group(1)  # escaped in the page, read back as text by Mermaid
    assert "/console/static/vendor/mermaid/mermaid.min.js" in html
    response = await console_client.http.get("/console/static/vendor/mermaid/mermaid.min.js")
    assert response.status == 200
    await console_client.page("/console/plans/no_such_plan", status=404)


async def test_try_it_runs_the_call_turn_by_turn(console_client: ConsoleClient) -> None:
    await console_client.page("/console/plans/appointment_reminder")
    response = await console_client.post(TRY, {"action": "start", **VARIABLES})
    html = await response.text()
    assert response.status == 200, html
    said = transcript(html)
    assert "Robot Hello Ann. This is Sunrise Clinic." in said
    assert "listening for confirm (1), cancel (2)" in said
    response = await console_client.post(
        TRY, {"action": "say", "reply": "repeat", "token": token_of(html), **VARIABLES}
    )
    html = await response.text()
    assert 'Caller says "repeat"' in transcript(html)
    assert transcript(html).count("Hello Ann") == 2
    response = await console_client.post(
        TRY, {"action": "say", "reply": "1", "token": token_of(html), **VARIABLES}
    )
    html = await response.text()
    said = transcript(html)
    assert "Caller presses 1" in said
    assert "outcome: confirmed" in said
    assert "Call ended" in text_of(html)
    assert 'id="reply-form"' not in html


async def test_silence_and_hanging_up(console_client: ConsoleClient) -> None:
    await console_client.page("/console/plans/appointment_reminder")
    html = await (await console_client.post(TRY, {"action": "start", **VARIABLES})).text()
    html = await (
        await console_client.post(TRY, {"action": "silence", "token": token_of(html), **VARIABLES})
    ).text()
    assert "Caller (silence)" in transcript(html)
    assert "Sorry, I did not hear you." in transcript(html)
    html = await (
        await console_client.post(TRY, {"action": "hangup", "token": token_of(html), **VARIABLES})
    ).text()
    assert "Caller hangs up" in transcript(html)
    assert "Call ended" in text_of(html)


async def test_bad_variables_are_named(console_client: ConsoleClient) -> None:
    await console_client.page("/console/plans/appointment_reminder")
    response = await console_client.post(
        TRY, {"action": "start", **VARIABLES, "var.when": "next tuesday"}
    )
    assert response.status == 422
    html = await response.text()
    assert "expected an ISO 8601 date and time, got &#39;next tuesday&#39;" in html
    assert 'aria-invalid="true"' in html


async def test_a_forged_or_stale_call_is_refused(
    console_client: ConsoleClient, plans_dir: Path
) -> None:
    await console_client.page("/console/plans/appointment_reminder")
    html = await (await console_client.post(TRY, {"action": "start", **VARIABLES})).text()
    token = token_of(html)
    payload, _, signature = token.partition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    response = await console_client.post(
        TRY, {"action": "say", "reply": "1", "token": forged, **VARIABLES}
    )
    assert response.status == 409
    assert "not one the server made" in await response.text()
    plan = plans_dir / "appointment_reminder.yaml"
    plan.write_text(plan.read_text() + "\n# edited\n")
    response = await console_client.post(
        TRY, {"action": "say", "reply": "1", "token": token, **VARIABLES}
    )
    assert response.status == 409
    assert "the plan file changed since this call started" in await response.text()


async def test_try_it_needs_the_csrf_token(console_client: ConsoleClient) -> None:
    await console_client.page("/console/plans/appointment_reminder")
    response = await console_client.post(TRY, {"action": "start", **VARIABLES}, csrf=False)
    assert response.status == 403
    response = await console_client.http.post(
        TRY, data={"action": "start", "csrf": "wrong", **VARIABLES}, allow_redirects=False
    )
    assert response.status == 403


async def test_what_the_caller_typed_and_the_variables_are_shown_as_text(
    console_client: ConsoleClient,
) -> None:
    evil = "<script>alert(1)</script>"
    await console_client.page("/console/plans/appointment_reminder")
    html = await (
        await console_client.post(TRY, {"action": "start", **VARIABLES, "var.name": evil})
    ).text()
    html = await (
        await console_client.post(
            TRY, {"action": "say", "reply": evil, "token": token_of(html), **VARIABLES}
        )
    ).text()
    assert evil not in html
    said = transcript(html)
    assert f"Hello {evil}." in said
    assert f'says "{evil}"' in said
