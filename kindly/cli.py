"""The `kindly` command line."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import click
from sqlalchemy import select

from kindly import context as ctx_module
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import (
    PortfolioRejected,
    import_portfolio,
    read_portfolio,
    write_rejects,
)
from kindly.context import Context
from kindly.errors import ConfigError, KindlyError, NotFound
from kindly.infra import csvsafe, redact
from kindly.infra.config import check_production, load_settings
from kindly.site.models import Artifact
from workers.queues import wait_all
from workers.render import enqueue_renders

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _context(migrate: bool = True) -> Context:
    """This process's context, with the schema brought up to date."""
    ctx = Context(load_settings())
    check_production(ctx.settings)  # a worker or a command must not run where web would not
    ctx_module.use(ctx)
    if migrate:
        ctx.db.migrate()
    return ctx


def _campaign(session, slug: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        raise NotFound(
            f"no campaign {slug!r} (create it with: kindly import FILE --campaign {slug} --create)"
        )
    return campaign


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def cli(verbose: bool) -> None:
    """Kindly: personalised microsites, letters and videos for soft debt collection."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "fontTools", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # WeasyPrint warns about CSS it skips (e.g. unicode-bidi: isolate) on every letter.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    redact.install(*logging.getLogger().handlers)  # no token in any process's log


@cli.command("import")
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
    if not SLUG.match(slug):
        raise click.BadParameter("lower-case letters, digits and '-' only", param_hint="--campaign")
    rows = read_portfolio(file.read_bytes(), file.name)
    ctx = _context()
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
        if campaign is None:
            if not create:
                raise NotFound(f"no campaign {slug!r}; add --create to create it")
            campaign = Campaign(
                slug=slug, name=name or slug, default_locale=default_locale, creditor=creditor
            )
            session.add(campaign)
            session.flush()
        result, rejected = import_portfolio(session, campaign, rows, skip_invalid=skip_invalid)
    if rejected:
        out = file.with_name(file.stem + ".rejected.csv")
        write_rejects(out, rejected)
        click.echo(f"{len(rejected)} row(s) rejected, written with reasons to {out}", err=True)
    click.echo(
        f"imported into {slug}: {result.created} created, {result.updated} updated,"
        f" {result.rejected} rejected"
    )


def run_render(
    ctx: Context, slug: str, kinds: list[str], *, quiet: bool = False, force: bool = False
) -> list:
    """Render a campaign's missing or stale artifacts (all with `force`) and wait for every
    job; return the failed handles."""
    ctx.storage.ensure()  # an unreachable store is one clear line, before any work
    with ctx.db.session() as session:
        campaign = _campaign(session, slug)
        debtor_ids = list(
            session.scalars(
                select(Debtor.id).where(Debtor.campaign_id == campaign.id).order_by(Debtor.id)
            )
        )
    per_debtor = (1 if [k for k in kinds if k != "video"] else 0) + (1 if "video" in kinds else 0)
    total = len(debtor_ids) * per_debtor
    handles = []
    with click.progressbar(
        length=total,
        label=f"rendering {slug}",
        file=sys.stderr if not quiet else open("/dev/null", "w"),
    ) as bar:
        for handle in enqueue_renders(ctx, debtor_ids, kinds, force=force):
            handles.append(handle)
            if handle.done:
                bar.update(1)
        queues_waited = {h.origin for h in handles if not h.done}
        if queues_waited:
            _warn_without_workers(ctx, queues_waited)
        wait_all(handles, bar.update)
    return [h for h in handles if h.status != "finished"]


def _warn_without_workers(ctx: Context, queue_names: set[str]) -> None:
    """Say so when nobody listens on a queue we wait for, instead of waiting in silence."""
    from rq import Queue, Worker

    from workers.queues import redis_connection

    connection = redis_connection(ctx.settings)
    for name in sorted(queue_names):
        if Worker.count(queue=Queue(name, connection=connection)) == 0:
            click.echo(
                f"waiting: no worker listens on queue {name!r} yet; start one with "
                f"`kindly worker {name}`",
                err=True,
            )


@cli.command()
@click.argument("slug")
@click.option(
    "--kinds", default="site,letter,video", show_default=True, help="Which artifacts to render."
)
@click.option(
    "--force", is_flag=True, help="Render letters and videos again even when they are current."
)
def render(slug: str, kinds: str, force: bool) -> None:
    """Render what is missing or stale of every debtor's artifacts (waits for the workers)."""
    wanted = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = set(wanted) - {"site", "letter", "video"}
    if unknown or not wanted:
        raise click.BadParameter(
            f"choose from site, letter, video (got {kinds!r})", param_hint="--kinds"
        )
    ctx = _context()
    started = time.monotonic()
    failed = run_render(ctx, slug, wanted, force=force)
    seconds = time.monotonic() - started
    if failed:
        for handle in failed[:20]:
            click.echo(f"failed: {handle.id}: {handle.error or handle.status}", err=True)
        raise click.ClickException(f"{len(failed)} render job(s) failed")
    click.echo(f"rendered {slug} ({', '.join(wanted)}) in {seconds:.1f} s")


@cli.command()
@click.argument("slug")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file to write.",
)
def export(slug: str, out: Path) -> None:
    """One row per debtor: reference, token, links and artifact keys, segment, variant, channel."""
    ctx = _context()
    with ctx.db.session() as session:
        campaign = _campaign(session, slug)
        debtors = session.scalars(
            select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.reference)
        ).all()
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
                ]
            )
            for d in debtors:
                writer.writerow([
                    d.reference, d.token, f"{ctx.settings.base_url}/s/{d.token}",
                    keys.get((d.id, "letter"), ""), keys.get((d.id, "video"), ""),
                    d.segment, d.variant, d.channel,
                ])  # fmt: skip
    click.echo(f"exported {len(debtors)} debtor(s) to {out}")


@cli.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(slug: str, as_json: bool) -> None:
    """The funnel (people only; raw counts under funnel_raw) and the money collected."""
    from kindly.reporting.metrics import campaign_stats

    ctx = _context()
    with ctx.db.session() as session:
        data = campaign_stats(session, _campaign(session, slug))
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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the debtor front with gunicorn."""
    from web.server import run

    ctx = _context()
    ctx.storage.ensure()
    ctx.close()
    run(host, port, workers)


@cli.command()
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--max-jobs", type=click.IntRange(min=0), default=None, envvar="KINDLY_WORKER_MAX_JOBS",
    help="Jobs before a render/send/default worker starts afresh (default 10,000; 0: never).",
)  # fmt: skip
def worker(queues: tuple[str, ...], burst: bool, max_jobs: int | None) -> None:
    """Run an RQ worker on the given queues (default: all of them)."""
    from workers.worker import run

    settings = load_settings()
    check_production(settings)  # workers charge instalments and send: same rules as the front
    if not settings.redis_url:
        raise ConfigError("kindly worker needs KINDLY_REDIS_URL; without it jobs run in-process")
    _context()
    if not queues or "default" in queues:
        # instalment collection and the retention purge: daily jobs on the default queue
        from workers.daily import schedule_daily
        from workers.queues import Dispatcher

        schedule_daily(Dispatcher(settings))
    run(settings, list(queues), burst=burst, max_jobs=max_jobs)


@cli.command()
@click.option("--count", default=20, show_default=True, help="How many debtors to generate.")
@click.option("--serve/--no-serve", "and_serve", default=True, help="Serve the demo afterwards.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--kinds", default="site,letter,video", show_default=True)
def demo(count: int, and_serve: bool, host: str, port: int, kinds: str) -> None:
    """Build a demo campaign of generated debtors, render everything, and serve it."""
    from kindly.campaigns.demo import demo_rows

    if and_serve and not os.environ.get("KINDLY_BASE_URL"):
        # the links (and the QR codes in letters and videos) must point where we serve
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - compared, not bound
        os.environ["KINDLY_BASE_URL"] = f"http://{shown}:{port}"
    ctx = _context()
    ctx.storage.ensure()
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "demo"))
        if campaign is None:
            campaign = Campaign(slug="demo", name="Demo campaign", default_locale="de-DE",
                                creditor="Stadtwerke Beispielstadt GmbH")  # fmt: skip
            session.add(campaign)
            session.flush()
        result, _ = import_portfolio(session, campaign, demo_rows(count))
    click.echo(f"demo campaign: {result.created} created, {result.updated} updated")
    failed = run_render(ctx, "demo", [k for k in kinds.split(",") if k])
    if failed:
        raise click.ClickException(f"{len(failed)} render job(s) failed: {failed[0].error}")
    with ctx.db.session() as session:
        links = session.execute(
            select(Debtor.reference, Debtor.locale, Debtor.token)
            .join(Campaign).where(Campaign.slug == "demo").order_by(Debtor.reference).limit(count)
        ).all()  # fmt: skip
    click.echo("\nDebtor links (one per locale):")
    seen: set[str] = set()
    for reference, locale, token in links:
        if locale not in seen:
            seen.add(locale)
            click.echo(f"  {locale:<6} {reference}  {ctx.settings.base_url}/s/{token}")
    click.echo("\nStats: kindly stats demo    Export: kindly export demo --out demo.csv")
    if and_serve:
        from web.server import run

        ctx.close()
        click.echo(f"Serving on http://{host}:{port} (Ctrl+C stops)")
        run(host, port, 2)


from kindly.commands import register  # noqa: E402 - commands import cli's helpers

register(cli)


def main() -> None:
    """Entry point: domain errors become one clear line and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except PortfolioRejected as exc:
        for error in exc.errors:
            click.echo(f"  {error}", err=True)
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KindlyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
