"""``ivr campaign``: create a campaign from a CSV file, list, show, pause, resume, cancel, export.

Like ``ivr notify``, the commands work on the database directly through the service the API
uses (settings from the ``IVR_*`` environment); a running server's scheduler sees a pause or
a cancel at its next round.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ivr.cli.notify import _plans, _run, _settings, _store
from ivr.outbound.campaigns import (
    CampaignNotFound,
    CampaignService,
    CampaignStateError,
    CampaignView,
    IdempotencyConflict,
)
from ivr.outbound.requests import RequestError


@contextlib.asynccontextmanager
async def _service() -> AsyncIterator[CampaignService]:
    settings = _settings()
    plans = _plans(settings)
    async with _store(settings) as store:
        yield CampaignService(store, plans, settings)


def _console() -> Console:
    # Names and variables come from files: never read them as rich markup.
    return Console(highlight=False, soft_wrap=True)


def _json(view: CampaignView) -> str:
    return json.dumps(view.to_json())


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "-"


def _finished(view: CampaignView) -> int:
    open_statuses = ("scheduled", "in_progress")
    return view.progress.total - sum(view.progress.by_status.get(s, 0) for s in open_statuses)


@click.group()
def campaign() -> None:
    """Campaigns: named batches of notifications that are paused and reported on together."""


@campaign.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="What the operators call it.")
@click.option("--plan", "plan_id", required=True, help="Id of an outbound dial plan.")
@click.option("--calls-per-second", type=float, help="At most this many dials a second.")
@click.option("--window", help="HH:MM-HH:MM in each recipient's zone (inside the calling window).")
@click.option("--idempotency-key", help="Creating again with the same key creates nothing new.")
@click.option("--json", "as_json", is_flag=True, help="Print the campaign's JSON.")
def create(
    file: Path,
    name: str,
    plan_id: str,
    calls_per_second: float | None,
    window: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Create a campaign from FILE.csv: all rows, or none and every row error (exit 1).

    The header names the columns: ``to``, the plan's variables (NAME or var.NAME), and
    optionally timezone, not_before (earliest), not_after (latest), category,
    idempotency_key (idempotency), callback_url.
    """

    async def submit() -> tuple[CampaignView | None, list[tuple[int, str, str]]]:
        async with _service() as service:
            done = await service.submit_csv(
                name, plan_id, file.read_bytes(), calls_per_second=calls_per_second,
                window=window, idempotency_key=idempotency_key,
            )  # fmt: skip
            return done.view, [(e.row, e.field, e.message) for e in done.errors]

    try:
        view, errors = _run(submit())
    except RequestError as exc:
        for field, message in exc.problems.items():
            click.echo(f"--{field.replace('_', '-')}: {message}", err=True)
        raise click.exceptions.Exit(1) from exc
    except IdempotencyConflict as exc:
        raise click.ClickException(str(exc)) from exc
    if view is None:
        for row, field, message in errors:
            click.echo(f"row {row}, {field}: {message}", err=True)
        click.echo(f"{len(errors)} error(s): nothing was created", err=True)
        raise click.exceptions.Exit(1)
    if as_json:
        click.echo(_json(view))
        return
    click.echo(f"{view.id} {view.state}: {view.progress.total} notifications ({view.name})")


@campaign.command("list")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
def list_campaigns(offset: int, limit: int, as_json: bool) -> None:
    """List campaigns, newest first, with their progress."""

    async def page() -> list[CampaignView]:
        async with _service() as service:
            return await service.list(offset=offset, limit=limit)

    views = _run(page())
    if as_json:
        for view in views:
            click.echo(_json(view))
        return
    table = Table("id", "name", "plan", "state", "ended", "outcomes", "created")
    for view in views:
        table.add_row(
            view.id, Text(view.name), view.plan, view.state,
            f"{_finished(view)}/{view.progress.total}", Text(_counts(view.progress.by_outcome)),
            f"{view.created_at:%Y-%m-%d %H:%M}",
        )  # fmt: skip
    _console().print(table)


# Ids are URL-safe base64 and may begin with "-": take such an id as the argument it is.
_ID = {"context_settings": {"ignore_unknown_options": True}}


@campaign.command(**_ID)
@click.argument("campaign_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the campaign's JSON.")
def show(campaign_id: str, as_json: bool) -> None:
    """Show a campaign: its settings and its notifications by status and by outcome."""

    async def get() -> CampaignView | None:
        async with _service() as service:
            return await service.get(campaign_id)

    view = _run(get())
    if view is None:
        raise click.ClickException(f"no campaign {campaign_id!r}")
    if as_json:
        click.echo(_json(view))
        return
    table = Table("", "", show_header=False)
    settings = dataclasses.asdict(view)
    for key in ("id", "name", "plan", "state", "calls_per_second", "window", "idempotency_key"):
        table.add_row(key, Text("-" if settings[key] is None else str(settings[key])))
    table.add_row("created", view.created_at.isoformat())
    table.add_row("notifications", str(view.progress.total))
    table.add_row("by status", _counts(view.progress.by_status))
    table.add_row("by outcome", Text(_counts(view.progress.by_outcome)))
    _console().print(table)


def _change(verb: str, action: Callable[[CampaignService, str], Awaitable[CampaignView]]) -> None:
    @campaign.command(verb, **_ID)
    @click.argument("campaign_id", metavar="ID")
    def command(campaign_id: str) -> None:
        async def change() -> CampaignView:
            async with _service() as service:
                return await action(service, campaign_id)

        try:
            view = _run(change())
        except (CampaignNotFound, CampaignStateError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{view.id} {view.state}: {_counts(view.progress.by_status)}")

    command.__doc__ = {
        "pause": "Pause campaign ID: no new calls; calls under way finish.",
        "resume": "Resume a paused campaign ID.",
        "cancel": "Cancel campaign ID: pending notifications are cancelled, none is dialed.",
    }[verb]


_change("pause", CampaignService.pause)
_change("resume", CampaignService.resume)
_change("cancel", CampaignService.cancel)


@campaign.command(**_ID)
@click.argument("campaign_id", metavar="ID")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
def export(campaign_id: str, output: Path | None) -> None:
    """Write the results of campaign ID as CSV, one row per notification."""

    async def write() -> None:
        async with _service() as service:
            with (
                output.open("w", encoding="utf-8", newline="")
                if output is not None
                else contextlib.nullcontext(sys.stdout) as target
            ):
                async for piece in service.export_csv(campaign_id):
                    target.write(piece)

    try:
        _run(write())
    except CampaignNotFound as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = (campaign,)
