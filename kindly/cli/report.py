"""`kindly report`: the campaign report as a PDF."""

from __future__ import annotations

from pathlib import Path

import click

from kindly.accounts import audit
from kindly.cli.common import campaign_by_slug, open_context
from kindly.reporting.report import report_pdf


@click.command("report")
@click.argument("slug")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The PDF file to write.",
)
def command(slug: str, out: Path) -> None:
    """Funnel, money, rates and KPIs of a campaign as a printable PDF."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        pdf = report_pdf(session, campaign)
        audit.record(session, None, "export.report", via="cli", campaign_id=campaign.id)
    out.write_bytes(pdf)
    click.echo(f"wrote {out} ({len(pdf)} bytes)")
