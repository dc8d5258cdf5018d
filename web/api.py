"""The JSON API under /api/v1: per-user bearer keys, roles as in the dashboard, rate-limited.

The routes are described by docs/openapi.json (served at /api/v1/openapi.json); the tests
check every response against it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from kindly.accounts import audit
from kindly.accounts.masking import event_data
from kindly.accounts.scopes import access_of, find_campaign, may_name_creditor, visible
from kindly.accounts.users import can, key_holder
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.campaigns.portfolio import PortfolioRejected, import_portfolio, read_portfolio
from kindly.context import Context
from kindly.infra.paths import ROOT
from kindly.launch import as_dicts, check_campaign
from kindly.money import from_minor
from kindly.payments.models import Payment
from kindly.reporting.kpis import campaign_kpis
from kindly.reporting.metrics import campaign_report, campaign_stats
from kindly.rules.document import RulesError
from kindly.rules.store import current_rules, decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from web.security import csrf_exempt

bp = Blueprint("api", __name__, url_prefix="/api/v1")

OPENAPI = ROOT / "docs" / "openapi.json"
RATE_LIMIT = 120
"""Requests per key per minute (per web process)."""
UPLOAD_LIMIT = 32 * 1024 * 1024
MAX_PAGE = 1000
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
LOCALES = ("de-DE", "en-GB", "it-IT", "es-ES", "fr-FR")

_windows: dict[str, deque[float]] = {}
_lock = threading.Lock()


def _context() -> Context:
    return current_app.extensions["kindly"]


def problem(status: int, message: str, **extra: Any) -> Response:
    """A JSON error body: {"error": message, ...}."""
    response = jsonify({"error": message, **extra})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kindly"'
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return problem(exc.code or 500, exc.description or exc.name)


def _limited(key: str) -> bool:
    """A sliding one-minute window per key."""
    now = time.monotonic()
    with _lock:
        window = _windows.setdefault(key, deque())
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= RATE_LIMIT:
            return True
        window.append(now)
        return False


def authenticated(action: str = "read") -> Callable:
    """Require a valid, unrevoked bearer key whose user's role may do `action`."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            header = request.headers.get("Authorization", "")
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                return problem(401, "an API key is required: Authorization: Bearer <key>")
            secret = secret.strip()
            with _context().db.session() as db:
                held = key_holder(db, secret)
                user = held[0] if held else None
                if held is not None:
                    g.api_access = access_of(*held)
                    db.expunge(user)
            if user is None:
                return problem(401, "the API key is unknown or revoked")
            if _limited(secret):
                response = problem(429, f"more than {RATE_LIMIT} requests a minute")
                response.headers["Retry-After"] = "60"
                return response
            if not can(user, action):
                return problem(403, f"the role {user.role!r} may not do this")
            g.api_user = user
            return view(*args, **kwargs)

        return csrf_exempt(wrapper)  # a bearer key, never a cookie: no CSRF to fear

    return decorate


def _campaign(db: Session, slug: str) -> Campaign:
    """The campaign if it exists and the key's scope reaches it, else the API's 404."""
    campaign = find_campaign(db, slug, g.api_access)
    if campaign is None:
        abort(404, description=f"no campaign {slug!r}")
    return campaign


def _campaign_json(db: Session, campaign: Campaign) -> dict[str, Any]:
    stats = campaign_stats(db, campaign)
    status = db.get(CampaignStatus, campaign.id)
    return {
        "slug": campaign.slug, "name": campaign.name,
        "status": status.status if status else "draft",
        "default_locale": campaign.default_locale, "creditor": campaign.creditor,
        "created_at": _iso(campaign.created_at), "debtors": stats["debtors"],
        "owed": stats["owed"], "collected": stats["collected"],
    }  # fmt: skip


def _iso(value: dt.datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, description=f"{name} must be an integer from {low} to {high}")
    return int(raw)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this API (public: it holds no data)."""
    return Response(OPENAPI.read_text(encoding="utf-8"), mimetype="application/json")


@bp.get("/campaigns")
@authenticated()
def campaigns():
    """Every campaign in the key's scope with status, debtors, owed and collected."""
    with _context().db.session() as db:
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
    if not isinstance(slug, str) or not re.match(SLUG_PATTERN, slug):
        return problem(400, "slug: lower-case letters, digits and '-', at most 63 characters")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        return problem(400, "name: a string of 1 to 200 characters")
    if locale not in LOCALES:
        return problem(400, f"default_locale: one of {', '.join(LOCALES)}")
    if creditor is not None and (not isinstance(creditor, str) or len(creditor) > 200):
        return problem(400, "creditor: a string of at most 200 characters")
    if not may_name_creditor(g.api_access, creditor):
        return problem(403, "creditor: this key may only create campaigns for its creditors")
    with _context().db.session() as db:
        if db.scalar(select(Campaign.id).where(Campaign.slug == slug)) is not None:
            return problem(409, f"a campaign {slug!r} exists already")
        campaign = Campaign(slug=slug, name=name or slug, default_locale=locale, creditor=creditor)
        db.add(campaign)
        db.flush()
        audit.record(db, g.api_user, "campaign.create", via="api", campaign_id=campaign.id,
                     slug=slug)  # fmt: skip
        return _campaign_json(db, campaign), 201


@bp.get("/campaigns/<slug>")
@authenticated()
def campaign(slug: str):
    """One campaign."""
    with _context().db.session() as db:
        return _campaign_json(db, _campaign(db, slug))


@bp.before_request
def _upload_limit() -> None:
    if request.endpoint == "api.portfolio":
        request.max_content_length = UPLOAD_LIMIT


@bp.post("/campaigns/<slug>/portfolio")
@authenticated("manage")
def portfolio(slug: str):
    """Import debtors from CSV (text/csv) or JSON (a list of objects); all or nothing."""
    kind = request.mimetype
    if kind not in ("text/csv", "application/json"):
        return problem(415, "send text/csv or application/json")
    skip = request.args.get("skip_invalid", "false")
    if skip not in ("true", "false"):
        return problem(400, "skip_invalid must be true or false")
    data = request.get_data(cache=False)
    filename = "portfolio.json" if kind == "application/json" else "portfolio.csv"
    with _context().db.session() as db:
        campaign = _campaign(db, slug)
        try:
            rows = read_portfolio(data, filename)
            result, _ = import_portfolio(db, campaign, rows, skip_invalid=skip == "true")
        except PortfolioRejected as exc:
            db.rollback()
            return problem(422, str(exc), errors=[_error(e) for e in exc.errors])
        audit.record(
            db, g.api_user, "portfolio.import", via="api", campaign_id=campaign.id,
            created=result.created, updated=result.updated, rejected=result.rejected,
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
    """Launch (live) or pause a campaign."""
    body = request.get_json(silent=True)
    wanted = body.get("status") if isinstance(body, dict) else None
    if wanted not in ("live", "paused"):
        return problem(400, 'send {"status": "live"} or {"status": "paused"}')
    with _context().db.session() as db:
        campaign = _campaign(db, slug)
        if wanted == "live":
            gaps = check_campaign(db, campaign)
            if gaps:
                return problem(409, "the campaign is not ready to launch", gaps=as_dicts(gaps))
        row = db.get(CampaignStatus, campaign.id)
        if row is None:
            row = CampaignStatus(campaign_id=campaign.id)
            db.add(row)
        row.status, row.changed_at = wanted, dt.datetime.now(dt.UTC)
        action = "campaign.launch" if wanted == "live" else "campaign.pause"
        audit.record(db, g.api_user, action, via="api", campaign_id=campaign.id)
        return _campaign_json(db, campaign)


@bp.get("/campaigns/<slug>/rules")
@authenticated()
def get_rules(slug: str):
    """The rules in force: {"version", "document"} (version 0: the built-in defaults)."""
    with _context().db.session() as db:
        rules = current_rules(db, _campaign(db, slug))
    return {"version": rules.version, "document": rules.document}


@bp.put("/campaigns/<slug>/rules")
@authenticated("manage")
def put_rules(slug: str):
    """Validate, save as the next version and decide every debtor; 422 lists every problem."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "send the rules document as a JSON object")
    with _context().db.session() as db:
        campaign = _campaign(db, slug)
        before = current_rules(db, campaign).version
        try:
            rules = save_rules(db, campaign, parse_rules(body))
        except RulesError as exc:
            return problem(422, "the rules were not saved", problems=exc.errors)
        counts = decide(db, campaign, rules, dt.date.today())
        audit.record(db, g.api_user, "rules.change", via="api", campaign_id=campaign.id,
                     before=f"v{before}", after=f"v{rules.version}")  # fmt: skip
        return {"version": rules.version, "document": rules.document, "segments": counts}


@bp.get("/campaigns/<slug>/check")
@authenticated()
def launch_check(slug: str):
    """The launch check: every fact or opt-out a template or the campaign lacks."""
    with _context().db.session() as db:
        gaps = check_campaign(db, _campaign(db, slug))
    return {"campaign": slug, "ready": not gaps, "gaps": as_dicts(gaps)}


@bp.get("/campaigns/<slug>/stats")
@authenticated()
def stats(slug: str):
    """`kindly stats --json` plus the marketing rates and the collection KPIs."""
    with _context().db.session() as db:
        campaign = _campaign(db, slug)
        data = campaign_stats(db, campaign)
        report = campaign_report(db, campaign)
        data["rates"] = {
            r.key: {"value": r.value, "numerator": r.numerator, "denominator": r.denominator,
                    "formula": r.formula}
            for r in report["rates"]
        }  # fmt: skip
        money = report["money"]
        data["median_days_to_pay"] = money["median_days_to_pay"]
        data["kpis"] = [
            {"key": k.key, "currency": k.currency, "value": k.value, "unit": k.unit,
             "formula": k.formula, "convention": k.convention}
            for k in campaign_kpis(db, campaign)
        ]  # fmt: skip
        return data


@bp.get("/campaigns/<slug>/debtors")
@authenticated("manage")
def debtors(slug: str):
    """Debtor-level outcomes, paged by id: pass next_cursor back as cursor."""
    cursor = _int_arg("cursor", 0, 0, 2**62)
    limit = _int_arg("limit", 100, 1, MAX_PAGE)
    base_url = _context().settings.base_url
    with _context().db.session() as db:
        campaign = _campaign(db, slug)
        rows = db.scalars(
            select(Debtor)
            .where(Debtor.campaign_id == campaign.id, Debtor.id > cursor)
            .order_by(Debtor.id)
            .limit(limit)
        ).all()
        ids = [d.id for d in rows]
        paid: dict[int, int] = {}
        for debtor_id, amount in db.execute(
            select(Payment.debtor_id, Payment.amount_minor).where(
                Payment.debtor_id.in_(ids), Payment.status == "succeeded"
            )
        ):
            paid[debtor_id] = paid.get(debtor_id, 0) + int(amount)
        items = []
        for d in rows:
            got = paid.get(d.id, 0)
            items.append({
                "reference": d.reference, "site_url": f"{base_url}/s/{d.token}",
                "segment": d.segment, "variant": d.variant, "channel": d.channel,
                "currency": d.currency,
                "amount_due": str(from_minor(d.amount_due_minor, d.currency)),
                "collected": str(from_minor(got, d.currency)),
                "open_balance": str(from_minor(max(d.amount_due_minor - got, 0), d.currency)),
            })  # fmt: skip
        audit.record(db, g.api_user, "export.debtors", via="api", campaign_id=campaign.id,
                     rows=len(items), cursor=cursor)  # fmt: skip
    next_cursor = ids[-1] if len(ids) == limit else None
    return {"debtors": items, "next_cursor": next_cursor}


@bp.get("/campaigns/<slug>/events")
@authenticated()
def events(slug: str):
    """Events in the order they were stored, after a cursor; a viewer's key gets them masked."""
    personal = can(g.api_user, "manage")
    since = _int_arg("since", 0, 0, 2**62)
    limit = _int_arg("limit", 100, 1, MAX_PAGE)
    with _context().db.session() as db:
        campaign = _campaign(db, slug)
        rows = db.execute(
            select(Event, Debtor.reference)
            .join(Debtor, Debtor.id == Event.debtor_id)
            .where(Event.campaign_id == campaign.id, Event.id > since)
            .order_by(Event.id)
            .limit(limit)
        ).all()
        items = [
            {"id": e.id, "type": e.type, "reference": reference, "channel": e.channel,
             "variant": e.variant, "agent": e.agent, "occurred_at": _iso(e.occurred_at),
             "data": json.loads(json.dumps(event_data(e.data, personal), default=str))}
            for e, reference in rows
        ]  # fmt: skip
    next_cursor = items[-1]["id"] if len(items) == limit else None
    return {"events": items, "next_cursor": next_cursor}


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@authenticated()
def unknown(rest: str):
    """Anything else under /api/v1: a key is still required, then 404 in JSON."""
    return problem(404, "no such API route")


# more routes on `bp`: privacy, webhooks and report; render, send and the debtor timeline
from web import api_jobs, api_ops  # noqa: E402, F401
