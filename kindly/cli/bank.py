"""`kindly bank`: statement files in, the review queue, and a watched folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from kindly.accounts import audit
from kindly.cli.common import campaign_by_slug, open_context
from kindly.reconciliation import review, watch
from kindly.reconciliation.importer import import_statement
from kindly.reconciliation.models import BankEntry

SUMMARY = ("entries", "matched", "unmatched", "ignored", "returned", "already_imported")


@click.group("bank")
def command() -> None:
    """Bank statements: import, the review queue, a watched folder."""


def _mapping(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise click.ClickException(f"{path}: not a JSON column mapping ({error})") from None


@command.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", help="The IBAN the statement is for (needed when the file lacks it).")
@click.option("--campaign", "slug", help="Match only against this campaign's cases.")
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A saved CSV column mapping (JSON).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def import_command(
    file: Path, account: str | None, slug: str | None, mapping: Path | None, as_json: bool
) -> None:
    """Import a camt.053/.054, MT940 or mapped CSV statement: all of it or nothing."""
    ctx = open_context()
    data = file.read_bytes()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug) if slug else None
        result = import_statement(
            session, ctx.storage, data, file.name, campaign=campaign, account=account,
            by="operator", mapping=_mapping(mapping),
        )  # fmt: skip
        audit.record(session, None, "bank.import", via="cli",
                     campaign_id=campaign.id if campaign else None, statement=result.statement_id,
                     file=file.name, **{k: getattr(result, k) for k in SUMMARY})  # fmt: skip
    if as_json:
        click.echo(json.dumps(result.as_dict()))
        return
    counts = ", ".join(f"{getattr(result, k)} {k.replace('_', ' ')}" for k in SUMMARY)
    note = " (this file was imported before)" if result.duplicate else ""
    click.echo(f"statement {result.statement_id} ({result.format}): {counts}{note}")


@command.command("unmatched")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def unmatched(as_json: bool) -> None:
    """The entries waiting for a decision."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = [review.summary(entry) for entry in review.waiting(session)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("nothing waits for a decision")
    for row in rows:
        click.echo(
            f"{row['id']:>7}  {row['date'] or '':10}  {row['amount']:>12} {row['currency']}  "
            f"{(row['name'] or '')[:30]:30}  {row['remittance'][:50]}  [{row['reason']}]"
        )


@command.command("assign")
@click.argument("entry", type=int)
@click.argument("reference")
@click.option("--campaign", "slug", help="The campaign of the reference, when several have it.")
def assign(entry: int, reference: str, slug: str | None) -> None:
    """Book a waiting entry to the case with REFERENCE (or payment reference)."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug) if slug else None
        debtor = review.find_debtor(session, reference, campaign)
        review.assign(session, entry, debtor, user=None, via="cli")
    click.echo(f"entry {entry} booked to {reference}")


@command.command("split")
@click.argument("entry", type=int)
@click.argument("parts", nargs=-1, required=True)
@click.option("--campaign", "slug", help="The campaign of the references, when several have them.")
def split(entry: int, parts: tuple[str, ...], slug: str | None) -> None:
    """Book a waiting entry across cases: REF=AMOUNT … adding up to the entry exactly."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug) if slug else None
        row = session.get(BankEntry, entry)
        if row is None:
            raise review.ReviewError(f"there is no bank entry {entry}")
        shares = []
        for part in parts:
            reference, sep, amount = part.rpartition("=")
            if not sep or not reference:
                raise click.UsageError(f"{part!r}: write each part as REF=AMOUNT")
            debtor = review.find_debtor(session, reference, campaign)
            shares.append(review.Part(debtor, review.amount_of(amount, row.currency)))
        review.split(session, entry, shares, user=None, via="cli")
    click.echo(f"entry {entry} split across {len(parts)} cases")


@command.command("not-ours")
@click.argument("entry", type=int)
@click.option("--note", required=True, help="Why the money belongs to no case.")
def not_ours(entry: int, note: str) -> None:
    """Mark a waiting entry as belonging to no case."""
    ctx = open_context()
    with ctx.db.session() as session:
        review.not_ours(session, entry, note, user=None, via="cli")
    click.echo(f"entry {entry} marked not ours")


@command.command("watch")
@click.argument("where", metavar="FOLDER|s3://BUCKET/PREFIX/")
@click.option("--account", help="The IBAN of files that do not name it.")
@click.option("--campaign", "slug", help="Match only against this campaign's cases.")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--interval", default=60.0, show_default=True, help="Seconds between sweeps.")
@click.option("--once", is_flag=True, help="One sweep, then stop (cron, tests).")
@click.option("--settle", default=watch.SETTLE_SECONDS, show_default=True,
              help="Seconds a file must stay unchanged before it is read.")  # fmt: skip
def watch_command(
    where: str, account: str | None, slug: str | None, mapping: Path | None,
    interval: float, once: bool, settle: float,
) -> None:  # fmt: skip
    """Import each file that arrives in a folder or an S3 prefix once; move it to done/ or
    failed/ beside it. An S3 prefix is read with KINDLY_S3_ENDPOINT_URL and the usual AWS
    credentials."""
    from botocore.exceptions import BotoCoreError, ClientError  # only a watch needs boto

    ctx = open_context()
    try:
        inbox = watch.inbox_for(where, ctx.settings.s3_endpoint_url)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    by = f"watch:{Path(where).name}" if not where.startswith("s3://") else f"watch:{where}"
    if slug:
        with ctx.db.session() as session:
            campaign_by_slug(session, slug)
    rules = _mapping(mapping)
    while True:
        try:
            outcomes = watch.sweep(ctx.db, ctx.storage, inbox, account=account, by=by[:320],
                                   campaign_slug=slug, mapping=rules, settle=settle)  # fmt: skip
        except (BotoCoreError, ClientError) as error:  # the bucket, not a file: try again later
            if once:
                raise click.ClickException(f"{where}: S3 unreachable ({error})") from None
            click.echo(f"{where}: S3 unreachable ({error}); next sweep in {interval:g} s", err=True)
            outcomes = []
        for outcome in outcomes:
            if outcome.result is None:
                click.echo(f"{outcome.name}: refused: {outcome.error}", err=True)
            else:
                counts = ", ".join(f"{getattr(outcome.result, k)} {k}" for k in SUMMARY)
                click.echo(f"{outcome.name}: {counts}")
        if once:
            return
        time.sleep(interval)
