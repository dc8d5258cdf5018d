"""`kindly creditor`: the profiles of the creditors whose claims the campaigns collect."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kindly.accounts import audit
from kindly.cli.common import open_context
from kindly.creditors.service import (
    FIELDS,
    CreditorError,
    as_dict,
    get_creditor,
    list_creditors,
    prepare_logo,
    set_creditor,
)
from kindly.site import artifacts

OPTIONS = {
    "legal_form": ("--legal-form", "Legal form, e.g. GmbH, S.p.A., Ltd."),
    "address": ("--address", "Postal address, lines separated by ';' or new lines."),
    "email_sender_name": ("--sender-name", "The name emails are sent under."),
    "email_address": ("--email", "Where replies go (Reply-To), shown as contact."),
    "phone": ("--phone", "Phone number for debtors, international form (+49 30 1234567)."),
    "payee_name": ("--payee-name", "Account holder of the IBAN (default: the creditor's name)."),
    "iban": ("--iban", "The account debtors pay into by transfer."),
    "bic": ("--bic", "The bank's BIC (8 or 11 characters)."),
    "supervisory_authority": ("--authority", "Supervisory authority, where one applies."),
    "brand_color": ("--colour", "Brand colour as #rrggbb."),
}
"""Each profile field's option; an empty value ('') clears a field."""


@click.group("creditor")
def command() -> None:
    """Creditor profiles: address, contact, bank account, authority, logo and colour."""


def _options(view):
    for field, (flag, text) in reversed(OPTIONS.items()):
        view = click.option(flag, field, default=None, metavar="TEXT", help=text)(view)
    return view


@command.command("set")
@click.argument("name")
@_options
@click.option("--logo", "logo_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A PNG or JPEG picture for letters, pages and videos.")  # fmt: skip
def set_command(name: str, logo_file: Path | None, **values: str | None) -> None:
    """Create or change the profile NAME (as the portfolio's creditor column writes it);
    options not given keep their value. Nothing is saved while any value is wrong."""
    changes = {key: value for key, value in values.items() if value is not None}
    ctx = open_context()
    png = None
    try:
        if logo_file is not None:
            try:
                data = logo_file.read_bytes()
            except OSError as exc:
                raise CreditorError([f"logo: cannot read {logo_file}: {exc.strerror}"]) from None
            changes["logo"], png = prepare_logo(data)
        if not changes and not logo_file:
            with ctx.db.session() as session:
                if get_creditor(session, name) is not None:
                    raise click.UsageError("nothing to change: give at least one option")
        with ctx.db.session() as session:
            existed = get_creditor(session, name) is not None
            row = set_creditor(session, name, changes)
            artifacts.mark_creditor_stale(session, row.name)  # rebuilt by the worker's sweep
            if png is not None:
                ctx.storage.put(changes["logo"], png, "image/png")
            audit.record(session, None, "creditor.set", via="cli", creditor=row.name,
                         fields=sorted(changes))  # fmt: skip
            click.echo(f"{'changed' if existed else 'created'} creditor {row.name}")
    except CreditorError as exc:
        lines = "".join(f"\n  {error}" for error in exc.errors)
        raise click.ClickException(f"creditor {name!r} not saved:{lines}") from None


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(as_json: bool) -> None:
    """Every creditor profile, by name."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = [as_dict(row) for row in list_creditors(session)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no creditor profiles yet: kindly creditor set NAME --address … --phone …")
    for row in rows:
        contact = " · ".join(part for part in (row["phone"], row["email_address"]) if part)
        click.echo(f"{row['name']}\t{contact or '(no contact)'}\t{row['iban'] or '(no IBAN)'}")


@command.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_command(name: str, as_json: bool) -> None:
    """One creditor's profile."""
    ctx = open_context()
    with ctx.db.session() as session:
        row = get_creditor(session, name)
        if row is None:
            raise click.ClickException(f"no creditor {name!r}: kindly creditor set {name!r} …")
        data = as_dict(row)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(data["name"])
    for field in FIELDS:
        value = data[field]
        shown = "; ".join(value) if isinstance(value, list) else value
        click.echo(f"  {field}: {shown or '-'}")
