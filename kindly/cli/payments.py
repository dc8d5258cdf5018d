"""`kindly payments collect`: charge the instalments due and settle promises whose day passed."""

from __future__ import annotations

import datetime as dt
import json

import click

from kindly.cases import daily
from kindly.cli.common import open_context


@click.group("payments")
def command() -> None:
    """Instalment plans and promises to pay."""


@command.command("collect")
@click.option(
    "--today", type=click.DateTime(["%Y-%m-%d"]), help="Act as of this day (tests, catch-up)."
)
def collect(today) -> None:
    """Charge every instalment due (or due for a retry) and resolve passed promises; run daily."""
    ctx = open_context()
    day = today.date() if today else dt.date.today()
    with ctx.db.session() as session:
        summary = daily.collect(session, ctx.settings, day)
    click.echo(json.dumps(summary))
