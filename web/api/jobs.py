"""/api/v1 jobs: render a campaign's artifacts and send its next messages."""

from __future__ import annotations

import datetime as dt

from flask import g, request
from sqlalchemy import select

from kindly.accounts import audit
from kindly.campaigns.models import Debtor
from kindly.messaging.delivery import in_doubt, plan
from kindly.rules.document import CHANNELS
from kindly.rules.store import current_rules, decide
from web.api.common import authenticated, bp, campaign_or_404, problem
from web.context import context
from workers.jobs import KINDS
from workers.queues import Dispatcher
from workers.render import enqueue_renders
from workers.send import enqueue_sends, schedule_held


@bp.post("/campaigns/<slug>/render")
@authenticated("manage")
def render(slug: str):
    """Enqueue the campaign's missing or stale artifacts ({"kinds", "force"}); 202 with the jobs."""
    body = request.get_json(silent=True) or {}
    kinds = body.get("kinds", list(KINDS)) if isinstance(body, dict) else None
    if not isinstance(kinds, list) or not kinds or set(kinds) - set(KINDS):
        return problem(400, f'send {{"kinds": [...]}} with any of {", ".join(KINDS)}')
    force = body.get("force", False)
    if not isinstance(force, bool):
        return problem(400, "force must be true or false")
    ctx = context()
    with ctx.db.session() as db:
        campaign = campaign_or_404(db, slug)
        ids = list(db.scalars(select(Debtor.id).where(Debtor.campaign_id == campaign.id)))
        audit.record(
            db,
            g.api_user,
            "campaign.render",
            via="api",
            campaign_id=campaign.id,
            kinds=",".join(kinds),
        )
    ctx.storage.ensure()
    handles = list(enqueue_renders(ctx, ids, kinds, force=force))
    counts: dict[str, int] = {}
    for handle in handles:
        counts[handle.status] = counts.get(handle.status, 0) + 1
    failed = [{"job": h.id, "error": h.error} for h in handles if h.status == "failed"]
    return {"campaign": slug, "debtors": len(ids), "jobs": counts, "failed": failed[:50]}, 202


@bp.post("/campaigns/<slug>/send")
@authenticated("manage")
def send(slug: str):
    """Deliver the next messages now, like `kindly send` ({"channels", "dry_run", "schedule"})."""
    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict):
        return problem(400, "send a JSON object")
    channels = body.get("channels")
    if channels is not None and (not isinstance(channels, list) or set(channels) - set(CHANNELS)):
        return problem(400, f"channels must be a list of {', '.join(CHANNELS)}")
    dry_run, schedule = bool(body.get("dry_run")), bool(body.get("schedule"))
    at = dt.datetime.now(dt.UTC)
    ctx = context()
    if schedule and not dry_run and ctx.settings.jobs_in_process:
        # refused before anything is decided or sent: scheduling needs RQ's scheduler
        return problem(400, "schedule needs KINDLY_REDIS_URL and a running `kindly worker send`")
    with ctx.db.session() as db:
        campaign = campaign_or_404(db, slug)
        decide(db, campaign, current_rules(db, campaign), at.date())
        planned = plan(db, campaign, at, tuple(channels) if channels else None)
        doubtful = in_doubt(db, campaign.id, at)
        if dry_run:
            db.rollback()
        else:
            audit.record(db, g.api_user, "campaign.send", via="api", campaign_id=campaign.id)
    jobs: list = []
    if not dry_run:
        dispatcher = Dispatcher(ctx.settings)
        jobs = enqueue_sends(dispatcher, planned)
        if schedule:
            jobs += schedule_held(dispatcher, planned)
    sending: dict[str, int] = {}
    held: dict[str, int] = {}
    for item in planned:
        if item.status == "send":
            sending[item.channel] = sending.get(item.channel, 0) + 1
        else:
            held[item.reason or "held"] = held.get(item.reason or "held", 0) + 1
    return {
        "campaign": slug,
        "at": at.isoformat(),
        "dry_run": dry_run,
        "send": sending,
        "held": held,
        "jobs": len(jobs),
        "in_doubt": doubtful,
    }
