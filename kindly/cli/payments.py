"""`kindly payments`: collect instalments and promises, record payments made elsewhere and
reverse them, and a campaign's allocation order."""

from __future__ import annotations

import datetime as dt
import json

import click

from kindly.accounts import audit
from kindly.cases import daily
from kindly.cli.common import campaign_by_slug, open_context
from kindly.errors import KindlyError
from kindly.ledger import manual
from kindly.money import from_minor
from kindly.payments import allocation
from kindly.reconciliation.review import find_debtor


@click.group("payments")
def command() -> None:
    """Instalment plans, promises to pay, and payments made elsewhere."""


@command.command("collect")
@click.option(
    "--today", type=click.DateTime(["%Y-%m-%d"]), help="Act as of this day (tests, catch-up)."
)
def collect(today) -> None:
    """Charge every instalment due (or due for a retry) and resolve passed promises; run daily."""
    ctx = open_context()
    day = today.date() if today else dt.date.today()
    with ctx.db.session() as session:
        summary = daily.collect(session, ctx.settings, day)
    click.echo(json.dumps(summary))


@command.command("record")
@click.argument("reference")
@click.argument("amount")
@click.option("--method", required=True, type=click.Choice(manual.METHODS), help="How it came.")
@click.option(
    "--date", "on", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Day it arrived."
)
@click.option("--campaign", "slug", help="The case's campaign (when the reference is in several).")
@click.option("--currency", help="The amount's currency (checked against the claim's).")
@click.option("--note", default="", help="What the money was (cheque number, receipt, …).")
def record(reference, amount, method, on, slug, currency, note) -> None:
    """Book a payment the creditor received directly (cash, cheque, another account)."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug) if slug else None
        debtor = find_debtor(session, reference, campaign)
        payment = manual.record(
            session, debtor, amount, method=method, on=on.date(), note=note,
            currency=currency, user=None, via="cli",
        )  # fmt: skip
        click.echo(
            f"payment {payment.id}: {from_minor(payment.amount_minor, payment.currency)} "
            f"{payment.currency} {method} on {on.date().isoformat()} for {debtor.reference}"
        )


@command.command("reverse")
@click.argument("payment_id", type=int)
@click.option("--note", required=True, help="Why the payment is reversed.")
def reverse(payment_id: int, note: str) -> None:
    """Undo a recorded payment by a counter-entry (the original is kept)."""
    ctx = open_context()
    with ctx.db.session() as session:
        payment = manual.payment_or_fail(session, payment_id)
        row = manual.reverse(session, payment, note=note, user=None, via="cli")
        click.echo(
            f"payment {payment.id} reversed by {row.id}: "
            f"{from_minor(row.amount_minor, row.currency)} {row.currency}"
        )


@command.command("allocation")
@click.argument("slug")
@click.option("--order", help="The parts in the order a payment settles them, e.g. "
              "fees,interest,principal (§ 367 BGB, the default).")  # fmt: skip
def allocation_order(slug: str, order: str | None) -> None:
    """Show or set the order in which payments settle fees, interest and principal."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        if order is not None:
            parts = [part.strip() for part in order.split(",") if part.strip()]
            if problems := allocation.check_order(parts):
                raise KindlyError("; ".join(problems))
            settings = dict(campaign.settings or {})
            settings["payments"] = {**(settings.get("payments") or {}), allocation.KEY: parts}
            campaign.settings = settings
            audit.record(session, None, "campaign.allocation_order", via="cli",
                         campaign_id=campaign.id, order=parts)  # fmt: skip
        click.echo(",".join(allocation.order_of(campaign)))
