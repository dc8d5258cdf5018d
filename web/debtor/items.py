"""Select & Pay: the debtor ticks the items (invoices) of their case they want to pay and pays
their sum through the usual checkout; the payment names the items, which are paid once it
succeeds (kindly.claims.items)."""

from __future__ import annotations

from flask import Blueprint, redirect, request

from kindly.bank import rf
from kindly.claims.items import ItemChoiceError, choose, items_of, link_payment
from kindly.payments import service as payments
from kindly.rules.store import decided_payment_methods
from web.context import context
from web.debtor import limits
from web.debtor.hits import hit
from web.debtor.pay import Page

bp = Blueprint("items", __name__)

ERRORS = {"none": "err_items_none", "disputed": "err_items_disputed"}
"""The pay text for each reason a choice is refused (anything else: the items changed)."""


@bp.route("/s/<token>/items", methods=["GET", "POST"])
@limits.limited("pay")
def select_and_pay(token: str):
    """The case's items with a box for each open one; a POST pays the ticked ones."""
    ctx = context()
    online = ctx.settings.payments_online
    with ctx.db.session() as session:
        page = Page(session, token)
        debtor, view = page.debtor, page.view
        items = items_of(session, [debtor.id]).get(debtor.id, [])
        if not items:
            return redirect(f"/s/{token}/pay", code=303)
        values = dict(
            items=items, chosen=set(), error=None, online=online, rf=rf.printed,
            nothing_owed=view.amount_minor <= 0,
        )  # fmt: skip
        if request.method == "GET":
            page.looked("select-pay")
            return page.respond("web/pay_items.html", **values)
        if not online or view.amount_minor <= 0:
            return redirect(f"/s/{token}", code=303)
        ticked = request.form.getlist("item")
        try:
            picked = choose(session, debtor, ticked)
        except ItemChoiceError as exc:
            error = page.p[ERRORS.get(exc.reason, "err_items_changed")]
            chosen = {int(x) for x in ticked if x.isdigit() and len(x) <= 12}
            return page.respond(
                "web/pay_items.html", 422, **values | {"error": error, "chosen": chosen}
            )
        # never more than the balance (money paid without naming items already counts)
        amount = min(sum(item.open_minor for item in picked), view.amount_minor)
        try:
            payment, url = payments.start_payment(
                session,
                debtor,
                payments.provider_for(ctx.settings),
                base_url=ctx.settings.base_url,
                amount_minor=amount,
                channel=hit().channel,
                lang=view.lang,
                decided_methods=decided_payment_methods(session, debtor),
                balance_minor=view.amount_minor,  # what is open today, interest included
                minimum=False,  # an invoice is paid whole, however small
            )
        except payments.AmountError:
            return redirect(f"/s/{token}", code=303)
        link_payment(session, payment, picked)
    return redirect(url, code=303)
