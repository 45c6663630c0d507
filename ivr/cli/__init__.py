"""The ``ivr`` command line: a thin layer over the library.

Each command group lives in its own module and is registered here explicitly.
"""

from __future__ import annotations

import click

from ivr.cli import asr, campaign, console, db, models, notify, plans, prompts, serve, simulate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ivr")
def main() -> None:
    """Offline voice robot / IVR service."""


for command in (
    *plans.COMMANDS,
    *simulate.COMMANDS,
    *prompts.COMMANDS,
    *models.COMMANDS,
    *asr.COMMANDS,
    *db.COMMANDS,
    *notify.COMMANDS,
    *campaign.COMMANDS,
    *serve.COMMANDS,
    *console.COMMANDS,
):
    main.add_command(command)
