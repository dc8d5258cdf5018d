"""`kindly payments collect`: charge the instalments due and settle promises whose day passed."""

from __future__ import annotations

import datetime as dt
import json

import click

from kindly.cli.common import open_context
from kindly.payments import plans, promises


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
        run = plans.collect_with(session, ctx.settings, day)
        resolved = promises.resolve_due(session, day)
    summary = {
        "day": day.isoformat(),
        "charged": run.charged,
        "succeeded": run.succeeded,
        "failed": run.failed,
        "processing": run.processing,
        "plans_completed": run.completed,
        "plans_broken": run.broken,
        "sepa_notices": len(run.notices),
        "promises": resolved,
    }
    click.echo(json.dumps(summary))
