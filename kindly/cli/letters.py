"""`kindly letters`: a campaign's letter options, and print batches for a print-and-mail house."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click
from sqlalchemy import select

from kindly.campaigns import logo as campaign_logo
from kindly.campaigns.models import Debtor
from kindly.campaigns.service import status_of
from kindly.cases.read import cases_for
from kindly.cli.common import campaign_by_slug, open_context
from kindly.errors import KindlyError
from kindly.infra.storage import Storage
from kindly.messaging.print_batches import (
    Placed,
    chunks,
    place,
    select_for_print,
    write_manifest,
    write_skipped,
)
from kindly.payments import ledger
from kindly.payments.iban import LETTER_KEYS, compact, validate_letter_settings
from kindly.site import artifacts
from kindly.site.personalise import build_view
from renderer.view import DebtorView

_renderer = None  # one warm LetterRenderer per worker process


def _render_batch(path: str, views: list[DebtorView], pad_to: int) -> list[int]:
    """Worker: render one batch file; return each letter's own page count."""
    global _renderer
    if _renderer is None:
        from renderer.letter import LetterRenderer

        logging.getLogger("weasyprint").setLevel(logging.ERROR)
        _renderer = LetterRenderer()
    pdf, pages = _renderer.render_batch(views, pad_to=pad_to)
    tmp = Path(path).with_suffix(".pdf.tmp")
    tmp.write_bytes(pdf)
    tmp.replace(path)  # a provider never picks up half a file
    return pages


def _upload_logo(value: str, storage: Storage, slug: str) -> str:
    """Read a logo file given on the command line into storage; its key for the settings."""
    path = Path(value).expanduser()
    try:
        data = path.read_bytes()[: campaign_logo.MAX_BYTES + 1]
        return campaign_logo.save(storage, slug, campaign_logo.prepare(data))
    except OSError as exc:
        raise click.BadParameter(f"logo: cannot read {value!r} ({exc.strerror})") from None
    except campaign_logo.LogoError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_settings(
    pairs: tuple[str, ...], unset: tuple[str, ...], current: dict, storage: Storage, slug: str
) -> dict:
    """The campaign's settings with `KEY=VALUE` pairs applied and `unset` keys removed."""
    settings = dict(current)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in LETTER_KEYS:
            raise click.BadParameter(
                f"{pair!r}: use KEY=VALUE with KEY one of {', '.join(LETTER_KEYS)}",
                param_hint="--set",
            )
        value = value.strip()
        if key in ("iban", "bic"):
            value = compact(value)
        if key == "logo" and value:
            value = _upload_logo(value, storage, slug)  # the picture, not its path, is kept
        settings[key] = value
    for key in unset:
        settings.pop(key, None)
    return settings


@click.command("letters")
@click.argument("slug")
@click.option(
    "--set",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help=f"Save a letter option on the campaign ({', '.join(LETTER_KEYS)}).",
)
@click.option("--unset", multiple=True, metavar="KEY", help="Remove a letter option.")
@click.option("--batch", is_flag=True, help="Write print batches: PDFs and a manifest CSV.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the batches (default: letters-SLUG).",
)
@click.option(
    "--batch-size",
    default=250,
    show_default=True,
    type=click.IntRange(1),
    help="Letters per batch file.",
)
@click.option(
    "--pad-to",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Pad each letter to a multiple of this many pages (2: duplex, new sheet each).",
)
@click.option(
    "--workers",
    default=os.cpu_count() or 1,
    show_default=True,
    type=click.IntRange(1),
    help="Processes rendering batches side by side.",
)
def command(
    slug: str,
    pairs: tuple[str, ...],
    unset: tuple[str, ...],
    batch: bool,
    out: Path | None,
    batch_size: int,
    pad_to: int,
    workers: int,
) -> None:
    """Show or set a campaign's letter options; with --batch, write print batches."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        settings = before = dict(campaign.settings or {})
        if pairs or unset:
            settings = _parse_settings(pairs, unset, settings, ctx.storage, slug)
            errors = validate_letter_settings(settings)
            if errors:
                raise KindlyError("letter options not saved: " + "; ".join(errors))
            keys = settings.keys() | before.keys()
            changed = [k for k in keys if settings.get(k) != before.get(k)]
            campaign.settings = settings
            artifacts.mark_stale(session, campaign.id, "settings",
                                 kinds=artifacts.affected_kinds(changed))  # fmt: skip
            click.echo(f"saved letter options of {slug}")
        else:
            errors = validate_letter_settings(settings)
            if errors:
                raise KindlyError(f"campaign {slug}: " + "; ".join(errors))
        if not batch:
            for key in LETTER_KEYS:
                click.echo(f"  {key:<17} {settings.get(key, '')}")
            return
        status = status_of(session, campaign.id)
        if status != "live":
            hint = "" if status == "ended" else f" (launch it: kindly launch {slug})"
            raise KindlyError(f"campaign {slug} is {status}: no letters are printed{hint}")
        debtors = session.scalars(select(Debtor).where(Debtor.campaign_id == campaign.id)).all()
        cases = cases_for(session, debtors)
        balances = {d.id: cases[d.id].balance_minor for d in debtors}
        holds = {d.id: cases[d.id].hold for d in debtors}
        printable, skipped = select_for_print(debtors, balances, holds)
        views = [
            build_view(
                d,
                campaign,
                base_url=ctx.settings.base_url,
                balance_minor=balances[d.id],
                paid_minor=ledger.paid_minor(session, d),
                storage=ctx.storage,
            )
            for d in printable
        ]
    folder = out or Path(f"letters-{slug}")
    folder.mkdir(parents=True, exist_ok=True)
    write_skipped(folder / "not-printed.csv", skipped)
    for row in skipped:
        click.echo(f"not printed: {row.reference} ({row.name}): {row.reason}", err=True)
    started = time.monotonic()
    plan = list(zip(chunks(printable, batch_size), chunks(views, batch_size), strict=True))
    names = [f"{slug}-batch-{i:03d}.pdf" for i in range(1, len(plan) + 1)]
    rows: list[Placed] = []
    with ProcessPoolExecutor(max_workers=min(workers, max(len(plan), 1))) as pool:
        futures = [
            pool.submit(_render_batch, str(folder / name), list(batch_views), pad_to)
            for name, (_, batch_views) in zip(names, plan, strict=True)
        ]
        with click.progressbar(
            length=len(printable), label=f"letters {slug}", file=click.get_text_stream("stderr")
        ) as bar:
            for name, (batch_debtors, batch_views), future in zip(
                names, plan, futures, strict=True
            ):
                pages = future.result()
                rows.extend(
                    place(
                        batch_debtors,
                        [v.address_lines for v in batch_views],
                        pages,
                        batch_file=name,
                        pad_to=pad_to,
                    )
                )
                bar.update(len(batch_debtors))
    write_manifest(folder / "manifest.csv", rows)
    seconds = time.monotonic() - started
    click.echo(
        f"{len(rows)} letter(s) in {len(plan)} batch file(s) under {folder} in {seconds:.1f} s;"
        f" {len(skipped)} not printed (see not-printed.csv)"
    )
