"""/api/v1 results: a campaign's numbers and PDF report, debtor-level outcomes, the event
stream and one debtor's timeline."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Response, g
from sqlalchemy import select

from kindly.accounts import audit
from kindly.accounts.masking import event_data
from kindly.accounts.users import can
from kindly.campaigns.models import Debtor
from kindly.claims.amount import amounts_on
from kindly.feedback import survey
from kindly.money import from_minor
from kindly.payments import ledger
from kindly.payments.models import Payment
from kindly.reporting.kpis import campaign_kpis
from kindly.reporting.metrics import campaign_report, campaign_stats
from kindly.reporting.report import report_pdf
from kindly.rules.store import decision_for
from kindly.tracking.models import Event
from web import refpath
from web.api.common import MAX_PAGE, authenticated, bp, campaign_or_404, int_arg, iso, problem
from web.api.ledger import parts_json
from web.context import context


@bp.get("/campaigns/<slug>/stats")
@authenticated()
def stats(slug: str):
    """`kindly stats --json` plus the marketing rates and the collection KPIs."""
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
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
    cursor = int_arg("cursor", 0, 0, 2**62)
    limit = int_arg("limit", 100, 1, MAX_PAGE)
    base_url = context().settings.base_url
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
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
        owed = amounts_on(db, rows, dt.date.today())  # the claim of the day, with interest
        items = []
        for d in rows:
            got = paid.get(d.id, 0)
            items.append({
                "reference": d.reference, "site_url": f"{base_url}/s/{d.token}",
                "segment": d.segment, "variant": d.variant, "channel": d.channel,
                "currency": d.currency,
                "amount_due": str(from_minor(d.amount_due_minor, d.currency)),
                "collected": str(from_minor(got, d.currency)),
                "open_balance": str(
                    from_minor(max(owed[d.id].total_minor - got, 0), d.currency)
                ),
                "open_parts": parts_json(d, got),
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
    since = int_arg("since", 0, 0, 2**62)
    limit = int_arg("limit", 100, 1, MAX_PAGE)
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        rows = db.execute(
            select(Event, Debtor.reference)
            .join(Debtor, Debtor.id == Event.debtor_id)
            .where(Event.campaign_id == campaign.id, Event.id > since)
            .order_by(Event.id)
            .limit(limit)
        ).all()
        items = [
            {"id": e.id, "type": e.type, "reference": reference, "channel": e.channel,
             "variant": e.variant, "agent": e.agent, "occurred_at": iso(e.occurred_at),
             "data": json.loads(json.dumps(event_data(e.data, personal), default=str))}
            for e, reference in rows
        ]  # fmt: skip
    next_cursor = items[-1]["id"] if len(items) == limit else None
    return {"events": items, "next_cursor": next_cursor}


@bp.get("/campaigns/<slug>/debtors/<reference>/timeline")
@authenticated("manage")
def timeline(slug: str, reference: str):
    """Everything that happened to one case: decision, events (with agent), payments."""
    reference = refpath.reference(reference)  # `/` arrives as ~2F (web.refpath)
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        debtor = db.scalar(
            select(Debtor).where(Debtor.campaign_id == campaign.id, Debtor.reference == reference)
        )
        if debtor is None:
            return problem(404, f"no debtor {reference!r} in {slug}")
        decision = decision_for(db, debtor)
        events: list[dict[str, Any]] = [
            {
                "at": e.occurred_at.isoformat(),
                "type": e.type,
                "agent": e.agent,
                "channel": e.channel,
                "variant": e.variant,
                "data": event_data(e.data, can(g.api_user, "manage")),
            }
            for e in db.scalars(
                select(Event)
                .where(Event.debtor_id == debtor.id)
                .order_by(Event.occurred_at, Event.id)
            )
        ]
        payments = [
            {
                "at": p.created_at.isoformat(),
                "provider": p.provider,
                "status": p.status,
                "amount_minor": p.amount_minor,
                "currency": p.currency,
                "id": p.id,
                "kind": p.kind,
                "method": p.method,
                "received_on": p.received_on.isoformat() if p.received_on else None,
            }
            for p in db.scalars(
                select(Payment).where(Payment.debtor_id == debtor.id).order_by(Payment.id)
            )
        ]
        audit.record(
            db,
            g.api_user,
            "debtor.timeline",
            via="api",
            campaign_id=campaign.id,
            reference=reference,
        )
        return {
            "reference": reference,
            "decision": None
            if decision is None
            else {
                "segment": decision.segment,
                "variant": decision.variant,
                "tone": decision.tone,
                "channels": decision.channels,
                "rule_version": decision.rule_version,
            },
            "events": events,
            "payments": payments,
            "open_parts": parts_json(debtor, ledger.paid_minor(db, debtor)),
        }


@bp.get("/campaigns/<slug>/report.pdf")
@authenticated()
def report(slug: str):
    """The campaign report (funnel, money, rates, KPIs) as a PDF."""
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        pdf = report_pdf(db, campaign)
    return Response(
        pdf, mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{slug}-report.pdf"'},
    )  # fmt: skip


@bp.get("/campaigns/<slug>/survey")
@authenticated()
def survey_report(slug: str):
    """The one question after: answers by segment and variant (count, mean, distribution)."""
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        return {"campaign": campaign.slug, **survey.report(db, campaign.id)}
