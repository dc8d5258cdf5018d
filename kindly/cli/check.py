"""`kindly check SLUG`: would this campaign's demands and messages carry what they must?"""

from __future__ import annotations

import json
import sys

import click

from kindly.cli.common import campaign_by_slug, open_context
from kindly.launch import as_dicts, check_campaign


@click.command("check")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(slug: str, as_json: bool) -> None:
    """List every fact (RDG §13a) or opt-out a template or the campaign lacks; exit 1 if any."""
    ctx = open_context()
    with ctx.db.session() as session:
        gaps = check_campaign(session, campaign_by_slug(session, slug))
    if as_json:
        click.echo(
            json.dumps({"campaign": slug, "ready": not gaps, "gaps": as_dicts(gaps)}, indent=2)
        )
    elif gaps:
        for gap in gaps:
            click.echo(f"  {gap}")
        click.echo(f"{slug}: {len(gaps)} gap(s); the campaign cannot launch", err=True)
    else:
        click.echo(f"{slug}: every template in every language and tone carries the required facts")
    if gaps:
        sys.exit(1)
