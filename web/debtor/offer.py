"""Taking a settlement offer: the offer's page, then the checkout for exactly its amount (or,
without online payment, the transfer of exactly that amount).

The page re-checks the offer on every request (kindly.claims.offers): a link from an old
letter or email, or a page kept from before the offer's last day, finds it gone and says so.
"""

from __future__ import annotations

import datetime as dt

from flask import redirect, request

from kindly.claims import offers
from kindly.payments import service as payments
from kindly.rules.offers import terms
from kindly.rules.store import decided_payment_methods, decision_for
from web.context import context
from web.debtor import limits
from web.debtor.common import bp
from web.debtor.hits import hit
from web.debtor.pay import Page


@bp.route("/s/<token>/offer", methods=["GET", "POST"])
@limits.limited("pay")
def offer(token: str):
    """The offer in force: what settles the case, until when; pay it in one go."""
    ctx = context()
    today = dt.date.today()
    with ctx.db.session() as session:
        page = Page(session, token)
        debtor, view = page.debtor, page.view
        # the balance the page shows, as build_view offers it (kindly.claims.offers decides)
        chosen = offers.offer_of(decision_for(session, debtor))
        deal = terms(chosen, view.amount_minor, debtor.currency, today)
        values: dict = {"deal": deal, "error": None, "transfer": None}
        if deal is None:
            values["error"] = page.t["offer_gone"]
            if request.method == "GET":
                page.looked("offer")
            return page.respond("web/offer.html", 410 if request.method == "POST" else 200,
                                **values)  # fmt: skip
        if not ctx.settings.payments_online:
            values["transfer"] = page.transfer(deal.offered_minor)
            if request.method == "POST":
                return redirect(f"/s/{token}/offer", code=303)
        if request.method == "GET":
            page.looked("offer")
            return page.respond("web/offer.html", **values)
        # the amount the page showed; less than the offer never settles, so nothing is charged
        raw = request.form.get("amount", "").strip()[:18]
        shown = int(raw) if raw.isdigit() else None  # minor units, as the form carries them
        if shown is None or shown < deal.offered_minor:
            values["error"] = page.t["offer_below_floor"].format(
                amount=page.money(shown or 0), offer=page.money(deal.offered_minor)
            )
            return page.respond("web/offer.html", 422, **values)
        if shown != deal.offered_minor:  # the offer changed since the page was shown
            return page.respond("web/offer.html", 409, **values)
        try:
            _, url = payments.start_payment(
                session, debtor, payments.provider_for(ctx.settings),
                base_url=ctx.settings.base_url, amount_minor=deal.offered_minor,
                channel=hit().channel, lang=view.lang,
                decided_methods=decided_payment_methods(session, debtor),
                balance_minor=view.amount_minor,  # what is open today, interest included
            )  # fmt: skip
        except payments.AmountError:
            return redirect(f"/s/{token}", code=303)
    return redirect(url, code=303)
