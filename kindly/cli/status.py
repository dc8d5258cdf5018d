"""`kindly launch`, `kindly pause` and `kindly end`: a campaign's status, as in the dashboard
and the API (kindly.launch.change_status, audited with the operator as the actor).

Only a live campaign sends. `kindly launch` on a paused campaign resumes it, after the same
launch check and confirmation as the first launch: texts may have changed while it was paused.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.service import status_of
from kindly.cli.common import campaign_by_slug, open_context
from kindly.launch import (
    REFUSED_ACTION,
    StatusChange,
    StatusRefused,
    change_status,
    check_campaign,
    move_refused,
)
from kindly.messaging import optout
from kindly.rules.models import Decision
from kindly.rules.store import current_rules, decide


def reach(session: Session, campaign: Campaign) -> tuple[int, Counter]:
    """How many debtors, and per channel how many it reaches first (its rules' order)."""
    rules = current_rules(session, campaign)
    decide(session, campaign, rules, dt.date.today())
    decisions = {
        d.debtor_id: d
        for d in session.scalars(
            select(Decision).where(
                Decision.campaign_id == campaign.id, Decision.rule_version == rules.version
            )
        )
    }
    first: Counter = Counter()
    debtors = session.scalars(select(Debtor).where(Debtor.campaign_id == campaign.id)).all()
    for debtor in debtors:
        decision = decisions.get(debtor.id)
        channels = decision.channels if decision else []
        usable = [c for c in channels if optout.address_of(debtor, c) is not None]
        first[usable[0] if usable else "no address"] += 1
    return len(debtors), first


def _apply(slug: str, wanted: str, confirm: str | None, yes: bool) -> StatusChange:
    """Check, confirm (unless `yes`) and change the status; gaps end the command with exit 1."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        before = status_of(session, campaign.id)
        if before == wanted:
            click.echo(f"{slug} is {wanted} already")
            return StatusChange(before, before, [])
        refused = move_refused(slug, before, wanted)
        if refused:
            raise click.ClickException(refused)
        if wanted == "live" and not yes:  # checked before asking; --yes: by change_status
            gaps = check_campaign(session, campaign)
            if gaps:
                audit.record(session, None, REFUSED_ACTION, via="cli", campaign_id=campaign.id,
                             before=before, gaps=len(gaps))  # fmt: skip
                session.commit()  # the refusal stays in the audit log
                _refuse(slug, gaps)
        if confirm and not yes:
            if wanted == "live":
                debtors, first = reach(session, campaign)
                channels = ", ".join(f"{c} {n}" for c, n in sorted(first.items())) or "none"
                click.echo(f"{slug}: {debtors} debtors; first channel: {channels}")
            session.rollback()  # the preview's decisions are made again by `kindly send`
            click.confirm(confirm.format(slug=slug), abort=True)
        try:
            change = change_status(session, campaign, wanted, user=None, via="cli")
        except StatusRefused as exc:
            raise click.ClickException(str(exc)) from None
        if change.gaps:  # the data changed between the check and now
            session.commit()  # the refusal stays in the audit log
            _refuse(slug, change.gaps)
    return change


def _refuse(slug: str, gaps) -> None:
    for gap in gaps:
        click.echo(f"  {gap}", err=True)
    raise click.ClickException(f"{slug} is not ready to launch: {len(gaps)} gaps (see above)")


@click.command("launch")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
def launch(slug: str, yes: bool) -> None:
    """Run the launch check and make the campaign live (also resumes a paused one)."""
    change = _apply(slug, "live", "Launch {slug}? `kindly send` then delivers these messages.", yes)
    if change.changed:
        verb = "resumed" if change.before == "paused" else "launched"
        click.echo(f"{slug} {verb}: live (send with: kindly send {slug})")


@click.command("pause")
@click.argument("slug")
def pause(slug: str) -> None:
    """Stop all sending at once, queued and scheduled jobs included; pages stay reachable."""
    change = _apply(slug, "paused", None, True)
    if change.changed:
        click.echo(f"{slug} paused: nothing is sent until `kindly launch {slug}`")


@click.command("end")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
def end(slug: str, yes: bool) -> None:
    """End the campaign for good: nothing more is sent, and retention starts for its cases."""
    change = _apply(slug, "ended", "End {slug} for good? It cannot be launched again.", yes)
    if change.changed:
        click.echo(f"{slug} ended: nothing more is sent; its cases are closed for retention")
