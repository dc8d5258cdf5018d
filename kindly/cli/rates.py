"""`kindly rates`: the base-rate table statutory interest uses (§ 247 BGB)."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from kindly.accounts import audit
from kindly.campaigns.models import Campaign
from kindly.claims import accrual, rates
from kindly.cli.common import open_context
from kindly.site import artifacts


@click.group("rates")
def command() -> None:
    """The base rate (Basiszinssatz) by half-year."""


@command.command("show")
def show() -> None:
    """Print the table in force, in the format `rates update` reads."""
    ctx = open_context()
    with ctx.db.session() as session:
        table = rates.table(session)
    click.echo(f"# {table.source} table, up to {table.ends.isoformat()}")
    click.echo(rates.as_csv(table), nl=False)


@command.command("update")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def update(file: Path) -> None:
    """Load a new table (valid_from,rate per half-year): all of it, or nothing."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file.name}: not a UTF-8 text file") from None
    ctx = open_context()
    with ctx.db.session() as session:
        try:
            table = rates.replace(session, text)
        except rates.RatesError as exc:
            raise click.ClickException(str(exc)) from None
        last_day, last_rate = table.rows[-1]
        # pages and letters of campaigns charging statutory interest show the old rates
        statutory = [
            campaign_id
            for campaign_id, document in accrual.documents(
                session, list(session.scalars(select(Campaign.id)))
            ).items()
            if isinstance(spec := document.get("interest"), dict)
            and spec.get("basis") == "statutory"
        ]
        for campaign_id in statutory:
            artifacts.mark_stale(session, campaign_id, "rates", kinds=("site", "letter"))
        audit.record(session, None, "rates.update", via="cli", rows=len(table.rows),
                     last=last_day.isoformat(), rate=str(last_rate),
                     campaigns=len(statutory))  # fmt: skip
    click.echo(
        f"loaded {len(table.rows)} base rate(s), up to {table.ends.isoformat()}"
        f" (last: {last_rate:.2f} % from {last_day.isoformat()})"
    )
