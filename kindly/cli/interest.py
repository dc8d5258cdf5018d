"""`kindly interest SLUG REF [--on DATE] [--json]`: how a case's interest is made up on a day."""

from __future__ import annotations

import datetime as dt
import json

import click

from kindly import privacy
from kindly.claims import accrual, interest
from kindly.claims.balance import balance_on
from kindly.cli.common import open_context
from kindly.money import from_minor


@click.command("interest")
@click.argument("slug")
@click.argument("reference")
@click.option(
    "--on", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
    help="The day to compute it for (default: today).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(slug: str, reference: str, day: dt.datetime | None, as_json: bool) -> None:
    """Per piece: principal, rate(s), period(s), days and interest; then the totals."""
    on = day.date() if day is not None else dt.date.today()
    ctx = open_context()
    with ctx.db.session() as session:
        try:
            _, debtor = privacy.find(session, slug, reference)
        except privacy.NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        found = accrual.breakdowns(session, [debtor], on).get(debtor.id)
        breakdown = found or interest.Breakdown(on, interest.NONE, [], [])
        data = interest.as_dict(breakdown, debtor.currency)
        owed = balance_on(session, debtor, on)
        data["totals"].update(
            amount=str(from_minor(owed.claim.total_minor, debtor.currency)),
            paid=str(from_minor(owed.paid_minor, debtor.currency)),
            balance=str(from_minor(owed.balance_minor, debtor.currency)),
        )
        data = {"campaign": slug, "reference": reference, **data}
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if data["basis"] == "none":
        click.echo(f"{reference}: no interest (the campaign's rules charge none)")
    for piece in data["pieces"]:
        click.echo(
            f"{piece['label']}: {piece['principal']} {data['currency']}, due {piece['due_date']}"
        )
        for p in piece["periods"]:
            note = "  (last known base rate)" if p["beyond_table"] else ""
            click.echo(
                f"  {p['from']} – {p['to']}  {p['days']:>4} days  {p['principal']:>12}"
                f"  {p['rate']:>6} %  {p['interest']:>10}{note}"
            )
    totals = data["totals"]
    click.echo(
        f"interest {totals['interest']}, amount {totals['amount']}, paid {totals['paid']},"
        f" open {totals['balance']} {data['currency']} on {data['on']}"
    )
