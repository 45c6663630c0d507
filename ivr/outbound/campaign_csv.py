"""Campaign CSV files: rows in (checked cell by cell), results out (safe to open in a sheet).

A file in is a header row naming the columns, then one notification per row: ``to``, the
plan's variables (a column named after the variable, or ``var.NAME``) and optionally
timezone, not_before (or earliest), not_after (or latest), category, idempotency_key (or
idempotency), callback_url. Rows are numbered as a spreadsheet numbers them, the header
being row 1.

Spreadsheets are where CSV files come from and go back to, so cells that a spreadsheet would
run (``=cmd|' /C calc'!A0``, ``@SUM(...)``, ``+cmd|...``), markup, control characters and
huge cells are refused here, each as an error naming the row and the column. The export
prefixes any cell a spreadsheet could take for a formula with ``'`` (OWASP's advice).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Columns that are request fields, with the names a file may give them.
FIELD_COLUMNS = {
    "timezone": "timezone",
    "not_before": "not_before",
    "earliest": "not_before",
    "not_after": "not_after",
    "latest": "not_after",
    "category": "category",
    "idempotency_key": "idempotency_key",
    "idempotency": "idempotency_key",
    "callback_url": "callback_url",
}
VARIABLE_PREFIX = "var."
MAX_CELL_CHARS = 1000
MAX_ROWS = 100_000

# What a spreadsheet evaluates: =, @, or + / - followed by more than a number.
_FORMULA = re.compile(r"^(?:[=@]|[+-](?![0-9 ().,-]*$))")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MARKUP = re.compile(r"<\s*[A-Za-z!/?]")
# Export: a cell starting with one of these may be read as a formula (tab and CR included).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RowError:
    """What is wrong with one row: ``row`` as numbered in the file or list (from 1; the
    header of a CSV file is row 1, a campaign-wide problem row 0) and the field or column."""

    row: int
    field: str
    message: str


@dataclass
class ParsedCsv:
    """The rows of a file as request fields (without ``plan``), and what maps back to columns."""

    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # request field (``to``, ``variables.when``, ``not_before``) -> the column it came from
    columns: dict[str, str] = field(default_factory=dict)

    def column_of(self, request_field: str) -> str:
        return self.columns.get(request_field, request_field)


def decode(data: bytes | str) -> tuple[str | None, RowError | None]:
    """The text of an uploaded file; a file that is not UTF-8 is refused naming the row."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff"), None
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark before the header.
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        return None, RowError(
            row, "file", f"not UTF-8: byte 0x{data[exc.start]:02x}; save the file as UTF-8 CSV"
        )


def hostile(cell: str) -> str | None:
    """Why a cell is refused, or None."""
    if len(cell) > MAX_CELL_CHARS:
        return f"{len(cell)} characters; at most {MAX_CELL_CHARS} are accepted"
    if _CONTROL.search(cell):
        return "contains a control character (a line break, NUL, ...)"
    if _FORMULA.match(cell):
        return f"{cell[:40]!r} starts like a spreadsheet formula: formulas are not accepted"
    if _MARKUP.search(cell):
        return f"{cell[:40]!r} contains markup (<...); send plain text"
    return None


def _header(cells: list[str], plan_variables: Iterable[str], parsed: ParsedCsv) -> list[str]:
    """The request field of each column (``to``, ``variables.NAME``, ``not_before``, ...)."""
    known = set(plan_variables)
    targets: list[str] = []
    for position, raw in enumerate(cells, start=1):
        name = raw.strip()
        if not name:
            parsed.errors.append(RowError(1, f"column {position}", "the header cell is empty"))
            targets.append("")
            continue
        if name == "to":
            target = "to"
        elif name in FIELD_COLUMNS:
            target = FIELD_COLUMNS[name]
        else:
            variable = name.removeprefix(VARIABLE_PREFIX)
            if hostile(variable) or not variable:
                parsed.errors.append(RowError(1, name, "not a column name"))
                targets.append("")
                continue
            if variable not in known:
                parsed.errors.append(
                    RowError(1, name, f"unknown variable (the plan declares: "
                             f"{', '.join(sorted(known)) or 'none'})")
                )  # fmt: skip
            target = f"variables.{variable}"
        if target in parsed.columns:
            parsed.errors.append(
                RowError(1, name, f"names the same field as column {parsed.columns[target]}")
            )
        parsed.columns.setdefault(target, name)
        targets.append(target)
    if "to" not in parsed.columns:
        parsed.errors.append(RowError(1, "to", "the header has no `to` column"))
    return targets


def parse(text: str, plan_variables: Iterable[str]) -> ParsedCsv:
    """The rows of a campaign file, or the errors of every bad row (header problems stop it)."""
    parsed = ParsedCsv()
    records = csv.reader(io.StringIO(text, newline=""))
    number = 0
    targets: list[str] | None = None
    try:
        for number, cells in enumerate(records, start=1):
            if targets is None:
                targets = _header(cells, plan_variables, parsed)
                if parsed.errors:
                    return parsed
                continue
            if not any(cell.strip() for cell in cells):
                continue  # a blank line keeps its number, like a spreadsheet's empty row
            if len(parsed.rows) >= MAX_ROWS:
                parsed.errors.append(RowError(number, "file", f"more than {MAX_ROWS} rows"))
                return parsed
            _row(number, cells, targets, parsed)
    except csv.Error as exc:
        parsed.errors.append(RowError(number + 1, "file", f"not valid CSV: {exc}"))
        return parsed
    if targets is None:
        parsed.errors.append(RowError(1, "file", "the file is empty: it needs a header row"))
    elif not parsed.rows and not parsed.errors:
        parsed.errors.append(RowError(2, "file", "the file has a header but no rows"))
    return parsed


def _row(number: int, cells: list[str], targets: list[str], parsed: ParsedCsv) -> None:
    if len(cells) != len(targets):
        parsed.errors.append(
            RowError(number, "row", f"{len(cells)} cells, but the header has {len(targets)}")
        )
        return
    fields: dict[str, Any] = {"variables": {}}
    bad = False
    for target, raw in zip(targets, cells, strict=True):
        cell = raw.strip()
        if why := hostile(cell):
            parsed.errors.append(RowError(number, parsed.column_of(target), why))
            bad = True
        elif not cell:
            continue  # an empty cell: the plan's default applies
        elif target.startswith("variables."):
            fields["variables"][target.removeprefix("variables.")] = cell
        else:
            fields[target] = cell
    if "to" not in fields and not bad:
        parsed.errors.append(
            RowError(number, parsed.column_of("to"), "empty: every row needs a number")
        )
        bad = True
    if not bad:
        parsed.rows.append((number, fields))


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: ``'`` before anything it could run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as CSV text (CRLF line ends, as RFC 4180 and spreadsheets expect), cells made safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
