"""`kindly bank report`: what each statement brought, for the creditor's books."""

from __future__ import annotations

import json

import click

from kindly.cli.common import open_context
from kindly.reporting import bank


@click.command("report")
@click.option("--statement", "statement_id", type=int, help="One statement (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def report(statement_id: int | None, as_json: bool) -> None:
    """Entries and amounts per statement: matched by rule, unmatched, ignored, booked."""
    ctx = open_context()
    with ctx.db.session() as session:
        found = bank.reports(session, None if statement_id is None else [statement_id])
    if as_json:
        click.echo(json.dumps(found if statement_id is None else found[0], indent=2))
        return
    if not found:
        click.echo("no bank statements imported yet")
    for item in found:
        click.echo(f"statement {item['statement']} ({item['format']}, {item['filename'] or '-'}, "
                   f"account {item['account'] or '-'}): {item['entries']} entries")  # fmt: skip
        for state, bucket in item["states"].items():
            if bucket["entries"]:
                click.echo(f"  {state:<12} {bucket['entries']:>6}  {_amounts(bucket)}")
        for rule, bucket in item["matched_by_rule"].items():
            click.echo(f"    by {rule:<11} {bucket['entries']:>6}  {_amounts(bucket)}")
        for currency, booked in item["booked"].items():
            click.echo(f"  booked       {booked['payments']:>6}  {booked['amount']} {currency}")


def _amounts(bucket) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in bucket["amounts"].items())
