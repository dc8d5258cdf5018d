"""`kindly segments`: how many debtors fall into each segment and variant."""

from __future__ import annotations

import json

import click
from sqlalchemy import func, select

from kindly.cli import _campaign, _context
from kindly.core.models import Debtor


@click.command("segments")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(slug: str, as_json: bool) -> None:
    """How many debtors fall into each segment and variant."""
    ctx = _context()
    with ctx.db.session() as session:
        campaign = _campaign(session, slug)
        rows = session.execute(
            select(Debtor.segment, Debtor.variant, func.count(Debtor.id))
            .where(Debtor.campaign_id == campaign.id)
            .group_by(Debtor.segment, Debtor.variant)
            .order_by(Debtor.segment, Debtor.variant)
        ).all()
    data = [{"segment": s, "variant": v, "debtors": n} for s, v, n in rows]
    if as_json:
        click.echo(json.dumps({"campaign": slug, "segments": data}, indent=2))
    else:
        for row in data:
            click.echo(f"{row['segment']:<24} {row['variant']:<12} {row['debtors']:>8}")
