"""/api/v1 campaigns: list, create, read, launch or pause, import a portfolio, the rules and
the launch check."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.accounts.scopes import may_name_creditor, visible
from kindly.campaigns.models import Campaign
from kindly.campaigns.portfolio import PortfolioRejected, import_portfolio, read_portfolio
from kindly.campaigns.service import LOCALES, create_campaign, is_slug, slug_taken, status_of
from kindly.launch import STATUS_ACTIONS, StatusRefused, as_dicts, change_status, check_campaign
from kindly.reporting.metrics import campaign_stats
from kindly.rules.document import RulesError
from kindly.rules.store import current_rules, decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.site import artifacts
from web.api.common import authenticated, bp, campaign_or_404, iso, problem
from web.context import context
from workers.render import queue_rebuild


def _campaign_json(db: Session, campaign: Campaign) -> dict[str, Any]:
    stats = campaign_stats(db, campaign)
    return {
        "slug": campaign.slug, "name": campaign.name,
        "status": status_of(db, campaign.id),
        "default_locale": campaign.default_locale, "creditor": campaign.creditor,
        "created_at": iso(campaign.created_at), "debtors": stats["debtors"],
        "owed": stats["owed"], "collected": stats["collected"],
    }  # fmt: skip


@bp.get("/campaigns")
@authenticated()
def campaigns():
    """Every campaign in the key's scope with status, debtors, owed and collected."""
    with context().db.session() as db:
        rows = db.scalars(visible(select(Campaign), g.api_access).order_by(Campaign.id)).all()
        return {"campaigns": [_campaign_json(db, c) for c in rows]}


@bp.post("/campaigns")
@authenticated("manage")
def campaign_create():
    """Create an empty campaign."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "send a JSON object")
    slug, name = body.get("slug"), body.get("name")
    locale = body.get("default_locale", "de-DE")
    creditor = body.get("creditor")
    if not is_slug(slug):
        return problem(400, "slug: lower-case letters, digits and '-', at most 63 characters")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        return problem(400, "name: a string of 1 to 200 characters")
    if locale not in LOCALES:
        return problem(400, f"default_locale: one of {', '.join(LOCALES)}")
    if creditor is not None and (not isinstance(creditor, str) or len(creditor) > 200):
        return problem(400, "creditor: a string of at most 200 characters")
    if not may_name_creditor(g.api_access, creditor):
        return problem(403, "creditor: this key may only create campaigns for its creditors")
    with context().db.session() as db:
        if slug_taken(db, slug):
            return problem(409, f"a campaign {slug!r} exists already")
        campaign = create_campaign(db, slug, name=name, default_locale=locale, creditor=creditor)
        audit.record(db, g.api_user, "campaign.create", via="api", campaign_id=campaign.id,
                     slug=slug)  # fmt: skip
        return _campaign_json(db, campaign), 201


@bp.get("/campaigns/<slug>")
@authenticated()
def campaign(slug: str):
    """One campaign."""
    with context().db.session() as db:
        return _campaign_json(db, campaign_or_404(db, slug))


@bp.post("/campaigns/<slug>/portfolio")
@authenticated("manage")
def portfolio(slug: str):
    """Import debtors from CSV (text/csv) or JSON (a list of objects); all or nothing."""
    # web.edge.limit_uploads lets this endpoint's body reach 32 MiB instead of the app's 1 MiB
    kind = request.mimetype
    if kind not in ("text/csv", "application/json"):
        return problem(415, "send text/csv or application/json")
    skip = request.args.get("skip_invalid", "false")
    if skip not in ("true", "false"):
        return problem(400, "skip_invalid must be true or false")
    data = request.get_data(cache=False)
    filename = "portfolio.json" if kind == "application/json" else "portfolio.csv"
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        try:
            rows = read_portfolio(data, filename)
            result, _ = import_portfolio(db, campaign, rows, skip_invalid=skip == "true")
        except PortfolioRejected as exc:
            db.rollback()
            return problem(422, str(exc), errors=[_error(e) for e in exc.errors])
        audit.record(
            db, g.api_user, "portfolio.import", via="api", campaign_id=campaign.id,
            created=result.created, updated=result.updated, rejected=result.rejected,
            items=result.items.as_detail(),
        )  # fmt: skip
        return {
            "created": result.created, "updated": result.updated, "rejected": result.rejected,
            "errors": [_error(e) for e in result.errors],
        }  # fmt: skip


def _error(error) -> dict[str, Any]:
    return {"row": error.row, "column": error.column, "reason": error.reason}


@bp.post("/campaigns/<slug>/status")
@authenticated("manage")
def status(slug: str):
    """Launch or resume (live), pause or end a campaign; only a live campaign sends."""
    body = request.get_json(silent=True)
    wanted = body.get("status") if isinstance(body, dict) else None
    if wanted not in STATUS_ACTIONS:
        return problem(400, 'send {"status": "live"}, {"status": "paused"} or {"status": "ended"}')
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        try:
            change = change_status(db, campaign, wanted, user=g.api_user, via="api")
        except StatusRefused as exc:
            return problem(409, str(exc), gaps=[])
        if change.gaps:
            return problem(409, "the campaign is not ready to launch", gaps=as_dicts(change.gaps))
        return _campaign_json(db, campaign)


@bp.get("/campaigns/<slug>/rules")
@authenticated()
def get_rules(slug: str):
    """The rules in force: {"version", "document"} (version 0: the built-in defaults)."""
    with context().db.session() as db:
        rules = current_rules(db, campaign_or_404(db, slug))
    return {"version": rules.version, "document": rules.document}


@bp.put("/campaigns/<slug>/rules")
@authenticated("manage")
def put_rules(slug: str):
    """Validate, save as the next version and decide every debtor; 422 lists every problem."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "send the rules document as a JSON object")
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        before = current_rules(db, campaign).version
        try:
            rules = save_rules(db, campaign, parse_rules(body))
        except RulesError as exc:
            return problem(422, "the rules were not saved", problems=exc.errors)
        counts = decide(db, campaign, rules, dt.date.today())
        if rules.version != before:
            artifacts.mark_stale(db, campaign.id, "rules")
        audit.record(db, g.api_user, "rules.change", via="api", campaign_id=campaign.id,
                     before=f"v{before}", after=f"v{rules.version}")  # fmt: skip
        campaign_id = campaign.id
    queue_rebuild(context(), campaign_id)  # after the commit: the jobs read the new rules
    return {"version": rules.version, "document": rules.document, "segments": counts}


@bp.get("/campaigns/<slug>/check")
@authenticated()
def launch_check(slug: str):
    """The launch check: every fact or opt-out a template or the campaign lacks."""
    with context().db.session() as db:
        gaps = check_campaign(db, campaign_or_404(db, slug))
    return {"campaign": slug, "ready": not gaps, "gaps": as_dicts(gaps)}
