"""`kindly rules`: show, check or save a campaign's rules document (JSON)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from kindly.cli.common import campaign_by_slug, open_context
from kindly.rules.store import canonical, current_rules, decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.site import artifacts
from workers.render import queue_rebuild

STALE_HINT = ("stored pages, letters and videos are stale: links show the current page, built "
              "live, until `kindly render {slug}` rebuilds them")  # fmt: skip


@click.command("rules")
@click.argument("slug")
@click.option(
    "--set", "new", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Validate this JSON file, save it as the next version, and decide every debtor.",
)  # fmt: skip
@click.option(
    "--check", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Only validate this JSON file.",
)  # fmt: skip
def command(slug: str, new: Path | None, check: Path | None) -> None:
    """Show the rules in force, or check / save new ones."""
    if check:
        parse_rules(check.read_bytes())
        click.echo(f"{check.name}: valid")
        return
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        if new is None:
            rules = current_rules(session, campaign)
            click.echo(
                f"# rules version {rules.version}"
                + (" (built-in defaults)" if not rules.version else "")
            )
            click.echo(canonical(rules.document))
            return
        before = current_rules(session, campaign).version
        rules = save_rules(session, campaign, parse_rules(new.read_bytes()))
        counts = decide(session, campaign, rules, dt.date.today())
        if rules.version != before:
            artifacts.mark_stale(session, campaign.id, "rules")
        campaign_id = campaign.id
    queue_rebuild(ctx, campaign_id)
    summary = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    click.echo(f"rules version {rules.version} in force for {slug}: {summary or 'no debtors'}")
    if rules.version != before:
        click.echo(STALE_HINT.format(slug=slug) if ctx.settings.jobs_in_process else
                   "stored pages, letters and videos are being rebuilt by the workers")  # fmt: skip
