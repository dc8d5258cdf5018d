"""The debtor's microsite: the stored page with its live state, re-rendered when the
balance moved, served from the database, the page this process keeps, or (PostgreSQL down)
the stored page found through its link record."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import replace

from babel.dates import format_date, format_skeleton
from flask import Response, abort, current_app, request
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kindly.campaigns.models import Debtor
from kindly.infra.db import utcnow
from kindly.money import format_minor
from kindly.site import artifacts, links, microsite
from renderer.site import STATUS_MARKER, render_site
from renderer.texts import load_texts
from web.context import context
from web.debtor import paymode
from web.debtor.common import bp, debtor_view, texts_for
from web.debtor.files import FILES
from web.debtor.gate import gate_page
from web.debtor.hits import (
    TOKEN,
    LinkExpired,
    Tracked,
    count,
    find_debtor,
    is_verified,
)
from web.debtor.pagecache import Page, PageCache


def page_body(page: Page, state: microsite.LiveState, args: Mapping[str, str]) -> str:
    """The page for this state: the kept page with the live notices where they belong."""
    if page.tail is None:  # a stored page without the marker shows no notices
        return page.head
    return page.head + str(_status(page, state, args)) + page.tail


def _status(page: Page, state: microsite.LiveState, args: Mapping[str, str]) -> Markup:
    """The live notices shown above the stored page."""
    notices: list[tuple[str, str]] = []
    texts, locale, currency = page.texts, page.locale, page.currency
    paid = state.paid_minor
    outcome = args.get("payment")
    balance = page.amount_due_minor - paid
    if outcome == "succeeded" and paid == 0:
        # back from the provider before its webhook arrived: say so rather than nothing
        notices.append(("info", texts["status_processing"]))
    if outcome == "failed":
        notices.append(("warn", texts["status_failed"]))
    elif outcome == "canceled":
        notices.append(("info", texts["status_canceled"]))
    if paid > 0 and state.transfer is not None:
        amount_minor, received = state.transfer
        amount = format_minor(amount_minor, currency, locale)
        when = format_skeleton("MMMMd", received, locale=locale)
        notices.append(("ok", texts["status_transfer"].format(amount=amount, date=when)))
    elif paid > 0:
        amount = format_minor(paid, currency, locale)
        notices.append(("ok", texts["status_paid"].format(amount=amount)))
    if paid > 0:
        if balance > 0:
            left = format_minor(balance, currency, locale)
            notices.append(("info", texts["status_balance"].format(amount=left)))
        else:
            notices.append(("ok", texts["status_settled"]))
    if args.get("plan") == "requested":
        notices.append(("ok", texts["status_plan"]))
    if state.instalment is not None and balance > 0:
        amount_minor, due = state.instalment
        amount = format_minor(amount_minor, currency, locale)
        when = format_date(due, format="long", locale=locale)
        notices.append(("ok", texts["status_plan_next"].format(amount=amount, date=when)))
    promised = state.promised
    if promised and promised >= dt.date.today() and balance > 0:
        when = format_date(promised, format="long", locale=locale)
        notices.append(("ok", texts["status_promise"].format(date=when)))
    for flag in ("contact", "prefs"):
        if args.get("done") == flag:
            notices.append(("ok", texts[f"status_{flag}"]))
    return Markup("").join(
        Markup('<p class="notice {}">{}</p>').format(kind, escape(text)) for kind, text in notices
    )


@bp.get("/s/<token>")
def site(token: str):
    """The microsite: the stored page plus live state; re-rendered when the balance moved.

    Behind an identity check, only a neutral form is shown until the browser passes it.
    A warm view costs one query: the live state, whose stamp says whether the page this
    process keeps for the token is still the right one (see kindly.site.microsite).
    """
    if not TOKEN.match(token):
        abort(404)
    ctx = context()
    pages: PageCache | None = current_app.extensions.get("kindly_pages")
    if pages is None:
        pages = current_app.extensions.setdefault("kindly_pages", PageCache())
    try:
        state = microsite.read_live_state(ctx.db, token)
    except OperationalError as exc:
        return _without_database(token, pages, exc)
    if state is None:
        abort(404)
    page = pages.get(token, state.stamp)
    if page is None:
        with ctx.db.session() as session:
            page = _build_page(session, token, state)
        pages.put(token, page)
    who = replace(page.who, sent_at=state.sent_at)
    if utcnow() > who.expires_at:
        raise LinkExpired(token)
    if not is_verified(who.id, who.check):
        with ctx.db.session() as session:
            debtor = find_debtor(session, token, gate=False)
            count(session, debtor, "viewed", gate="1")
            return gate_page(session, debtor)
    count(None, who, "viewed")
    return Response(page_body(page, state, request.args), mimetype="text/html")


def _without_database(token: str, pages: PageCache, error: OperationalError) -> Response:
    """PostgreSQL is down: the page this process keeps, or the stored one found through its
    link record (kindly.site.links), with a notice that recent changes may be missing. The
    view is buffered (written once the database is back). A link behind an identity check is
    served only to a browser that passed it; a check can't be answered without the database,
    so the others get the 503 the database error would have given."""
    ctx = context()
    kept = pages.peek(token)
    if kept is not None:
        who, notice, head, tail = kept.who, kept.texts["status_offline"], kept.head, kept.tail
    else:
        record = links.find(ctx.storage, token)
        if record is None:
            raise error
        who = Tracked(id=record.debtor_id, campaign_id=record.campaign_id,
                      variant=record.variant, token=token, expires_at=record.expires,
                      check=record.check, sent_at=None, loaded=time.monotonic())  # fmt: skip
        notice = load_texts("site").for_lang(record.lang)["status_offline"]
        stored = ctx.storage.get(record.site_key).decode()
        if ctx.settings.test_banner:
            stored = paymode.mark_test(
                stored, load_texts("site").for_lang(record.lang)["test_banner"]
            )
        head, marked, tail = stored.partition(STATUS_MARKER)
        tail = tail if marked else None
    if utcnow() > who.expires_at:
        raise LinkExpired(token)
    if not is_verified(who.id, who.check):
        raise error
    if ctx.event_buffer is not None:  # without Redis there is nowhere to keep the view
        count(None, who, "viewed")
    if tail is None:  # a page without a place for notices is served as it is
        return Response(head, mimetype="text/html")
    status = Markup('<p class="notice info">{}</p>').format(notice)
    return Response(head + str(status) + tail, mimetype="text/html")


def _build_page(session, token: str, state: microsite.LiveState) -> Page:
    """Read the debtor and build the page for this state: the stored HTML while nothing was
    paid, else a fresh rendering from the live balance (a few ms, once per change)."""
    debtor = session.scalar(select(Debtor).where(Debtor.token == token))
    if debtor is None:
        abort(404)
    ctx = context()
    paid = state.paid_minor
    view = debtor_view(session, debtor, paid=paid)
    overrides = (debtor.campaign.settings or {}).get("texts")
    stored = artifacts.find(session, debtor, "site")
    html: str | None = None
    online = ctx.settings.payments_online
    # Without online payment the page is always rendered here: a page stored before the
    # mode changed must not offer a pay-now button.
    if stored is not None and online and view.amount_minor == debtor.amount_due_minor:
        try:
            html = ctx.storage.get(stored.key).decode("utf-8")
        except KeyError:
            html = None
    if html is None:
        # Not rendered yet, or the balance changed since: render now (a few ms).
        has = {kind: artifacts.find(session, debtor, kind) is not None for kind in FILES.values()}
        from renderer.video.template import video_ctas

        html = render_site(
            view,
            has_video=has["video"],
            has_letter=has["letter"],
            overrides=overrides,
            video_ctas=video_ctas() if has["video"] else None,
            online=online,
        ).decode()
    texts = texts_for(view, debtor)
    if ctx.settings.test_banner:
        html = paymode.mark_test(html, texts["test_banner"])
    head, marker, tail = html.partition(STATUS_MARKER)
    who = Tracked.of(debtor)
    return Page(
        stamp=state.stamp,
        who=who,
        head=head,
        tail=tail if marker else None,
        texts=texts,
        locale=view.locale.replace("-", "_"),
        currency=debtor.currency,
        amount_due_minor=debtor.amount_due_minor,
        loaded=time.monotonic(),
    )
