"""`kindly import`, `kindly export` and `kindly stats`: a campaign's debtors in and out."""

from __future__ import annotations

import json
from pathlib import Path

import click
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.campaigns.portfolio import import_portfolio, read_portfolio, write_rejects
from kindly.campaigns.service import by_slug, create_campaign, is_slug
from kindly.claims.balance import balances_on
from kindly.cli.common import campaign_by_slug, open_context
from kindly.errors import NotFound
from kindly.infra import csvsafe
from kindly.money import from_minor
from kindly.reporting.metrics import campaign_stats
from kindly.site.models import Artifact


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", "slug", required=True, help="The campaign's slug.")
@click.option("--create", is_flag=True, help="Create the campaign if it does not exist.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows; write the rest to FILE.rejected.csv.",
)
@click.option("--name", help="The campaign's name (with --create).")
@click.option(
    "--locale",
    "default_locale",
    default="de-DE",
    show_default=True,
    help="Default locale (with --create).",
)
@click.option("--creditor", help="Default creditor (with --create).")
def import_command(
    file: Path, slug: str, create: bool, skip_invalid: bool, name, default_locale, creditor
) -> None:
    """Load a portfolio (CSV or JSON): all or nothing unless --skip-invalid."""
    if not is_slug(slug):
        raise click.BadParameter("lower-case letters, digits and '-' only", param_hint="--campaign")
    rows = read_portfolio(file.read_bytes(), file.name)
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = by_slug(session, slug)
        if campaign is None:
            if not create:
                raise NotFound(f"no campaign {slug!r}; add --create to create it")
            campaign = create_campaign(
                session, slug, name=name, default_locale=default_locale, creditor=creditor
            )
        result, rejected = import_portfolio(session, campaign, rows, skip_invalid=skip_invalid)
    if rejected:
        out = file.with_name(file.stem + ".rejected.csv")
        write_rejects(out, rejected)
        click.echo(f"{len(rejected)} row(s) rejected, written with reasons to {out}", err=True)
    click.echo(
        f"imported into {slug}: {result.created} created, {result.updated} updated,"
        f" {result.rejected} rejected"
    )
    items = result.items
    if items.added or items.updated or items.closed:
        click.echo(
            f"items: {items.added} added, {items.updated} updated ({items.reopened} reopened),"
            f" {items.closed} closed"
        )


@click.command("export")
@click.argument("slug")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file to write.",
)
@click.option(
    "--items",
    "items_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the cases' items here, one row each (date, description, amount, state).",
)
def export(slug: str, out: Path, items_out: Path | None = None) -> None:
    """One row per debtor: reference, token, links, artifact keys, segment, variant, channel,
    payment reference, and what is open today with the interest in it; with --items, one row
    per item of every case in a second file."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        debtors = session.scalars(
            select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.reference)
        ).all()
        owed = balances_on(session, debtors)  # as of today: with the interest accrued by then
        keys = {
            (debtor_id, kind): key
            for debtor_id, kind, key in session.execute(
                select(Artifact.debtor_id, Artifact.kind, Artifact.key)
                .join(Debtor, Debtor.id == Artifact.debtor_id)
                .where(Debtor.campaign_id == campaign.id)
            )
        }
        with out.open("w", encoding="utf-8", newline="") as handle:
            writer = csvsafe.writer(handle)
            writer.writerow(
                [
                    "reference",
                    "token",
                    "site_url",
                    "letter_key",
                    "video_key",
                    "segment",
                    "variant",
                    "channel",
                    "payment_reference",
                    "amount_today",
                    "interest_today",
                ]
            )
            for d in debtors:
                writer.writerow([
                    d.reference, d.token, f"{ctx.settings.base_url}/s/{d.token}",
                    keys.get((d.id, "letter"), ""), keys.get((d.id, "video"), ""),
                    d.segment, d.variant, d.channel, d.payment_reference or "",
                    from_minor(owed[d.id].balance_minor, d.currency),
                    from_minor(owed[d.id].claim.interest_minor, d.currency),
                ])  # fmt: skip
        if items_out is not None:
            from kindly.claims.items import EXPORT_COLUMNS, export_rows

            rows = export_rows(session, debtors)
            with items_out.open("w", encoding="utf-8", newline="") as handle:
                writer = csvsafe.writer(handle)
                writer.writerow(EXPORT_COLUMNS)
                for row in rows:
                    writer.writerow(row)
            click.echo(f"exported {len(rows)} item(s) to {items_out}")
    click.echo(f"exported {len(debtors)} debtor(s) to {out}")


@click.command("stats")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(slug: str, as_json: bool) -> None:
    """The funnel (people only; raw counts under funnel_raw) and the money collected."""
    ctx = open_context()
    with ctx.db.session() as session:
        data = campaign_stats(session, campaign_by_slug(session, slug))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"campaign {slug}: {data['debtors']} debtors")
    for step, value in data["funnel"].items():
        if step != "collected":
            raw = data["funnel_raw"][step]
            extra = f"  ({raw} incl. machines)" if raw != value else ""
            click.echo(f"  {step:<16} {value:>8}{extra}")
    for currency, amount in sorted(data["collected"].items()):
        click.echo(f"  collected        {amount} {currency}")
