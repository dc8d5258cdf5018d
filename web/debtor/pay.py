"""Paying in full or in part, and agreeing a plan: the debtor's payment pages."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from babel.dates import format_date
from flask import Blueprint, Response, abort, redirect, render_template, request
from weasyprint import HTML

from kindly.money import MoneyError, format_minor, parse_amount, to_minor
from kindly.payments import changes, plans, policy
from kindly.payments import service as payments
from kindly.payments.models import Instalment, Plan
from kindly.rules.store import decided_payment_methods
from kindly.rules.time import time_rules_for
from kindly.tracking import events
from renderer.pdf import FONT_FACES
from renderer.texts import load_texts
from renderer.transfer import Transfer, bank_transfer
from web.context import context
from web.debtor import limits
from web.debtor.common import DebtorForm
from web.debtor.hits import hit
from web.download import attachment

bp = Blueprint("pay", __name__)


class Page(DebtorForm):
    """What every payment page needs: the debtor-form helper's debtor and view, the pay
    texts and formatters."""

    def __init__(self, session, token: str):
        super().__init__(session, token)
        self.babel = self.view.locale.replace("-", "_")
        self.t = self.texts  # the site's texts in the debtor's tone, with the campaign's own
        self.p = load_texts("pay").for_lang(self.view.lang)

    def money(self, minor: int) -> str:
        """An amount in the debtor's currency and locale."""
        return format_minor(minor, self.debtor.currency, self.babel)

    def date(self, day: dt.date) -> str:
        """A date the way the debtor writes it."""
        return format_date(day, format="long", locale=self.babel)

    def transfer(self, amount_minor: int | None = None) -> Transfer:
        """The bank transfer of `amount_minor` (default: the balance), with its GiroCode."""
        minor = self.view.amount_minor if amount_minor is None else amount_minor
        return bank_transfer(self.view, minor, self.money(minor))

    def respond(self, template: str, status: int = 200, **values):
        """A page with the pay values filled in, and its status."""
        html = render_template(
            template,
            v=self.view,
            t=self.t,
            p=self.p,
            lang=self.view.lang,
            token=self.token,
            money=self.money,
            date=self.date,
            **values,
        )
        return html, status


def parse_money(text: str, currency: str) -> int | None:
    """What a person typed (1.234,56 or 1234.56 or 50) in minor units, or None."""
    raw = re.sub(r"[^\d.,]", "", text or "")
    if "," in raw and "." in raw:
        decimal_mark = "," if raw.rfind(",") > raw.rfind(".") else "."
        raw = raw.replace("." if decimal_mark == "," else ",", "")
    raw = raw.replace(",", ".")
    try:
        value = Decimal(raw)
        return to_minor(parse_amount(str(value), currency), currency)
    except (InvalidOperation, MoneyError):
        return None


def _channel() -> str | None:
    return hit().channel


def _instalment(page: Page, raw: str | None) -> Instalment | None:
    """The debtor's own open instalment the form names, or None."""
    if not raw or not raw.isdigit():
        return None
    instalment = page.session.get(Instalment, int(raw))
    if instalment is None or instalment.plan.debtor_id != page.debtor.id:
        return None
    if instalment.status not in ("due", "failed") or instalment.plan.status not in plans.OPEN:
        return None
    return instalment


@bp.route("/s/<token>/pay", methods=["GET", "POST"])
@limits.limited("pay")
def pay(token: str):
    """Confirm the amount (all of it, or a part above the campaign's minimum), then pay."""
    ctx = context()
    with ctx.db.session() as session:
        page = Page(session, token)
        debtor, view = page.debtor, page.view
        instalment = _instalment(page, request.values.get("instalment"))
        minimum = min(policy.min_part_minor(debtor.campaign, debtor.currency), view.amount_minor)
        form = {"choice": "full", "amount": ""}
        values = dict(
            nothing_owed=view.amount_minor <= 0,
            instalment=instalment,
            minimum=minimum,
            error=None,
            form=form,
        )
        if not ctx.settings.payments_online:
            # KINDLY_PAYMENTS=none: the page shows the bank transfer; nothing is charged here
            values["transfer"] = page.transfer(instalment.amount_minor if instalment else None)
            if request.method == "POST":
                return redirect(f"/s/{token}/pay", code=303)
        if request.method == "GET":
            page.looked("pay")
            return page.respond("web/pay.html", **values)
        if view.amount_minor <= 0:
            return redirect(f"/s/{token}", code=303)
        amount: int | None = None
        if instalment is not None:
            amount = min(instalment.amount_minor, view.amount_minor)
        elif request.form.get("choice") == "part":
            form.update(choice="part", amount=request.form.get("amount", "")[:32])
            amount = parse_money(form["amount"], debtor.currency)
            if amount is None:
                example = page.money(minimum)
                return page.respond(
                    "web/pay.html",
                    422,
                    **values | {"error": page.p["err_amount"].format(example=example)},
                )
        try:
            _, url = payments.start_payment(
                session,
                debtor,
                payments.provider_for(ctx.settings),
                base_url=ctx.settings.base_url,
                amount_minor=amount,
                channel=_channel(),
                instalment_id=instalment.id if instalment is not None else None,
                save_method=instalment is not None and not instalment.plan.method_ref,
                lang=view.lang,
                decided_methods=decided_payment_methods(session, debtor),
                balance_minor=view.amount_minor,  # what is open today, interest included
            )
        except payments.AmountError as exc:
            key = {"below_minimum": "err_below_minimum", "above_balance": "err_above_balance"}
            if exc.reason not in key:
                return redirect(f"/s/{token}", code=303)
            error = page.p[key[exc.reason]].format(amount=page.money(exc.limit_minor))
            return page.respond("web/pay.html", 422, **values | {"error": error})
    return redirect(url, code=303)


def _proposal_from(page: Page, args, today: dt.date) -> plans.Proposal | None:
    """The plan the form asks for (a number of instalments or an amount each), if any."""
    rules = plans.rules_for(page.debtor, page.view.amount_minor)
    frequency = args.get("frequency", "monthly")
    monthly = (
        parse_money(args.get("amount", ""), page.debtor.currency) if args.get("amount") else None
    )
    raw = args.get("instalments", "")
    if monthly is None and not raw:
        return None
    try:
        n = int(raw) if monthly is None else None
    except ValueError:
        abort(400)
    return plans.propose(
        rules,
        page.view.amount_minor,
        today=today,
        count=n,
        monthly_minor=monthly,
        frequency=frequency[:16],
    )


def _why(page: Page, proposal: plans.Proposal) -> list[str]:
    out = []
    for code, value in proposal.reasons:
        if code == "too_small":
            value = page.money(int(value))
        elif code == "first_due":
            value = page.date(dt.date.fromisoformat(value))
        elif code == "frequency":
            value = page.p.get(f"freq_{value}", value)
        out.append(page.p[f"why_{code}"].format(value=value))
    return out


@bp.route("/s/<token>/plan", methods=["GET", "POST"])
@limits.limited("plan")
def plan(token: str):
    """Choose instalments (step 1), see the schedule (step 2), agree (step 3)."""
    ctx = context()
    today = dt.date.today()
    with ctx.db.session() as session:
        page = Page(session, token)
        debtor, view = page.debtor, page.view
        existing = plans.open_plan(session, debtor)
        if existing is not None:
            return redirect(f"/s/{token}/plan/agreed", code=303)
        rules = plans.rules_for(debtor, view.amount_minor)
        choices = [
            (n, page.money(plans.split(view.amount_minor, n)[0]))
            for n in plans.offered_counts(rules, view.amount_minor)
        ]
        args = request.form if request.method == "POST" else request.args
        proposal = _proposal_from(page, args, today) if view.amount_minor > 0 else None
        values = dict(
            nothing_owed=view.amount_minor <= 0,
            choices=choices,
            rules=rules,
            proposal=proposal,
            why=_why(page, proposal) if proposal else [],
            selected=proposal.count if proposal else 3,
            missed_to_end=time_rules_for(session, debtor).missed_to_end,
        )
        if request.method == "GET":
            if proposal is None:
                page.looked("plan")
            else:
                # Looking at a schedule is not asking for it: a view, which holds nothing
                # (only the POST below asks, or agrees).
                events.record(
                    session,
                    debtor,
                    "plan_viewed",
                    channel=_channel(),
                    agent=hit().agent,
                    data={
                        "instalments": str(proposal.count),
                        "frequency": proposal.frequency,
                        "balance_minor": str(view.amount_minor),
                    },
                    key=f"plan_viewed:{debtor.id}:{proposal.count}:{proposal.frequency}:{today}",
                )
            return page.respond("web/plan.html", **values)
        if view.amount_minor <= 0 or proposal is None:
            return redirect(f"/s/{token}", code=303)
        if request.form.get("show") == "1":  # step 1 -> 2: the schedule, at an address of its own
            query = {"frequency": proposal.frequency}
            if request.form.get("amount"):
                query["amount"] = request.form["amount"][:32]
            else:
                query["instalments"] = str(proposal.count)
            return redirect(f"/s/{token}/plan?" + urlencode(query), code=303)
        if not proposal.valid:
            return page.respond("web/plan.html", 400, **values)
        if request.form.get("agree") != "1":
            # Asked for, not agreed: the creditor confirms (the microsite's plan request).
            events.record(
                session,
                debtor,
                "plan_requested",
                channel=_channel(),
                data={"instalments": str(proposal.count), "balance_minor": str(view.amount_minor)},
            )
            return redirect(f"/s/{token}?plan=requested", code=303)
        try:
            plans.agree(session, debtor, proposal, balance_minor=view.amount_minor,
                        channel=_channel(), missed_to_end=values["missed_to_end"])  # fmt: skip
        except payments.PaymentError:
            return redirect(f"/s/{token}/plan", code=303)
    return redirect(f"/s/{token}/plan/agreed", code=303)


def _latest_plan(page: Page) -> Plan:
    plan_ = plans.open_plan(page.session, page.debtor)
    if plan_ is None:
        from sqlalchemy import select

        plan_ = page.session.scalar(
            select(Plan).where(Plan.debtor_id == page.debtor.id).order_by(Plan.id.desc())
        )
    if plan_ is None:
        abort(404)
    return plan_


@bp.get("/s/<token>/plan/agreed")
def agreed(token: str):
    """The agreed plan: its schedule, what is paid, the next instalment to pay, the PDF."""
    ctx = context()
    with ctx.db.session() as session:
        page = Page(session, token)
        plan_ = _latest_plan(page)
        upcoming = next((i for i in plan_.instalments if i.status in ("due", "failed")), None)
        online = ctx.settings.payments_online
        return page.respond(
            "web/pay_plan_agreed.html",
            transfer=page.transfer(upcoming.amount_minor) if upcoming and not online else None,
            plan=plan_,
            upcoming=upcoming,
            first=plan_.instalments[0],
            today=dt.date.today(),
            changes=changes.of_plan(session, plan_.id),
        )


@bp.get("/s/<token>/plan/confirmation.pdf")
def confirmation(token: str):
    """The plan's confirmation as a PDF the debtor keeps."""
    ctx = context()
    with ctx.db.session() as session:
        page = Page(session, token)
        plan_ = _latest_plan(page)
        debtor = page.debtor
        name = " ".join(x for x in (debtor.salutation, debtor.first_name, debtor.last_name) if x)
        html, _ = page.respond(
            "web/pay_plan_confirmation.html", plan=plan_, name=name, fonts=FONT_FACES,
            changes=changes.of_plan(session, plan_.id),
        )  # fmt: skip
    pdf = HTML(string=html).write_pdf()
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": attachment(f"plan-{debtor.reference}", "pdf")},
    )
