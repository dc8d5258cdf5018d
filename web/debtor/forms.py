"""The debtor's self-service forms: promise a date, ask or dispute, contact preferences,
and the FAQ, each through the one debtor-form helper (web.debtor.common.DebtorForm)."""

from __future__ import annotations

import datetime as dt
import re

from babel.dates import format_date
from flask import abort, request

from kindly.cases import holds
from kindly.cases.read import case_of
from kindly.inbox import service as inbox
from kindly.messaging import optout
from kindly.money import format_minor
from kindly.payments import plans
from kindly.site import identity
from web.context import context
from web.debtor import limits
from web.debtor.common import DebtorForm, bp

TOPICS = ("question", "dispute", "callback", "plan_date")
"""What a debtor may write about; plan_date (move an instalment) is offered with a plan."""
DIGITAL = ("email", "sms")
PHONE = re.compile(r"^\+?[0-9 ()/-]{6,20}$")
MAX_MESSAGE = 2000


@bp.route("/s/<token>/promise", methods=["GET", "POST"])
@limits.limited("promise")
def promise(token: str):
    """Promise to pay on a date within the campaign's limit."""
    with context().db.session() as session:
        form = DebtorForm(session, token)
        view = form.view
        today = dt.date.today()
        latest = today + dt.timedelta(days=identity.promise_days(form.debtor.campaign))
        max_text = format_date(latest, format="long", locale=view.locale.replace("-", "_"))
        error = None
        if request.method == "POST":
            try:
                chosen = dt.date.fromisoformat(request.form.get("date", "").strip())
            except ValueError:
                chosen = None
            if chosen is not None and today <= chosen <= latest and view.amount_minor > 0:
                data = {"date": chosen.isoformat(), "amount_minor": view.amount_minor}
                return form.done("promise", data, to="?done=promise")
            error = form.texts["promise_invalid"].format(max_date=max_text)
        else:
            form.looked("promise")
        case = case_of(session, form.debtor, today)
        current = None
        if case.state == "promised" and case.promise is not None:  # choosing again moves it
            locale = view.locale.replace("-", "_")
            current = form.texts["promise_current"].format(
                amount=format_minor(case.promise.amount_minor, form.debtor.currency, locale),
                date=format_date(case.promise.on, format="long", locale=locale),
            )
        return form.render(
            "web/promise.html",
            current=current,
            error=error,
            min=today.isoformat(),
            max=latest.isoformat(),
            max_text=max_text,
        ), (400 if error else 200)


@bp.route("/s/<token>/contact", methods=["GET", "POST"])
@limits.limited("contact")
def contact(token: str):
    """Ask a question, dispute the claim or ask for a call back."""
    with context().db.session() as session:
        form = DebtorForm(session, token)
        error = None
        if request.method == "POST":
            topic = request.form.get("topic", "")
            message = request.form.get("message", "").strip()
            phone = request.form.get("phone", "").strip()
            valid = (
                topic in TOPICS
                and (message or topic == "callback")
                and len(message) <= MAX_MESSAGE
                and (not phone or PHONE.match(phone))
                and (topic != "callback" or phone or form.debtor.phone)
            )
            if valid:
                data = {"topic": topic, "message": message, "phone": phone}
                back = form.done(
                    "contact", data, to=f"?done={'dispute' if topic == 'dispute' else 'contact'}"
                )
                if topic == "dispute":
                    # A dispute holds collection at once, until a person answers it; the page
                    # then says so instead of asking for the money.
                    holds.place(session, form.debtor, "dispute", source="page", note=message)
                inbox.collect(session, debtor=form.debtor)  # in the cockpit's inbox at once
                return back
            error = form.texts["contact_invalid"]
        else:
            form.looked("contact")
        chosen = request.form.get("topic") if error else request.args.get("topic", "question")
        with_plan = plans.open_plan(session, form.debtor) is not None
        return form.render(
            "web/contact.html",
            error=error,
            topics=[t for t in TOPICS if t != "plan_date" or with_plan or chosen == t],
            chosen=chosen,
            replies=inbox.replies_for(session, form.debtor),
        ), (400 if error else 200)


@bp.route("/s/<token>/preferences", methods=["GET", "POST"])
@limits.limited("preferences")
def preferences(token: str):
    """The debtor's preferred channel, and stopping (or again receiving) digital messages:
    the page shows what was saved, and unticking a stop lifts the debtor's own opt-out."""
    with context().db.session() as session:
        form = DebtorForm(session, token)
        debtor = form.debtor
        reachable = [name for name in DIGITAL if optout.address_of(debtor, name)]
        stopped = optout.own_opt_outs(session, debtor)
        if request.method == "POST":
            channel = request.form.get("channel", "")
            if channel not in ("email", "sms", "letter"):
                abort(400)
            back = form.done("preference", {"preferred_channel": channel}, to="?done=prefs")
            everything = request.form.get("opt_out") == "1"  # the one box of older pages
            for name in reachable:
                stop = everything or request.form.get(f"stop_{name}") == "1"
                if stop and name not in stopped:
                    # the suppression list `kindly send` honours, plus an `opted_out` event
                    optout.opt_out(session, debtor, name, source="microsite")
                elif not stop and name in stopped:
                    optout.opt_in(session, debtor, name, source="microsite")
            return back
        form.looked("preferences")
        return form.render(
            "web/preferences.html",
            current=optout.chosen_channel(session, debtor),
            reachable=reachable,
            stopped=[name for name in reachable if name in stopped],
        )


@bp.get("/s/<token>/faq")
def faq(token: str):
    """Short answers to what debtors ask most."""
    with context().db.session() as session:
        form = DebtorForm(session, token)
        form.looked("faq")
        return form.render("web/faq.html")
