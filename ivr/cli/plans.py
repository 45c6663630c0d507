"""``ivr validate`` and ``ivr graph``: checking and drawing dial plans."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ivr.cli.common import audio_dir, dialplans_dir, resolve_plan
from ivr.dialplan.graph import mermaid
from ivr.dialplan.loader import load_plans


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check dial plans (default: dialplans/); print every error as file:line: state: message."""
    targets = list(paths) or [dialplans_dir()]
    missing = [p for p in targets if not p.exists()]
    for path in missing:
        click.echo(f"{path}:1: (plan): no such file or directory", err=True)
    plan_set, errors = load_plans([p for p in targets if p.exists()], audio_dir())
    for error in errors:
        click.echo(str(error), err=True)
    if errors or missing:
        sys.exit(1)
    click.echo(f"{len(plan_set.plans)} dial plan(s) valid: {', '.join(sorted(plan_set.plans))}")


@click.command()
@click.argument("plan")
def graph(plan: str) -> None:
    """Print a Mermaid state diagram of PLAN (an id under dialplans/ or a file)."""
    click.echo(mermaid(resolve_plan(plan)))


COMMANDS = (validate, graph)
