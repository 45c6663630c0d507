"""What several commands share: where plans live and how a command names one."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ivr.dialplan.loader import load_plan, load_plans
from ivr.dialplan.schema import Plan


def dialplans_dir() -> Path:
    return Path(os.environ.get("IVR_DIALPLANS", "dialplans"))


def audio_dir() -> Path:
    return Path(os.environ.get("IVR_AUDIO_DIR", "audio"))


def resolve_plan(name: str) -> Plan:
    """A plan by file path, or by id among the plans under ``dialplans_dir()``."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        plan, errors = load_plan(path, audio_dir())
    else:
        plan_set, errors = load_plans([dialplans_dir()], audio_dir())
        plan = plan_set.plans.get(name)
        if plan is None and not errors:
            known = ", ".join(sorted(plan_set.plans)) or "none"
            raise click.ClickException(f"no plan {name!r} in {dialplans_dir()}/ (known: {known})")
    if errors or plan is None:
        raise click.ClickException("invalid dial plan:\n" + "\n".join(map(str, errors)))
    return plan
