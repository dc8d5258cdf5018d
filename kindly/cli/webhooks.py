"""`kindly webhooks`: deliver the signed events the creditor's systems subscribed to."""

from __future__ import annotations

import click
from sqlalchemy import func, select

from kindly.cli.common import open_context
from kindly.outbound.models import WebhookDelivery
from workers.outbound import deliver_pending
from workers.queues import Dispatcher


@click.group("webhooks")
def command() -> None:
    """Outgoing webhooks (subscriptions are managed through the API: /api/v1/webhooks)."""


@command.command("deliver")
def deliver() -> None:
    """Queue every new or due event for its subscribers; run it every minute (cron, timer)."""
    ctx = open_context()
    dispatcher = Dispatcher(ctx.settings)
    with ctx.db.session() as session:
        handles = deliver_pending(session, dispatcher)
    failed = [h for h in handles if h.status == "failed"]
    with ctx.db.session() as session:
        counts = dict(
            session.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            ).all()
        )
    click.echo(
        f"{len(handles)} deliveries queued, {len(failed)} failed this run; "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
