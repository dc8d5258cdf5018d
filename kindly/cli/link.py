"""`kindly link new SLUG REF`: give a debtor a new link (after a lock for good, or on request)."""

from __future__ import annotations

import click

from kindly import privacy
from kindly.accounts import audit
from kindly.cli.common import open_context
from kindly.site import links
from workers.queues import wait_all
from workers.render import enqueue_renders


@click.group("link")
def command() -> None:
    """Debtors' links."""


@command.command("new")
@click.argument("slug")
@click.argument("reference")
@click.option(
    "--render/--no-render",
    default=True,
    show_default=True,
    help="Render the debtor's page and letter again, so they carry the new link.",
)
def new(slug: str, reference: str, render: bool) -> None:
    """Issue a new link: the old one stops working and identity-check locks are lifted."""
    ctx = open_context()
    with ctx.db.session() as session:
        try:
            campaign, debtor = privacy.find(session, slug, reference)
        except privacy.NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        token = links.reissue(session, debtor, ctx.storage)
        debtor_id = debtor.id
        audit.record(session, None, "link.new", via="cli", campaign_id=campaign.id,
                     reference=reference)  # fmt: skip
    if render:
        handles = list(enqueue_renders(ctx, [debtor_id], ["site", "letter"]))
        wait_all(handles, lambda _: None)
        failed = [h for h in handles if h.status != "finished"]
        if failed:
            raise click.ClickException(
                f"the new link works, but rendering failed: {failed[0].error}"
            )
    click.echo(f"{reference}: {ctx.settings.base_url}/s/{token}")
