"""Campaigns: the list with money collected, creation with a portfolio upload, the campaign
page (funnel, rates, money, splits, charts, KPIs), launch and pause, and CSV exports."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from flask import Response, abort, g, redirect, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit, scopes
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import PortfolioRejected, import_portfolio, read_portfolio
from kindly.campaigns.service import LOCALES, create_campaign, is_slug, slug_taken, status_of
from kindly.claims.amount import amounts_on
from kindly.feedback import survey
from kindly.infra import csvsafe
from kindly.launch import StatusRefused, change_status
from kindly.messaging.delivery import in_doubt, in_outbox
from kindly.money import from_minor
from kindly.payments.models import Payment
from kindly.reporting.kpis import campaign_kpis
from kindly.reporting.metrics import campaign_report, campaign_stats
from kindly.reporting.plans import plan_summary
from kindly.rules.experiments import report as report_experiments
from kindly.rules.stats import wilson
from kindly.rules.store import current_rules
from kindly.site import freshness
from kindly.tracking.models import Event
from web.admin import charts
from web.admin.common import bp, requires
from web.context import context

STEP_LABELS = {
    "sent": "sent", "delivered": "delivered", "opened": "opened", "clicked": "clicked",
    "viewed": "viewed", "verified": "verified", "cta": "acted (CTA)",
    "payment_started": "payment started", "paid": "paid", "plan_agreed": "plan agreed",
}  # fmt: skip


def find_campaign(db: Session, slug: str) -> Campaign:
    """The campaign by slug if the signed-in user's scope reaches it, or the dashboard's 404."""
    campaign = scopes.find_campaign(db, slug, scopes.access_of(g.user))
    if campaign is None:
        abort(404)
    return campaign


@bp.get("/")
def campaigns():
    """Every campaign in the user's scope with its status, debtors and money collected."""
    query = scopes.visible(select(Campaign), scopes.access_of(g.user))
    with context().db.session() as db:
        rows = []
        for campaign in db.scalars(query.order_by(Campaign.created_at.desc())):
            stats = campaign_stats(db, campaign)
            rows.append({
                "slug": campaign.slug, "name": campaign.name,
                "status": status_of(db, campaign.id), "debtors": stats["debtors"],
                "paid": stats["funnel"]["paid"], "owed": stats["owed"],
                "collected": stats["collected"],
            })  # fmt: skip
    return render_template("admin/campaigns.html", campaigns=rows)


def _import(db: Session, campaign: Campaign, upload, skip_invalid: bool) -> dict[str, Any]:
    """Read and import an uploaded portfolio; PortfolioRejected lists every bad cell."""
    rows = read_portfolio(upload.read(), upload.filename or "portfolio.csv")
    result, _ = import_portfolio(db, campaign, rows, skip_invalid=skip_invalid)
    audit.record(
        db, g.user, "portfolio.import", via="web", campaign_id=campaign.id,
        file=upload.filename, created=result.created, updated=result.updated,
        rejected=result.rejected, items=result.items.as_detail(),
    )  # fmt: skip
    return {"created": result.created, "updated": result.updated, "rejected": result.errors}


@bp.route("/campaigns/new", methods=["GET", "POST"])
@requires("manage")
def campaign_new():
    """Create a campaign from a portfolio file: nothing is created while a row is invalid."""
    form = request.form
    if request.method == "GET":
        return render_template("admin/campaign_new.html", form={}, errors=[], locales=LOCALES)
    slug = form.get("slug", "").strip()
    problems = []
    if not is_slug(slug):
        problems.append("The short name may hold lower-case letters, digits and '-' only.")
    if form.get("locale") not in LOCALES:
        problems.append("Choose a default language.")
    upload = request.files.get("portfolio")
    if upload is None or not upload.filename:
        problems.append("Choose a portfolio file (CSV or JSON).")
    creditor = form.get("creditor", "").strip() or None
    if not scopes.may_name_creditor(scopes.access_of(g.user), creditor):
        problems.append("You may only create campaigns for a creditor in your scope.")
    with context().db.session() as db:
        if slug and slug_taken(db, slug):
            problems.append(f"A campaign {slug!r} exists already.")
        if problems:
            return render_template("admin/campaign_new.html", form=form, errors=[],
                                   problems=problems, locales=LOCALES), 422  # fmt: skip
        campaign = create_campaign(
            db, slug, name=form.get("name", "").strip()[:200] or slug,
            default_locale=form["locale"], creditor=creditor,
        )  # fmt: skip
        try:
            outcome = _import(db, campaign, upload, bool(form.get("skip_invalid")))
        except PortfolioRejected as exc:
            db.rollback()  # all or nothing: not even the campaign is kept
            return render_template("admin/campaign_new.html", form=form, errors=exc.errors,
                                   locales=LOCALES), 422  # fmt: skip
        audit.record(db, g.user, "campaign.create", via="web", campaign_id=campaign.id, slug=slug)
    return render_template("admin/imported.html", slug=slug, outcome=outcome)


@bp.post("/campaigns/<slug>/upload")
@requires("manage")
def campaign_upload(slug: str):
    """Add or update debtors of an existing campaign from a portfolio file."""
    upload = request.files.get("portfolio")
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        if upload is None or not upload.filename:
            message = "Choose a portfolio file (CSV or JSON)."
            return render_template("admin/message.html", title="No file", message=message), 422
        try:
            outcome = _import(db, campaign, upload, bool(request.form.get("skip_invalid")))
        except PortfolioRejected as exc:
            db.rollback()
            return render_template("admin/imported.html", slug=slug, errors=exc.errors,
                                   outcome=None), 422  # fmt: skip
    return render_template("admin/imported.html", slug=slug, outcome=outcome)


@bp.post("/campaigns/<slug>/status")
@requires("manage")
def campaign_status(slug: str):
    """Launch, pause, resume or end a campaign."""
    wanted = {"launch": "live", "pause": "paused", "resume": "live", "end": "ended"}.get(
        request.form.get("do", "")
    )
    if wanted is None or (wanted == "ended" and request.form.get("confirm") != "yes"):
        abort(400)
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        try:
            change = change_status(db, campaign, wanted, user=g.user, via="web")
        except StatusRefused as exc:
            abort(409, description=str(exc))
        if change.gaps:
            return render_template("admin/launch_gaps.html", slug=slug, gaps=change.gaps), 409
    return redirect(f"/admin/campaigns/{slug}", code=303)


@bp.get("/campaigns/<slug>")
def campaign_page(slug: str):
    """The funnel raw vs people, rates, money, splits, charts, experiments and KPIs."""
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        report = campaign_report(db, campaign)
        kpis = campaign_kpis(db, campaign)
        experiments = report_experiments(db, campaign, current_rules(db, campaign))
        answers = survey.report(db, campaign.id)
        comments = survey.recent_comments(db, campaign.id)
        plans = plan_summary(db, campaign)
        entries = audit.recent(db, limit=15, campaign_id=campaign.id)
        status = status_of(db, campaign.id)
        doubtful = in_doubt(db, campaign.id, dt.datetime.now(dt.UTC))
        outboxed = in_outbox(db, campaign.id)
        pages = freshness.summary(db, campaign.id)
        name = campaign.name
    money = report["money"]
    steps = [(STEP_LABELS[s["step"]], s["human"], s["raw"]) for s in report["funnel"]]
    over_time = {}
    for currency in money["currencies"]:
        days = [
            (day, float(from_minor(amounts[currency], currency)))
            for day, amounts in money["daily_collected_minor"].items()
            if currency in amounts
        ]
        if days:
            over_time[currency] = charts.money_over_time(days, currency)
    variants = []
    for row in report["splits"]["variant"]:
        low, high = wilson(row["paid"], row["debtors"])
        variants.append((row["value"], row["conversion"], low, high, row["debtors"]))
    activity_total = sum(sum(r) for r in report["activity"])
    return render_template(
        "admin/campaign.html", slug=slug, name=name, status=status, report=report, kpis=kpis,
        money=money, funnel_chart=charts.funnel(steps) if report["debtors"] else None,
        steps=steps, over_time=over_time,
        variant_chart=charts.intervals(variants) if variants else None,
        activity_chart=charts.activity(report["activity"]) if activity_total else None,
        experiments=experiments, survey=answers, comments=comments,
        plans=plans, entries=entries, in_doubt=doubtful,
        outbox=outboxed, pages=pages,
        rebuild_in_background=not context().settings.jobs_in_process,
    )  # fmt: skip


@bp.get("/campaigns/<slug>/debtors.csv")
@requires("manage")
def export_debtors(slug: str):
    """One row per debtor: what was owed, collected, left, and the furthest step reached."""
    order = ("sent", "delivered", "opened", "clicked", "viewed", "verified", "cta",
             "payment_started", "plan_agreed", "paid")  # fmt: skip
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        reached: dict[int, set[str]] = {}
        for debtor_id, type_ in db.execute(
            select(Event.debtor_id, Event.type).where(
                Event.campaign_id == campaign.id, Event.agent == "human"
            )
        ):
            reached.setdefault(debtor_id, set()).add(type_)
        paid: dict[int, int] = {}
        for debtor_id, amount in db.execute(
            select(Payment.debtor_id, Payment.amount_minor).where(
                Payment.campaign_id == campaign.id, Payment.status == "succeeded"
            )
        ):
            paid[debtor_id] = paid.get(debtor_id, 0) + int(amount)
        out = io.StringIO()
        writer = csvsafe.writer(out)
        writer.writerow(["reference", "segment", "variant", "channel", "currency", "amount_due",
                         "collected", "open_balance", "furthest_step"])  # fmt: skip
        debtors = db.scalars(
            select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.reference)
        ).all()
        owed = amounts_on(db, debtors, dt.date.today())  # the claim of the day, with interest
        for d in debtors:
            steps = reached.get(d.id, set())
            furthest = next((s for s in reversed(order) if s in steps), "")
            got = paid.get(d.id, 0)
            writer.writerow([
                d.reference, d.segment, d.variant, d.channel, d.currency,
                from_minor(d.amount_due_minor, d.currency), from_minor(got, d.currency),
                from_minor(max(owed[d.id].total_minor - got, 0), d.currency), furthest,
            ])  # fmt: skip
        audit.record(db, g.user, "export.debtors", via="web", campaign_id=campaign.id,
                     rows=len(debtors))  # fmt: skip
    return _csv(out.getvalue(), f"{slug}-debtors.csv")


@bp.get("/campaigns/<slug>/funnel.csv")
@requires("manage")
def export_funnel(slug: str):
    """The funnel, people and raw, as CSV."""
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        report = campaign_report(db, campaign)
        audit.record(db, g.user, "export.funnel", via="web", campaign_id=campaign.id)
    out = io.StringIO()
    writer = csvsafe.writer(out)
    writer.writerow(["step", "people", "all_incl_machines"])
    for row in report["funnel"]:
        writer.writerow([row["step"], row["human"], row["raw"]])
    return _csv(out.getvalue(), f"{slug}-funnel.csv")


def _csv(text: str, filename: str) -> Response:
    disposition = f'attachment; filename="{filename}"'
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": disposition})
