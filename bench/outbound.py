"""Outbound campaigns: CSV import, scheduler claims and simulated calls, each against a baseline.

    .venv/bin/python bench/outbound.py            # 100k-row import, claims on 100k, 200 calls
    .venv/bin/python bench/outbound.py --quick    # small sizes, under a minute (the smoke test)

1. Import: ``ivr notify import`` (the CLI's own entry point, in a child process) on SQLite and
   PostgreSQL. Baseline: a child process inserting the same rows with SQLAlchemy's executemany,
   batch for batch, with no validation (what the database alone costs).
2. Claims: ``NotificationRepository.claim_due`` in worker processes (1 and 2 at once) on a
   table of N due notifications, batches of 1, 10 and 50; claimed ones are then marked
   in-progress, untimed, as the scheduler's dial does. Baseline: the same due-rows query as a
   plain SELECT in a read-only transaction (no row lock, no lease written).
3. Calls: notifications created through NotificationService and carried to their final status
   by the real server app (``create_app``, its scheduler, the simulator mounted at /simulator)
   with every person pressing 1. Baseline: the same simulator placing the same number of calls
   against a bare aiohttp app that answers the same webhooks with fixed TwiML and the same
   prompt audio. See bench/outbound_calls.py.

PostgreSQL is the server at ``IVR_TEST_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:
5432/test); each part gets a database of its own, dropped at the end. When it does not answer,
its rows say "skipped: PostgreSQL not reachable at ...".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from outbound_calls import measure_calls
from outbound_store import PLAN, Databases, count_rows, measure_claims, number

from ivr.cli.notify import BATCH_ROWS

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    rows: int  # CSV rows imported
    due: int  # due notifications in the claim table
    claims: int  # notifications claimed per configuration
    calls: int  # notifications carried through simulated calls
    concurrent: int  # calls at once (the server's max_concurrent_calls)
    batches: tuple[int, ...]  # claim batch sizes


FULL = Sizes(rows=100_000, due=100_000, claims=3_000, calls=200, concurrent=50, batches=(1, 10, 50))
QUICK = Sizes(rows=1_000, due=500, claims=40, calls=10, concurrent=5, batches=(1, 10))


# -- printing -------------------------------------------------------------------------------


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n## {title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.{2 if value < 10 else 1 if value < 100 else 0}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["to", "name", "clinic", "when", "idempotency_key"])
        for n in range(rows):
            writer.writerow(
                [number(n), f"Patient {n}", "Sunrise Clinic", "2031-01-01T10:00", f"v{n}"]
            )


# -- 1. import ------------------------------------------------------------------------------

# Runs in a child process: the time to import the code is measured apart from the work, and
# the peak RSS is the child's own. argv: mode (ivr or bare), result file, CSV file, database
# URL, rows per batch (both importers write batch for batch).
CHILD = """
import asyncio, csv, json, re, resource, sys, time
from datetime import UTC, datetime
from pathlib import Path
started = time.perf_counter()

def peak_rss_kb():
    # VmHWM belongs to this program's memory; ru_maxrss keeps the forking parent's peak too.
    status = Path("/proc/self/status")
    if status.exists():
        return int(re.search(r"VmHWM:\\s*(\\d+)", status.read_text()).group(1))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

mode, result, path, url, batch = sys.argv[1:6]
if mode == "ivr":
    from ivr.cli import main
else:
    sys.path.insert(0, "bench")
    from outbound_store import bare_insert, bare_row
loaded = time.perf_counter()
rss_loaded = peak_rss_kb()
code = 0
if mode == "ivr":
    try:
        main(["notify", "import", path, "--plan", "appointment_reminder", "--batch-size", batch],
             standalone_mode=False)
    except SystemExit as exc:
        code = exc.code or 0
else:
    now = datetime.now(UTC)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = (bare_row(cells, now) for cells in csv.DictReader(handle))
        asyncio.run(bare_insert(url, rows, int(batch)))
done = time.perf_counter()
with open(result, "w") as out:
    json.dump({"load": loaded - started, "work": done - loaded, "code": code,
               "rss_loaded": rss_loaded,
               "rss_peak": peak_rss_kb()}, out)
"""


def run_child(mode: str, csv_file: Path, url: str, workdir: Path) -> dict[str, Any]:
    result = workdir / f"{mode}-{secrets.token_hex(3)}.json"
    env = {
        **os.environ, "IVR_DATABASE_URL": url, "IVR_DIALPLANS": str(ROOT / "dialplans"),
        "IVR_AUDIO_DIR": str(workdir / "audio"), "IVR_VAR_DIR": str(workdir / "var"),
        "IVR_CONFIG": "",
    }  # fmt: skip
    command = [sys.executable, "-c", CHILD, mode, str(result), str(csv_file), url, str(BATCH_ROWS)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0 or not result.exists():
        raise RuntimeError(f"{mode} import failed ({done.returncode}):\n{done.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.read_text())
    if measured["code"] != 0:
        raise RuntimeError(f"ivr notify import exited {measured['code']}:\n{done.stdout[-3000:]}")
    return {**measured, "wall": wall}


async def measure_import(sizes: Sizes, dbs: Databases, postgres: bool) -> None:
    csv_file = dbs.workdir / "notifications.csv"
    write_csv(csv_file, sizes.rows)
    size_mb = csv_file.stat().st_size / 1e6
    rows: list[list[object]] = []
    for backend in ("sqlite", "postgresql"):
        if backend == "postgresql" and not postgres:
            rows.append([backend, dbs.postgres_problem or "skipped", "", "", "", "", "", ""])
            continue
        results = {}
        for mode in ("bare", "ivr"):
            url = dbs.sqlite(f"import_{mode}") if backend == "sqlite" else await dbs.postgres(mode)
            results[mode] = run_child(mode, csv_file, url, dbs.workdir)
            if (stored := await count_rows(url)) != sizes.rows:
                raise RuntimeError(f"{mode} on {backend} stored {stored} of {sizes.rows} rows")
        for mode, name in (("bare", "baseline: bare executemany"), ("ivr", "ivr notify import")):
            r = results[mode]
            ratio = (r["work"] / results["bare"]["work"]) if mode == "ivr" else 1.0
            rows.append([
                backend, name, r["wall"], r["load"], sizes.rows / r["work"],
                r["rss_loaded"] / 1024, r["rss_peak"] / 1024, f"{ratio:.1f}x",
            ])  # fmt: skip
    table(
        f"import: {sizes.rows:,} CSV rows ({size_mb:.1f} MB, plan {PLAN}), {BATCH_ROWS} per batch",
        ["backend", "importer", "wall s", "code load s", "rows/s", "RSS loaded MB",
         "RSS peak MB", "time/row vs baseline"],
        rows,
    )  # fmt: skip
    print(
        "rows/s counts from the end of code loading (it includes reading the plans, migrating "
        "the new database and the CSV);\nwall s is the whole child process."
    )


@contextlib.contextmanager
def timed(part: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    print(f"({part}: {time.perf_counter() - started:.0f} s)")


# -- main -----------------------------------------------------------------------------------


async def main(sizes: Sizes, parts: set[str]) -> None:
    # The load average says how much other work shared the machine: compare ratios, not rates.
    print(
        f"outbound benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"Python {sys.version.split()[0]}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as workdir:
        dbs = Databases(Path(workdir))
        try:
            postgres = await dbs.check_postgres()
            if "import" in parts:
                with timed("import"):
                    await measure_import(sizes, dbs, postgres)
            if "claims" in parts:
                with timed("claims"):
                    rows = await measure_claims(
                        sizes.due, sizes.claims, sizes.batches, dbs, postgres
                    )
                print_claims(sizes, rows)
            if "calls" in parts:
                with timed("calls"):
                    rows = await measure_calls(sizes.calls, sizes.concurrent, dbs, postgres)
                table(
                    f"calls: {sizes.calls} notifications to the end through the simulator, "
                    f"{sizes.concurrent} calls at once, everyone presses 1",
                    ["backend", "driven", "calls/s", "p50 s", "p99 s", "webhooks/call",
                     "time vs baseline"],
                    rows,
                )  # fmt: skip
                print(
                    "p50/p99: from the notification's creation (all at once) to its final "
                    "status; the baseline's from the start of its run."
                )
        finally:
            await dbs.drop_all()


def print_claims(sizes: Sizes, rows: list[list[object]]) -> None:
    table(
        f"claims: claim_due on a table of {sizes.due:,} due notifications, "
        f"{sizes.claims:,} claimed per run",
        ["backend", "claimers", "batch", "claims tx/s", "notifications/s", "baseline SELECT/s",
         "baseline rows/s", "claim time vs SELECT"],
        rows,
    )  # fmt: skip
    print(
        "claims tx/s: claim_due transactions per second, summed over the claimers; after each "
        "claim the claimer\nmarks its notifications in-progress (untimed, as the scheduler's "
        "dial does). No notification is claimed twice (checked)."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument("--rows", type=int, help="CSV rows to import")
    parser.add_argument("--due", type=int, help="due notifications in the claim table")
    parser.add_argument("--claims", type=int, help="notifications claimed per configuration")
    parser.add_argument("--calls", type=int, help="notifications carried through calls")
    parser.add_argument("--concurrent", type=int, help="calls at once")
    parser.add_argument(
        "--parts", default="import,claims,calls", help="comma-separated: import,claims,calls"
    )
    arguments = parser.parse_args()
    base = QUICK if arguments.quick else FULL
    chosen = dataclasses.replace(
        base,
        **{
            name: getattr(arguments, name)
            for name in ("rows", "due", "claims", "calls", "concurrent")
            if getattr(arguments, name)
        },
    )
    asyncio.run(main(chosen, set(arguments.parts.split(","))))
