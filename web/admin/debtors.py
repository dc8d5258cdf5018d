"""One debtor's case in the dashboard: a searchable list, the timeline, and previews.

The timeline shows what happened to one case for disputes and audits: the facts, the rules'
decision, every event in time order, payments and refunds, the plan, the messages sent, the
identity-check locks and the stored artifacts. Contact data is masked for viewers; the link
token is never shown to anyone. Managers may open the debtor's microsite, letter and video as
the debtor sees them: rendered or read from storage, never counted, always audited.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Response, abort, g, redirect, render_template, request, send_file
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.accounts.masking import event_data, mask
from kindly.accounts.users import can
from kindly.campaigns.models import Campaign, Debtor
from kindly.cases import holds
from kindly.cases.read import case_of, cases_for
from kindly.cases.state import STATES
from kindly.claims import balance, costs
from kindly.inbox import actions, service
from kindly.infra.storage import content_type
from kindly.ledger import manual
from kindly.messaging.delivery import is_in_doubt
from kindly.messaging.models import Send
from kindly.payments import ledger
from kindly.payments.models import Payment
from kindly.payments.plans import open_plan
from kindly.rules.store import decision_for
from kindly.site import artifacts, identity
from kindly.site.models import Artifact, IdentityCheck
from kindly.tracking.models import Event
from renderer.site import STATUS_MARKER
from web import refpath
from web.admin.campaigns import find_campaign
from web.admin.common import bp, requires
from web.context import context
from web.debtor.common import debtor_view
from web.debtor.page import page_html

PAGE_SIZE = 50
FILES = {"letter.pdf": "letter", "video.mp4": "video", "poster.jpg": "poster",
         "captions.vtt": "captions"}  # fmt: skip
PREVIEW_POLICY = "; ".join([
    "default-src 'none'", "style-src 'self'", "img-src 'self' data:", "media-src 'self'",
    "font-src 'self'", "script-src 'none'", "connect-src 'none'", "form-action 'none'",
    "frame-ancestors 'none'", "base-uri 'none'", "sandbox allow-same-origin",
])  # fmt: skip
"""A preview runs no script (no beacon, nothing counted) and sends no form."""
PREVIEW_BANNER = ('<strong class="preview-banner">Preview — as the debtor sees it now; '
                  "nothing here is counted.</strong>")  # fmt: skip
"""Shown where the debtor's page has its live notices."""


def find_debtor(db: Session, campaign: Campaign, reference: str) -> Debtor:
    """The campaign's debtor by the reference as its URL segment names it, or a 404."""
    reference = refpath.reference(reference)
    debtor = db.scalar(
        select(Debtor).where(Debtor.campaign_id == campaign.id, Debtor.reference == reference)
    )
    if debtor is None:
        abort(404)
    return debtor


@bp.app_template_filter("admin_ref")
def reference_filter(reference: str) -> str:
    """A reference as the URL segment of its case page (`/` and all)."""
    return refpath.segment(reference)


def full_name(debtor: Debtor) -> str:
    return " ".join(f"{debtor.first_name or ''} {debtor.last_name}".split())


@bp.get("/campaigns/<slug>/debtors")
@requires("read")
def debtors_list(slug: str):
    """The campaign's debtors with each case's state, searchable by reference or name,
    filtered by state, paged."""
    query = request.args.get("q", "").strip()[:100]
    state = request.args.get("state", "")
    state = state if state in STATES else ""
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        where = [Debtor.campaign_id == campaign.id]
        if query:
            like = "%" + re.sub(r"([\\%_])", r"\\\1", query.lower()) + "%"
            where.append(or_(
                func.lower(Debtor.reference).like(like, escape="\\"),
                func.lower(Debtor.last_name).like(like, escape="\\"),
                func.lower(Debtor.first_name).like(like, escape="\\"),
                func.lower(func.coalesce(Debtor.first_name, "") + " " + Debtor.last_name)
                .like(like, escape="\\"),
            ))  # fmt: skip
        ordered = select(Debtor).where(*where).order_by(Debtor.reference)
        if state:  # the state is derived, not stored: read every case in bulk, then page
            everyone = db.scalars(ordered).all()
            cases = cases_for(db, everyone)
            matching = [d for d in everyone if cases[d.id].state == state]
            total = len(matching)
            rows = matching[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        else:
            total = db.scalar(select(func.count(Debtor.id)).where(*where)) or 0
            rows = db.scalars(ordered.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
            cases = cases_for(db, rows)
        items = [
            {"reference": d.reference, "name": full_name(d), "segment": d.segment,
             "variant": d.variant, "channel": d.channel, "currency": d.currency,
             "amount_due_minor": d.amount_due_minor, "state": cases[d.id].state,
             "balance_minor": cases[d.id].balance_minor}
            for d in rows
        ]  # fmt: skip
        name = campaign.name
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("admin/debtors.html", slug=slug, name=name, q=query, page=page,
                           pages=pages, total=total, debtors=items, state=state,
                           states=STATES)  # fmt: skip


def _timeline(db: Session, debtor: Debtor, personal: bool) -> list[dict[str, Any]]:
    """Every event of the case in time order, with who or what caused it (agent) and how."""
    rows: list[dict[str, Any]] = []
    for e in db.scalars(
        select(Event).where(Event.debtor_id == debtor.id).order_by(Event.occurred_at, Event.id)
    ):
        data = event_data(e.data, personal)
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(data.items()))
        rows.append({"at": e.occurred_at, "what": "event", "type": e.type, "agent": e.agent,
                     "channel": e.channel or "", "variant": e.variant or "",
                     "detail": detail})  # fmt: skip
    rows.sort(key=lambda r: _aware(r["at"]))
    return rows


def _aware(value: dt.datetime | None) -> dt.datetime:
    if value is None:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _send_row(send: Send, now: dt.datetime, personal: bool) -> dict[str, Any]:
    """One line of "Messages sent"; a send whose worker was lost says so."""
    row = {"at": send.sent_at or send.created_at, "step": send.step, "channel": send.channel,
           "status": send.status, "attempts": send.attempts,
           "error": event_data({"error": send.error}, personal)["error"],
           "address": send.address if personal else mask(send.address)}  # fmt: skip
    if is_in_doubt(send, now):
        row["status"] = "outcome unknown"
        row["error"] = row["error"] or (
            "the worker stopped while sending it: it may have arrived; it is not sent again"
        )
    return row


@bp.get("/campaigns/<slug>/debtors/<reference>")
@requires("read")
def debtor_page(slug: str, reference: str):
    """Everything that happened to one case, for disputes and audits."""
    personal = can(g.user, "manage")
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        debtor = find_debtor(db, campaign, reference)
        decision = decision_for(db, debtor)
        payments = db.scalars(
            select(Payment).where(Payment.debtor_id == debtor.id)
            .order_by(Payment.created_at, Payment.id)
        ).all()  # fmt: skip
        plan = open_plan(db, debtor)
        now = dt.datetime.now(dt.UTC)
        sends = db.scalars(
            select(Send).where(Send.debtor_id == debtor.id).order_by(Send.created_at, Send.id)
        ).all()
        check = db.get(IdentityCheck, debtor.id)
        stored = db.scalars(
            select(Artifact).where(Artifact.debtor_id == debtor.id).order_by(Artifact.kind)
        ).all()
        facts = {
            "reference": debtor.reference, "name": full_name(debtor),
            "salutation": debtor.salutation, "locale": debtor.locale or campaign.default_locale,
            "currency": debtor.currency, "amount_due_minor": debtor.amount_due_minor,
            "principal_minor": debtor.principal_minor, "interest_minor": debtor.interest_minor,
            "fees_minor": debtor.fees_minor, "due_date": debtor.due_date,
            "creditor": debtor.creditor or campaign.creditor,
            "contract": debtor.contract or campaign.contract,
            "paid_minor": ledger.paid_minor(db, debtor),
            "balance_minor": balance.balance_minor(db, debtor),
            "email": debtor.email if personal else mask(debtor.email),
            "phone": debtor.phone if personal else mask(debtor.phone),
            "address": (", ".join(p for p in (debtor.street, debtor.postal_code, debtor.city,
                                              debtor.country) if p)
                        if personal else ("on file" if debtor.street else None)),
            "birth_date": "on file" if debtor.birth_date else None,
            "segment": debtor.segment, "variant": debtor.variant, "channel": debtor.channel,
            "imported": debtor.created_at,
        }  # fmt: skip
        context_data = {
            "decision": None if decision is None else {
                "segment": decision.segment, "variant": decision.variant,
                "experiment": decision.experiment, "tone": decision.tone,
                "channels": list(decision.channels or []), "rule_version": decision.rule_version,
                "at": decision.created_at,
            },
            "payments": [{"at": p.created_at, "kind": p.kind, "provider": p.provider,
                          "status": p.status, "amount_minor": p.amount_minor,
                          "currency": p.currency} for p in payments],
            "plan": None if plan is None else {
                "status": plan.status, "frequency": plan.frequency, "count": plan.count,
                "total_minor": plan.total_minor, "currency": plan.currency,
                "agreed_at": plan.agreed_at,
                "instalments": [{"seq": i.seq, "due_date": i.due_date,
                                 "amount_minor": i.amount_minor, "status": i.status,
                                 "attempts": i.attempts} for i in plan.instalments],
            },
            "sends": [_send_row(s, now, personal) for s in sends],
            "check": None if check is None else {
                "failures": check.failures, "total_failures": check.total_failures,
                "locks": check.locks, "locked_until": check.locked_until,
                "locked_now": check.locked_until is not None
                and _aware(check.locked_until) > dt.datetime.now(dt.UTC),
                "sealed": check.locks >= identity.MAX_LOCKS,
            },
            "artifacts": [{"kind": a.kind, "sha256": a.sha256, "size": a.size,
                           "at": a.created_at} for a in stored],
            "timeline": _timeline(db, debtor, personal),
            **_case_actions(db, debtor, personal),
        }  # fmt: skip
        context_data["books"] = manual.books(db, debtor)
        from web.admin import disputes  # it finds debtors through this module

        context_data["disputes"] = disputes.panel(db, debtor, personal)
        context_data["costs"] = _costs(db, debtor, decision)
        name = campaign.name
    return render_template("admin/debtor.html", slug=slug, name=name, facts=facts,
                           personal=personal, done=CASE_DONE.get(request.args.get("done", "")),
                           **context_data)  # fmt: skip


def _costs(db: Session, debtor: Debtor, decision) -> dict[str, Any]:
    """The case's costs by type and basis, each booking, and whether its rules add any."""
    lines = costs.costs_of(db, debtor)
    charged = bool(decision is not None and (decision.treatment or {}).get("costs"))
    return {"lines": lines, "total_minor": sum(line.amount_minor for line in lines),
            "bookings": costs.bookings_of(db, debtor), "charged": charged}  # fmt: skip


CASE_DONE = {"hold": "Collection is on hold.", "release": "The hold is released.",
             "dispute": "The dispute is resolved.",
             "note": "The note is kept.", "resend": "The link went out again."}  # fmt: skip


def _case_actions(db: Session, debtor: Debtor, personal: bool) -> dict[str, Any]:
    """The case's state, its open holds, notes and inbox items (the case actions' section)."""
    case = case_of(db, debtor)
    items = service.items_of(db, debtor)
    return {
        "case": {"state": case.state, "hold": case.hold, "hold_until": case.hold_until,
                 "overdue_days": case.overdue_days},
        "holds": [{"id": h.id, "reason": h.reason, "source": h.source, "by": h.placed_by,
                   "at": h.placed_at, "until": h.until,
                   "note": h.note if personal else None} for h in holds.open_holds(db, debtor)],
        "notes": [{"at": n.created_at, "author": n.author, "body": n.body if personal else None}
                  for n in actions.notes_of(db, debtor)],
        "items": [{"id": i.id, "topic": i.topic, "status": i.status, "owner": i.owner,
                   "due_at": i.due_at, "at": i.created_at} for i in items],
    }  # fmt: skip


@bp.get("/campaigns/<slug>/debtors/<reference>/preview")
@requires("manage")
def debtor_preview(slug: str, reference: str):
    """The microsite as the debtor's link serves it now (the same page_html); no event is
    recorded."""
    ctx = context()
    with ctx.db.session() as db:
        campaign = find_campaign(db, slug)
        debtor = find_debtor(db, campaign, reference)
        html = page_html(db, debtor, debtor_view(db, debtor))
        audit.record(db, g.user, "debtor.preview", via="web", campaign_id=campaign.id,
                     reference=debtor.reference, kind="site")  # fmt: skip
        token, debtor_reference = debtor.token, debtor.reference
    html = _defuse(html, token, ctx.settings.base_url, f"/admin/campaigns/{slug}/debtors/"
                   f"{refpath.segment(debtor_reference)}/preview")  # fmt: skip
    html = html.replace(STATUS_MARKER, PREVIEW_BANNER, 1)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    return response


def _defuse(html: str, token: str, base_url: str, preview: str) -> str:
    """No link of the preview reaches the debtor's token: files come from the preview
    routes, every other link goes nowhere (so a manager's click is never counted)."""
    for name in FILES:
        html = html.replace(f"/s/{token}/{name}", f"{preview}/{name}")
    html = html.replace(f"{base_url}/s/{token}", "#preview")
    html = html.replace(f"{base_url}/c/{token}", "#preview")
    html = html.replace(f"/s/{token}", "#preview")
    return html.replace(token, "…")


@bp.get("/campaigns/<slug>/debtors/<reference>/preview/<name>")
@requires("manage")
def debtor_preview_file(slug: str, reference: str, name: str):
    """The stored letter, video, poster or captions: the exact version the debtor gets."""
    kind = FILES.get(name)
    if kind is None:
        abort(404)
    ctx = context()
    with ctx.db.session() as db:
        campaign = find_campaign(db, slug)
        debtor = find_debtor(db, campaign, reference)
        stored = artifacts.find(db, debtor, kind)
        if stored is None:
            abort(404)
        key = stored.key
        if kind != "captions":  # the site preview's <track> is not a separate look
            audit.record(db, g.user, "debtor.preview", via="web", campaign_id=campaign.id,
                         reference=debtor.reference, kind=kind, sha256=stored.sha256)  # fmt: skip
    path = ctx.storage.local_path(key)
    if path is not None:
        response = send_file(path, mimetype=content_type(kind), conditional=True)
    else:
        url = ctx.storage.presigned_url(key)
        if url:
            return redirect(url, code=302)
        try:
            data = ctx.storage.get(key)
        except KeyError:
            abort(404)
        response = Response(data, mimetype=content_type(kind))
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    return response
