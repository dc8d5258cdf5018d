"""`kindly send`: deliver the links, or show (--dry-run) what would go out and what is held."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import click

from kindly.campaigns.service import status_of
from kindly.cli.common import campaign_by_slug, open_context
from kindly.messaging.delivery import in_doubt, plan
from kindly.rules.document import CHANNELS
from kindly.rules.store import current_rules, decide


def parse_at(text: str | None) -> dt.datetime:
    """ISO 8601 with an offset (a time without one is taken as UTC); now when not given."""
    if not text:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not ISO 8601, e.g. 2026-12-01T10:00+01:00", param_hint="--at"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _called(status: str) -> str:
    return {"draft": "a draft", "paused": "paused", "ended": "ended"}.get(status, status)


def parse_channels(text: str | None) -> tuple[str, ...] | None:
    """The --channel list, checked."""
    if not text:
        return None
    wanted = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = set(wanted) - set(CHANNELS)
    if unknown or not wanted:
        raise click.BadParameter(f"choose from {', '.join(CHANNELS)} (got {text!r})",
                                 param_hint="--channel")  # fmt: skip
    return wanted


@click.command("send")
@click.argument("slug")
@click.option("--channel", "channel_list", help="Only these channels, e.g. email,sms.")
@click.option("--dry-run", is_flag=True, help="Show what would go out; send and store nothing.")
@click.option("--at", "at_text", help="Evaluate send windows as of this time (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--schedule",
    is_flag=True,
    help="Also schedule what quiet hours or the send window hold back for when it may go "
    "(RQ's scheduler; needs KINDLY_REDIS_URL and `kindly worker send`).",
)
def command(slug: str, channel_list: str | None, dry_run: bool, at_text: str | None,
            as_json: bool, schedule: bool) -> None:  # fmt: skip
    """Deliver each debtor's next message on the first channel that may reach them."""
    at = parse_at(at_text)
    channels = parse_channels(channel_list)
    ctx = open_context()
    if schedule and not dry_run and ctx.settings.jobs_in_process:
        # refused before anything is decided or sent: scheduling needs RQ's scheduler
        raise click.UsageError(
            "--schedule needs KINDLY_REDIS_URL and a running `kindly worker send`"
        )
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        decide(session, campaign, current_rules(session, campaign), at.date())
        planned = plan(session, campaign, at, channels)
        status = status_of(session, campaign.id)
        doubtful = in_doubt(session, campaign.id, dt.datetime.now(dt.UTC))
        if dry_run:
            session.rollback()  # a preview leaves no decisions behind
    handles = []
    if status != "live":  # the plan holds every line; say why once, up front
        hint = f"launch it: kindly launch {slug}" if status != "ended" else "it sends no more"
        click.echo(f"campaign {slug} is {_called(status)}: nothing sent ({hint})", err=True)
    elif not dry_run:
        from workers.queues import Dispatcher
        from workers.send import enqueue_sends

        dispatcher = Dispatcher(ctx.settings)
        handles = enqueue_sends(dispatcher, planned, at if at_text else None)
        if schedule:
            from workers.send import schedule_held

            scheduled = schedule_held(dispatcher, planned)
            click.echo(
                f"scheduled {len(scheduled)} held message(s) for their send window", err=True
            )
    sending = Counter(p.channel for p in planned if p.status == "send")
    held = Counter(p.reason.split(":")[0] if p.reason and ";" not in p.reason else p.reason
                   for p in planned if p.status == "held")  # fmt: skip
    failed = [h for h in handles if h.status == "failed"]
    if as_json:
        click.echo(json.dumps({
            "campaign": slug, "status": status, "at": at.isoformat(), "dry_run": dry_run,
            "send": dict(sending), "held": dict(held),
            "debtors": [p.as_dict() for p in planned],
            "jobs": {"enqueued": len(handles), "failed": len(failed)},
            "in_doubt": doubtful,
        }, indent=2, ensure_ascii=False))  # fmt: skip
    else:
        verb = "would send" if dry_run else "sending"
        for item in planned:
            what = (
                f"{verb} {item.channel} (step {item.step})"
                if item.status == "send"
                else f"held: {item.reason}" + (f" until {item.opens_at}" if item.opens_at else "")
            )
            click.echo(
                f"  {item.reference:<16} {item.segment:<16} {item.local_time or '':<24} {what}"
            )
        totals = ", ".join(f"{c} {n}" for c, n in sorted(sending.items())) or "nothing"
        click.echo(f"{slug} at {at.isoformat()}: {verb} {totals}; held {sum(held.values())}")
    if doubtful:
        listed = ", ".join(f"{c} {n}" for c, n in doubtful.items())
        click.echo(
            f"outcome unknown: {listed} (a worker stopped while sending them; they may have "
            "arrived and are not sent again; each debtor's page in the dashboard shows them)",
            err=True,
        )
    if failed:
        for handle in failed[:20]:
            click.echo(f"failed: {handle.id}: {handle.error}", err=True)
        raise click.ClickException(f"{len(failed)} send job(s) failed")
