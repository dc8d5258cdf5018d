"""`kindly privacy`: export or erase one debtor's data; purge a campaign after its retention."""

from __future__ import annotations

import json
import sys

import click

from kindly import privacy
from kindly.accounts import audit
from kindly.cli.common import campaign_by_slug, open_context


@click.group("privacy")
def command() -> None:
    """Data protection: a debtor's data on request, erasure, retention purges."""


@command.command("export")
@click.argument("slug")
@click.argument("reference")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to a file, not stdout.")
def export(slug: str, reference: str, out: str | None) -> None:
    """Everything held about one debtor, as JSON (GDPR Art. 15)."""
    ctx = open_context()
    with ctx.db.session() as session:
        try:
            campaign, debtor = privacy.find(session, slug, reference)
        except privacy.NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        data = privacy.export_debtor(session, campaign, debtor)
        audit.record(session, None, "privacy.export", via="cli", campaign_id=campaign.id,
                     reference=reference)  # fmt: skip
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        click.echo(f"wrote {out}", err=True)
    else:
        sys.stdout.write(text + "\n")


@command.command("erase")
@click.argument("slug")
@click.argument("reference")
def erase(slug: str, reference: str) -> None:
    """Anonymise one debtor; amounts, payments and event counts stay (GDPR Art. 17)."""
    ctx = open_context()
    with ctx.db.session() as session:
        try:
            campaign, debtor = privacy.find(session, slug, reference)
        except privacy.NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        done = privacy.erase_debtor(session, debtor, ctx.storage)
        audit.record(session, None, "privacy.erase", via="cli", campaign_id=campaign.id,
                     reference=reference, events_scrubbed=done["events_scrubbed"],
                     artifacts_deleted=done["artifacts_deleted"])  # fmt: skip
    click.echo(
        f"erased {reference}: {done['events_scrubbed']} events scrubbed, "
        f"{done['artifacts_deleted']} artifacts deleted; the link no longer works"
    )


@command.command("purge")
@click.argument("slug")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=0),
    required=True,
    help="Days since the campaign ended (or was created, if never launched).",
)
@click.option("--yes", is_flag=True, help="Erase for real (without it: a dry run).")
def purge(slug: str, days: int, yes: bool) -> None:
    """Erase every debtor of a campaign past its retention period (dry run by default)."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        due, reason = privacy.purge_due(session, campaign, days)
        if reason:
            click.echo(f"nothing to purge in {slug}: {reason}")
            return
        if not yes:
            click.echo(f"dry run: would erase {len(due)} debtors of {slug} (add --yes to do it)")
            return
        for debtor in due:
            privacy.erase_debtor(session, debtor, ctx.storage)
        audit.record(session, None, "privacy.purge", via="cli", campaign_id=campaign.id,
                     erased=len(due), older_than_days=days)  # fmt: skip
    click.echo(f"erased {len(due)} debtors of {slug}")
