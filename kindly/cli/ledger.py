"""`kindly ledger export`: a campaign's bookings in a period as CSV, for the creditor's books."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kindly.accounts import audit
from kindly.cli.common import campaign_by_slug, open_context
from kindly.ledger import export


@click.group("ledger")
def command() -> None:
    """The creditor's ledger of a campaign."""


@command.command("export")
@click.argument("slug")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day (inclusive).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (inclusive).")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (default: stdout)."
)
def export_command(slug: str, start, end, out: Path | None) -> None:
    """One row per booking (payment, refund, return, reversal) with its allocation and balance."""
    first, last = (start.date() if start else None), (end.date() if end else None)
    if first and last and first > last:
        raise click.BadParameter(f"--from {first} is after --to {last}")
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        found = export.rows(session, campaign, first, last)
        if out is None:
            count = export.write(sys.stdout, found)
        else:
            with out.open("w", encoding="utf-8", newline="") as handle:
                count = export.write(handle, found)
        audit.record(session, None, "export.ledger", via="cli", campaign_id=campaign.id,
                     rows=count, start=first and first.isoformat(),
                     end=last and last.isoformat())  # fmt: skip
    if out is not None:
        click.echo(f"{count} booking(s) written to {out}", err=True)
