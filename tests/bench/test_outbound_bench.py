"""bench/outbound.py --quick runs to the end and prints its three tables with numbers in them.

A smoke test only: the numbers of a quick run on a shared machine mean nothing, but a benchmark
that no longer runs (an API it uses changed) should fail here, not on the next person to run it.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

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


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_quick_outbound_benchmark_prints_numeric_tables() -> None:
    done = subprocess.run(
        [sys.executable, "bench/outbound.py", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = tables(done.stdout)
    assert set(found) == {"import", "claims", "calls"}, done.stdout
    postgres_skipped = SKIPPED in done.stdout
    for title, rows in found.items():
        measured = [row for row in rows if not any(SKIPPED in cell for cell in row)]
        backends = {row[0] for row in measured}
        assert "sqlite" in backends, (title, rows)
        assert postgres_skipped or "postgresql" in backends, (title, rows)
        for row in measured:
            numbers = [cell for cell in row if NUMBER.match(cell)]
            # Every measured row has its figures and a ratio against the baseline.
            assert len(numbers) >= 4, (title, row)
            assert row[-1].endswith("x"), (title, row)
    # The claim table covers one and two claimers for each batch size.
    assert {(row[1], row[2]) for row in found["claims"] if row[0] == "sqlite"} == {
        ("1", "1"), ("2", "1"), ("1", "10"), ("2", "10")
    }  # fmt: skip
