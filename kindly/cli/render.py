"""`kindly render` and `kindly demo`: render a campaign's artifacts, or build, render and
serve a demo campaign."""

from __future__ import annotations

import os
import time

import click
from sqlalchemy import select

from kindly.accounts.lifecycle import fresh_password
from kindly.accounts.scopes import Scope
from kindly.campaigns.demo import CREDITOR_PROFILES, MANAGER, demo_rows
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import import_portfolio
from kindly.campaigns.service import by_slug, create_campaign, status_of
from kindly.cli.common import open_context
from kindly.creditors.service import get_creditor, set_creditor
from kindly.launch import change_status
from workers.jobs import KINDS
from workers.render import run_render


@click.command("render")
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
    unknown = set(wanted) - set(KINDS)
    if unknown or not wanted:
        raise click.BadParameter(
            f"choose from site, letter, video (got {kinds!r})", param_hint="--kinds"
        )
    ctx = open_context()
    started = time.monotonic()
    failed = run_render(ctx, slug, wanted, force=force)
    seconds = time.monotonic() - started
    if failed:
        for handle in failed[:20]:
            click.echo(f"failed: {handle.id}: {handle.error or handle.status}", err=True)
        raise click.ClickException(f"{len(failed)} render job(s) failed")
    click.echo(f"rendered {slug} ({', '.join(wanted)}) in {seconds:.1f} s")


@click.command("demo")
@click.option("--count", default=20, show_default=True, help="How many debtors to generate.")
@click.option("--serve/--no-serve", "and_serve", default=True, help="Serve the demo afterwards.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--kinds", default="site,letter,video", show_default=True)
def demo(count: int, and_serve: bool, host: str, port: int, kinds: str) -> None:
    """Build a demo campaign of generated debtors, render everything, and serve it."""
    if and_serve and not os.environ.get("KINDLY_BASE_URL"):
        # the links (and the QR codes in letters and videos) must point where we serve
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - compared, not bound
        os.environ["KINDLY_BASE_URL"] = f"http://{shown}:{port}"
    ctx = open_context()
    ctx.storage.ensure()
    with ctx.db.session() as session:
        campaign = by_slug(session, "demo")
        if campaign is None:
            campaign = create_campaign(session, "demo", name="Demo campaign",
                                       creditor="Stadtwerke Beispielstadt GmbH")  # fmt: skip
        result, _ = import_portfolio(session, campaign, demo_rows(count))
        for name, profile in CREDITOR_PROFILES.items():  # each debtor's creditor, complete
            if get_creditor(session, name) is None:
                set_creditor(session, name, profile)
        # launched like any campaign (only a live one sends), so `kindly send demo` works; a
        # demo paused or ended by hand stays so
        gaps = []
        if status_of(session, campaign.id) == "draft":
            gaps = change_status(session, campaign, "live", user=None, via="cli").gaps
    click.echo(f"demo campaign: {result.created} created, {result.updated} updated")
    if gaps:
        click.echo(f"not launched: {len(gaps)} gaps (kindly check demo)", err=True)
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
    with ctx.db.session() as session:  # a way into the cockpit, for the demo campaign only
        password = fresh_password(session, MANAGER, "manager", Scope(campaigns=frozenset({"demo"})))
    click.echo(f"\nCockpit: {ctx.settings.base_url}/admin/login")
    click.echo(f"  user {MANAGER}  password {password}")
    click.echo("  (shown once: running `kindly demo` again gives a new one)")
    click.echo("\nStats: kindly stats demo    Export: kindly export demo --out demo.csv")
    if and_serve:
        from web.server import run

        ctx.close()
        click.echo(f"Serving on http://{host}:{port} (Ctrl+C stops)")
        run(host, port, 2)
