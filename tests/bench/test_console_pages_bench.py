"""bench/console_pages.py with 200 notifications runs to the end and times every page.

A smoke test only (its numbers mean nothing on a shared machine): a benchmark that stopped
running because a page or the fill changed should fail here. It also checks that the fill's
rows reach the daily totals the reports read (the triggers fire on the bench's bulk inserts).
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

ROW = re.compile(r"^(?P<name>.+?)\s{2,}(?P<status>\d{3})\s+(?P<p50>[0-9.]+)\s+(?P<p95>[0-9.]+)\s+")


def test_the_console_bench_runs_on_a_small_database() -> None:
    result = subprocess.run(
        [sys.executable, "bench/console_pages.py", "--notifications", "200", "--requests", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"filled in [0-9.]+ s: 20 campaigns, 200 notifications", out), out
    totals = re.search(r"daily totals: ([0-9,]+) of ([0-9,]+) finished notifications", out)
    assert totals is not None, out
    assert totals[1] == totals[2]
    rows = {m["name"].strip(): m for line in out.splitlines() if (m := ROW.match(line))}
    for page in ("baseline /healthz", "reports 30 days", "plans", "plan", "contacts", "contact",
                 "plan try-it turn (POST)", "notifications", "live calls"):  # fmt: skip
        assert page in rows, f"{page} not timed:\n{out}"
        assert rows[page]["status"] == "200", f"{page}: {rows[page]['status']}\n{out}"
    assert "target: p95 < 200 ms per page" in out
