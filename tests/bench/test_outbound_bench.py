"""bench/outbound.py --quick runs to the end and prints its three tables with numbers in them.

A smoke test only: the numbers of a quick run on a shared machine mean nothing, but a benchmark
that no longer runs (an API it uses changed) should fail here, not on the next person to run it.
Like every PostgreSQL test it fails, never skips or passes, when the server does not answer:
the benchmark itself would print "skipped" rows for it, which must not count as a run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.store.postgres import POSTGRES_URL, PostgresServer, postgres_url_with_closed_port

NUMBER = re.compile(r"^[0-9][0-9,]*(\.[0-9]+)?x?$")
SKIPPED = "skipped: PostgreSQL not reachable at"


def tables(output: str) -> dict[str, list[list[str]]]:
    """``{title word: rows of cells}`` of every ``## title`` table in the output."""
    found: dict[str, list[list[str]]] = {}
    rows: list[list[str]] | None = None
    for line in output.splitlines():
        if line.startswith("## "):
            rows = found.setdefault(line[3:].split(":")[0], [])
        elif rows is not None and line.startswith("--"):
            continue
        elif rows is not None and re.match(r"^(sqlite|postgresql|-)\s", line):
            rows.append(re.split(r"\s{2,}", line.strip()))
        elif rows is not None and line and not line.startswith("backend"):
            rows = None  # the notes under a table end it
    return found


def run_quick_benchmark(postgres_url: str) -> subprocess.CompletedProcess[str]:
    """``bench/outbound.py --quick`` against ``postgres_url``, which must answer first."""
    PostgresServer(postgres_url).require_reachable()
    return subprocess.run(
        [sys.executable, "bench/outbound.py", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=170, check=False,
        env={**os.environ, "IVR_TEST_POSTGRES_URL": postgres_url},
    )  # fmt: skip


def test_an_unreachable_postgresql_fails_the_benchmark_test() -> None:
    closed = postgres_url_with_closed_port().render_as_string(hide_password=False)
    with pytest.raises(pytest.fail.Exception, match=r"127\.0\.0\.1:9 is not reachable"):
        run_quick_benchmark(closed)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_quick_outbound_benchmark_prints_numeric_tables() -> None:
    done = run_quick_benchmark(POSTGRES_URL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert SKIPPED not in done.stdout, done.stdout  # reachable a moment ago: a bench problem
    found = tables(done.stdout)
    assert set(found) == {"import", "claims", "calls"}, done.stdout
    for title, rows in found.items():
        measured = [row for row in rows if not any(SKIPPED in cell for cell in row)]
        backends = {row[0] for row in measured}
        assert "sqlite" in backends, (title, rows)
        assert "postgresql" in backends, (title, rows)
        for row in measured:
            numbers = [cell for cell in row if NUMBER.match(cell)]
            # Every measured row has its figures and a ratio against the baseline.
            assert len(numbers) >= 4, (title, row)
            assert row[-1].endswith("x"), (title, row)
    # The claim table covers one and two claimers for each batch size.
    assert {(row[1], row[2]) for row in found["claims"] if row[0] == "sqlite"} == {
        ("1", "1"), ("2", "1"), ("1", "10"), ("2", "10")
    }  # fmt: skip
