"""Paying and asking for a plan: the debtor's forms, handed over to core.payments."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, redirect, render_template, request

from kindly.core import events, payments
from kindly.core.money import format_minor
from kindly.renderer.texts import load_texts
from kindly.web.debtors import context, count, find_debtor
from kindly.web.public import debtor_view

bp = Blueprint("pay", __name__)

PLAN_CHOICES = (2, 3, 6, 12)


@bp.route("/s/<token>/pay", methods=["GET", "POST"])
def pay(token: str):
    """Confirm the amount, then hand over to the payment provider."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        view = debtor_view(session, debtor)
        texts = load_texts("site").for_lang(view.lang)
        if request.method == "GET":
            count(session, debtor, "cta", cta="pay")
            return render_template("web/pay.html", v=view, t=texts, lang=view.lang,
                                   nothing_owed=view.amount_minor <= 0)  # fmt: skip
        if view.amount_minor <= 0:
            return redirect(f"/s/{token}", code=303)
        provider = payments.provider_for(ctx.settings)
        _, url = payments.start_payment(
            session,
            debtor,
            provider,
            base_url=ctx.settings.base_url,
            channel=request.args.get("c") if request.args.get("c") in events.CHANNELS else None,
        )
    return redirect(url, code=303)


@bp.route("/s/<token>/plan", methods=["GET", "POST"])
def plan(token: str):
    """Offer monthly instalments; a request is recorded for the creditor to confirm."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        view = debtor_view(session, debtor)
        texts = load_texts("site").for_lang(view.lang)
        if request.method == "GET":
            count(session, debtor, "cta", cta="plan")
            choices = [
                (
                    n,
                    format_minor(
                        -(-view.amount_minor // n), view.currency, view.locale.replace("-", "_")
                    ),
                )
                for n in PLAN_CHOICES
            ]
            return render_template(
                "web/plan.html",
                v=view,
                t=texts,
                lang=view.lang,
                choices=choices,
                nothing_owed=view.amount_minor <= 0,
            )
        try:
            instalments = int(request.form.get("instalments", ""))
        except ValueError:
            abort(400)
        if instalments not in PLAN_CHOICES:
            abort(400)
        events.record(
            session,
            debtor,
            "plan_requested",
            data={"instalments": str(instalments), "balance_minor": str(view.amount_minor)},
        )
    return redirect(f"/s/{token}?" + urlencode({"plan": "requested"}), code=303)
