"""`kindly purge`: erase the closed cases past their campaign's retention period.

Workers run the same purge every day at 03:00 UTC (workers.daily); this command is
for a preview (the default) or a purge now.
"""

from __future__ import annotations

import click

from kindly import privacy
from kindly.cli.common import open_context


@click.command("purge")
@click.option("--yes", is_flag=True, help="Erase for real (without it: a dry run).")
def command(yes: bool) -> None:
    """Erase the closed cases past their campaign's retention_days (dry run by default)."""
    ctx = open_context()
    with ctx.db.session() as session:
        done = privacy.purge_retention(session, ctx.storage, via="cli", dry_run=not yes)
    if not done:
        click.echo("nothing to purge: no closed case is past its campaign's retention period")
        return
    verb = "erased" if yes else "dry run: would erase"
    for slug, count in done.items():
        click.echo(f"{verb} {count} debtors of {slug}")
    if not yes:
        click.echo("add --yes to do it")
