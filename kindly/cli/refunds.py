"""`kindly refunds`: overpayments to hand back, a manager's approval, and the pain.001 file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kindly.cli.common import open_context
from kindly.money import from_minor
from kindly.refunds import sepa, service
from kindly.refunds.models import STATUSES

WAYS = {"transfer": "SEPA transfer", "card": "refund by card provider"}


def _row(refund, debtor, campaign) -> dict[str, Any]:
    return {
        "id": refund.id,
        "campaign": campaign.slug,
        "reference": debtor.reference,
        "amount": str(from_minor(refund.amount_minor, refund.currency)),
        "currency": refund.currency,
        "status": refund.status,
        "way": refund.way,
        "payer_iban": refund.payer_iban,
        "payer_name": refund.payer_name,
        "approved_by": refund.approved_by,
        "end_to_end_id": refund.end_to_end_id,
        "export": refund.export_id,
    }


@click.group("refunds")
def command() -> None:
    """Overpayments to hand back: list, approve, export a SEPA credit-transfer file."""


@command.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Only these states (repeat); default: every state.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(statuses: tuple[str, ...], as_json: bool) -> None:
    """Every refund, the newest first, after listing each new credit from the ledger."""
    ctx = open_context()
    with ctx.db.session() as session:
        service.sync(session)
        rows = [_row(*row) for row in service.listed(session, statuses=statuses or None)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No refunds: no case has been paid beyond its claim.")
    for r in rows:
        payer = " ".join(p for p in (r["payer_name"], r["payer_iban"]) if p) or "payer unknown"
        click.echo(f"{r['id']:>6}  {r['status']:<9} {r['amount']:>12} {r['currency']}  "
                   f"{r['campaign']}/{r['reference']}  {WAYS[r['way']]}  {payer}")  # fmt: skip


@command.command("approve")
@click.argument("refund_id", type=click.IntRange(min=1, max=2**31 - 1))
def approve_command(refund_id: int) -> None:
    """Approve a due refund for the next pain.001 file (audited)."""
    ctx = open_context()
    with ctx.db.session() as session:
        service.sync(session)
        refund = service.refund_or_fail(session, refund_id)
        service.approve(session, refund, user=None, via="cli")
        amount = from_minor(refund.amount_minor, refund.currency)
    click.echo(f"Refund {refund_id} approved: {amount} {refund.currency}.")


@command.command("done")
@click.argument("refund_id", type=click.IntRange(min=1, max=2**31 - 1))
def done_command(refund_id: int) -> None:
    """Record that the bank carried out an exported refund."""
    ctx = open_context()
    with ctx.db.session() as session:
        service.mark_done(session, service.refund_or_fail(session, refund_id), user=None, via="cli")
    click.echo(f"Refund {refund_id} done.")


def _targets(out: Path, files: list[sepa.ExportFile]) -> list[Path]:
    """One file: `out`; one per creditor account: `out` with the account's IBAN in its name."""
    if len(files) == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{f.export.account_iban}{out.suffix}") for f in files]


@command.command("export")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the pain.001 (one per creditor account: the IBAN in each name).",
)
def export_command(out: Path) -> None:
    """Write the SEPA credit-transfer file for the approved refunds and book each one once."""
    if not out.parent.is_dir():
        raise click.ClickException(f"{out.parent} is not a folder")
    ctx = open_context()
    written: list[Path] = []
    with ctx.db.session() as session:
        result = sepa.export(session, user=None, via="cli")
        try:  # the files first: refunds are booked only when their file is on disk
            for path, file in zip(_targets(out, result.files), result.files, strict=True):
                path.write_bytes(file.document)
                written.append(path)
        except OSError as error:
            for path in written:
                path.unlink(missing_ok=True)
            session.rollback()
            raise click.ClickException(
                f"{out}: cannot write ({error}); nothing was booked"
            ) from None
    for refund_id, why in result.held:
        click.echo(f"Refund {refund_id} held back: {why}.", err=True)
    if not result.files:
        click.echo("Nothing to export: no approved refund waits.")
    for path, file in zip(written, result.files, strict=True):
        total = from_minor(file.export.total_minor, file.export.currency)
        click.echo(f"{path}: {file.export.count} refunds, {total} EUR from "
                   f"{file.export.account_iban} (message {file.export.msg_id})")  # fmt: skip
