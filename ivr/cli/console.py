"""``ivr console-user NAME``: a password hash line for ``IVR_CONSOLE_USERS``."""

from __future__ import annotations

import re
import sys

import click

from ivr.web.console.passwords import hash_password

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@click.command("console-user")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)
def console_user(name: str, password_stdin: bool) -> None:
    """Print NAME:HASH to add to IVR_CONSOLE_USERS (comma-separated) for the console.

    The password is asked for twice without echo; only its scrypt hash is printed.
    """
    if not NAME.match(name):
        raise click.BadParameter(
            "letters, digits and . _ @ - only (at most 64), starting with a letter or digit",
            param_hint="NAME",
        )
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        line = f"{name}:{hash_password(password)}"
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(line)
    click.echo(
        "Add it to IVR_CONSOLE_USERS (several: comma-separated), or in the IVR_CONFIG file:"
        f' [console_users] {name} = "{line.split(":", 1)[1]}"',
        err=True,
    )


COMMANDS = (console_user,)
