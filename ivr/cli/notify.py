"""``ivr notify`` and ``ivr dnc``: notifications and the do-not-call list from the shell.

The commands work on the database directly, through the same NotificationService the API
uses (settings from the ``IVR_*`` environment), so they work whether or not a server runs:
a running server's scheduler picks the new notifications up.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError

from ivr.config import ConfigError, Settings, load_settings
from ivr.dialplan.loader import PlanLoadError, PlanSet, load_plans_or_raise
from ivr.dialplan.schema import Plan
from ivr.outbound.contact_preferences import (
    clear_do_not_call,
    do_not_call_list,
    set_do_not_call,
)
from ivr.outbound.requests import NotificationRequest, RequestError, e164, request_error
from ivr.outbound.service import NotificationService
from ivr.store import NotificationStatus, Store
from ivr.store.db import normalize_database_url, sqlite_file

T = TypeVar("T")

# CSV columns besides ``to`` and the plan's variables (each may be left empty in a row).
OPTIONAL_COLUMNS = (
    "timezone",
    "not_before",
    "not_after",
    "idempotency_key",
    "callback_url",
    "category",
)

# Rows per transaction: large enough that commits stop mattering (500 rows of the reminder
# plan insert in about 20 ms on SQLite, the writer lock a running server waits for), small
# enough that a database error costs little to retry row by row.
BATCH_ROWS = 500


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def _plans(settings: Settings) -> PlanSet:
    try:
        return load_plans_or_raise([settings.dialplans], settings.audio_dir)
    except PlanLoadError as exc:
        raise click.ClickException(f"invalid dial plans:\n{exc}") from exc


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    """The configured database, migrated to the newest schema (as the server does at start)."""
    if (file := sqlite_file(normalize_database_url(settings.database_url))) is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.database_url)
    try:
        await store.upgrade()
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _service() -> AsyncIterator[NotificationService]:
    settings = _settings()
    plans = _plans(settings)
    async with _store(settings) as store:
        yield NotificationService(store, plans, settings)


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except DBAPIError as exc:
        raise click.ClickException(f"database: {exc.orig}") from exc
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"database: {exc}") from exc


def _reject(problems: dict[str, str]) -> NoReturn:
    for field, message in problems.items():
        click.echo(f"{field}: {message}", err=True)
    raise click.exceptions.Exit(1)


def _validated(fields: dict[str, Any]) -> NotificationRequest:
    try:
        return NotificationRequest.model_validate(fields)
    except ValidationError as exc:
        raise request_error(exc) from exc


def _variables(pairs: tuple[str, ...]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        variables[name.strip()] = value
    return variables


@click.group()
def notify() -> None:
    """Outbound notifications: send one, import a CSV, show and list them."""


@notify.command()
@click.option("--to", "to_number", required=True, help="E.164 number, e.g. +12025550123.")
@click.option("--plan", required=True, help="Id of an outbound dial plan.")
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="A plan variable.")
@click.option("--category", help="Overrides the plan's category (e.g. marketing).")
@click.option("--timezone", help="The recipient's IANA time zone, e.g. Europe/Moscow.")
@click.option("--not-before", help="ISO 8601; without an offset: the recipient's local time.")
@click.option("--not-after", help="ISO 8601; skipped if it cannot be delivered by then.")
@click.option("--idempotency-key", help="Sending the same key again creates nothing new.")
@click.option("--callback-url", help="Where the result webhook is POSTed.")
@click.option("--json", "as_json", is_flag=True, help="Print the notification's JSON.")
def send(
    to_number: str, plan: str, pairs: tuple[str, ...], as_json: bool, **optional: str | None
) -> None:
    """Create one notification (exit 1 with the field errors if it cannot be accepted)."""
    fields: dict[str, Any] = {"to": to_number, "plan": plan, "variables": _variables(pairs)}
    fields.update({name: value for name, value in optional.items() if value is not None})

    async def create() -> tuple[dict[str, Any], bool]:
        async with _service() as service:
            return await service.create(_validated(fields))

    try:
        notification, created = _run(create())
    except RequestError as exc:
        _reject(exc.problems)
    if as_json:
        click.echo(json.dumps(notification, indent=2))
        return
    state = "created" if created else "already existed"
    click.echo(
        f"{notification['id']} {notification['status']} ({state}; to {notification['to']}, "
        f"next attempt {notification['next_attempt_at']})"
    )


@dataclass
class ImportSummary:
    created: int = 0
    existed: int = 0
    rejected: int = 0

    def __str__(self) -> str:
        total = self.created + self.existed + self.rejected
        return (
            f"{total} rows: created {self.created}, already existed {self.existed}, "
            f"rejected {self.rejected}"
        )


def _check_header(header: list[str], plan: Plan, settings: Settings) -> None:
    """Stop before any row when the columns cannot work: every row would fail the same way."""
    known = {"to", *plan.variables, *OPTIONAL_COLUMNS}
    unknown = [name for name in header if name not in known]
    if unknown:
        raise click.ClickException(
            f"unknown column(s) {', '.join(unknown)}; the columns are to, the variables of "
            f"{plan.id} ({', '.join(plan.variables)}) and {', '.join(OPTIONAL_COLUMNS)}"
        )
    if duplicates := sorted({name for name in header if header.count(name) > 1}):
        raise click.ClickException(f"column(s) named twice: {', '.join(duplicates)}")
    configured = settings.plan_variables.get(plan.id, {})
    missing = [
        name
        for name, spec in plan.variables.items()
        if name not in header and spec.default is None and name not in configured
    ]
    if "to" not in header:
        missing.insert(0, "to")
    if missing:
        raise click.ClickException(f"the header has no column for {', '.join(missing)}")


def _row_request(row: dict[str, str], plan: Plan, category: str | None) -> dict[str, Any]:
    """The request fields of one CSV row; empty cells are left out (plan defaults apply)."""
    fields: dict[str, Any] = {
        "to": row["to"],
        "plan": plan.id,
        "variables": {name: row[name] for name in plan.variables if row.get(name, "") != ""},
    }
    if category is not None:
        fields["category"] = category
    fields.update({name: row[name] for name in OPTIONAL_COLUMNS if row.get(name, "") != ""})
    return fields


def _rows(file: Path) -> Iterator[tuple[int, list[str]]]:
    """``(row number, cells)``, the header being row 1; blank lines are numbered, not read."""
    # utf-8-sig: spreadsheets often save a byte-order mark before the header.
    with file.open(newline="", encoding="utf-8-sig") as handle:
        for number, cells in enumerate(csv.reader(handle), start=1):
            if any(cell.strip() for cell in cells):
                yield number, [cell.strip() for cell in cells]


@notify.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--plan", "plan_id", required=True, help="Id of an outbound dial plan.")
@click.option("--category", help="Category of rows without a category cell.")
@click.option(
    "--batch-size",
    default=BATCH_ROWS,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Rows written per transaction.",
)
def import_csv(file: Path, plan_id: str, category: str | None, batch_size: int) -> None:
    """Create a notification per row of FILE.csv; bad rows are reported, good ones kept.

    The header names the columns: ``to``, the plan's variables, and optionally timezone,
    not_before, not_after, idempotency_key, callback_url, category. Exit 1 if any row was
    rejected. Rows with an idempotency_key can be imported again safely.
    """
    console = Console(highlight=False)
    try:
        summary = _run(_import_rows(file, plan_id, category, console, batch_size))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file}: not UTF-8 text ({exc})") from exc
    console.print(str(summary), markup=False)
    if summary.rejected:
        raise click.exceptions.Exit(1)


async def _import_rows(
    file: Path, plan_id: str, category: str | None, console: Console, batch_size: int
) -> ImportSummary:
    settings = _settings()
    plans = _plans(settings)
    plan = plans.plans.get(plan_id)
    if plan is None or plan.direction != "outbound":
        known = ", ".join(sorted(p.id for p in plans.plans.values() if p.direction == "outbound"))
        raise click.ClickException(f"no outbound plan {plan_id!r} (known: {known})")
    rows = _rows(file)
    first = next(rows, None)
    if first is None:
        raise click.ClickException(f"{file} is empty: it needs a header row")
    header = first[1]
    _check_header(header, plan, settings)
    total = sum(1 for _ in _rows(file)) - 1
    summary = ImportSummary()
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        # A bar only helps a person watching; in a pipe or a log it would be noise.
        disable=not console.is_terminal,
    )
    async with _store(settings) as store:
        service = NotificationService(store, plans, settings)
        with progress:
            task = progress.add_task("rows", total=total)
            batch: list[tuple[int, NotificationRequest | RequestError]] = []
            for number, cells in rows:
                batch.append((number, _row_request_or_error(header, cells, plan, category)))
                if len(batch) >= batch_size:
                    await _import_batch(service, batch, summary, console)
                    progress.advance(task, len(batch))
                    batch = []
            await _import_batch(service, batch, summary, console)
            progress.advance(task, len(batch))
    return summary


def _row_request_or_error(
    header: list[str], cells: list[str], plan: Plan, category: str | None
) -> NotificationRequest | RequestError:
    """One row as a request, or what is wrong with its shape (the rest is checked on create)."""
    if len(cells) != len(header):
        return RequestError(
            {"row": f"{len(cells)} cells, but the header has {len(header)} columns"}
        )
    try:
        return _validated(_row_request(dict(zip(header, cells, strict=True)), plan, category))
    except RequestError as exc:
        return exc


async def _import_batch(
    service: NotificationService,
    batch: list[tuple[int, NotificationRequest | RequestError]],
    summary: ImportSummary,
    console: Console,
) -> None:
    """Create a batch of rows in one transaction, then report them in row order.

    One transaction per row cost a commit and five queries a row (74 rows/s on SQLite); a batch
    of 500 is one INSERT. A row the database itself refuses (a value too long for a column on
    PostgreSQL) would roll back its whole batch: that batch is then retried row by row, so only
    the refused row is lost and its number is reported.
    """
    requests = [item for _, item in batch if isinstance(item, NotificationRequest)]
    try:
        created = iter(await service.create_many(requests))
    except DBAPIError as exc:
        if not _refused_a_row(exc):
            raise
        created = iter([await _import_one(service, request) for request in requests])
    for number, item in batch:
        outcome = next(created) if isinstance(item, NotificationRequest) else item
        if outcome is True:
            summary.created += 1
        elif outcome is False:
            summary.existed += 1
        else:
            summary.rejected += 1
            details = "; ".join(f"{field}: {why}" for field, why in outcome.problems.items())
            console.print(f"row {number}: {details}", markup=False)


async def _import_one(
    service: NotificationService, request: NotificationRequest
) -> bool | RequestError:
    try:
        [outcome] = await service.create_many([request])
    except DBAPIError as exc:
        if not _refused_a_row(exc):
            raise
        return RequestError({"database": str(exc.orig)})
    return outcome


def _refused_a_row(exc: DBAPIError) -> bool:
    """Whether the database refused a value (not the connection or the schema failing).

    asyncpg's data errors reach SQLAlchemy as a plain DBAPIError: its SQLSTATE says which
    (class 22 is a bad value, 23 a broken constraint).
    """
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    return isinstance(exc, IntegrityError | DataError) or sqlstate[:2] in ("22", "23")


# Ids are URL-safe base64 and may begin with "-": take such an id as the argument it is.
@notify.command(context_settings={"ignore_unknown_options": True})
@click.argument("notification_id", metavar="ID")
def show(notification_id: str) -> None:
    """Print a notification's JSON (as GET /api/v1/notifications/ID shows it)."""

    async def get() -> dict[str, Any] | None:
        async with _service() as service:
            return await service.get(notification_id)

    notification = _run(get())
    if notification is None:
        raise click.ClickException(f"no notification {notification_id!r}")
    click.echo(json.dumps(notification, indent=2))


@notify.command("list")
@click.option("--status", type=click.Choice([s.value for s in NotificationStatus]))
@click.option("--plan", "plan_id", help="Only this plan's notifications.")
@click.option("--to", "to_number", help="Only notifications to this number.")
@click.option("--after", help="The last id of the previous page.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
def list_notifications(
    status: str | None,
    plan_id: str | None,
    to_number: str | None,
    after: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List notifications, oldest first."""
    try:
        number = e164(to_number, "--to") if to_number is not None else None
    except RequestError as exc:
        _reject(exc.problems)

    async def page() -> list[dict[str, Any]]:
        async with _service() as service:
            return await service.page(
                status=status, plan_id=plan_id, to_number=number, after=after, limit=limit
            )

    for item in _run(page()):
        if as_json:
            click.echo(json.dumps(item))
            continue
        click.echo(
            f"{item['id']}  {item['to']:<16} {item['plan']:<24} {item['status']:<11} "
            f"{item['outcome'] or '-':<12} attempts {item['attempts']}/{item['max_attempts']}  "
            f"next {item['next_attempt_at'] or '-'}"
        )


@click.group()
def dnc() -> None:
    """The do-not-call list: numbers that get no call of any category."""


def _number(text: str) -> str:
    try:
        return e164(text, "NUMBER")
    except RequestError as exc:
        raise click.BadParameter(exc.problems["NUMBER"], param_hint="NUMBER") from exc


@dnc.command("add")
@click.argument("number")
@click.option("--reason", help="Why (shown in the API and in `ivr dnc list`).")
def dnc_add(number: str, reason: str | None) -> None:
    """Put NUMBER on the do-not-call list."""
    e164_number = _number(number)

    async def add() -> None:
        async with _store(_settings()) as store, store.transaction() as tx:
            await set_do_not_call(tx, e164_number, reason)

    _run(add())
    click.echo(f"{e164_number} is on the do-not-call list")


@dnc.command("remove")
@click.argument("number")
def dnc_remove(number: str) -> None:
    """Take NUMBER off the do-not-call list."""
    e164_number = _number(number)

    async def remove() -> bool:
        async with _store(_settings()) as store, store.transaction() as tx:
            return await clear_do_not_call(tx, e164_number)

    if _run(remove()):
        click.echo(f"{e164_number} is off the do-not-call list")
    else:
        click.echo(f"{e164_number} was not on the do-not-call list")


@dnc.command("list")
def dnc_list() -> None:
    """Print the do-not-call list, one number per line with its reason."""

    async def listed() -> list[dict[str, Any]]:
        async with _store(_settings()) as store, store.read() as tx:
            return await do_not_call_list(tx)

    entries = _run(listed())
    if not entries:
        click.echo("the do-not-call list is empty")
    for entry in entries:
        click.echo(f"{entry['number']:<16} {entry['reason'] or ''}".rstrip())


COMMANDS = (notify, dnc)
