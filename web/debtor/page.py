"""The debtor's microsite: the stored page with its live state, rendered anew when anything
it is made of changed (page_html, which the cockpit's preview shares), served from the
database, the page this process keeps, or (PostgreSQL down) the stored page found through its
link record."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import replace

from babel.dates import format_skeleton
from flask import Response, abort, current_app, request
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kindly.campaigns.models import Debtor
from kindly.claims import offers
from kindly.infra.db import utcnow
from kindly.money import format_minor
from kindly.site import artifacts, links, microsite
from renderer.site import STATUS_MARKER, render_site
from renderer.texts import load_texts
from renderer.view import DebtorView
from web.context import context
from web.debtor import paymode
from web.debtor.case import case_view
from web.debtor.common import bp, debtor_view, texts_for
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
    today = dt.date.today()  # not the kept state's day: an offer ends at midnight, kept or not
    if page.tail is None:  # a stored page without the marker shows no notices
        return offers.strip_expired(page.head, today)
    body = page.head + str(_status(page, state, args)) + page.tail
    return offers.strip_expired(body, today)


def _status(page: Page, state: microsite.LiveState, args: Mapping[str, str]) -> Markup:
    """At most one live notice: the outcome of what the debtor just did (back from paying, a
    form sent). What the case is (a plan, a promise, a dispute, paid) is the page's first
    screen, rebuilt when the state changes, so notices never stack up above it."""
    texts, locale, currency = page.texts, page.locale, page.currency
    paid = state.paid_minor
    outcome = args.get("payment")
    notice: tuple[str, str] | None = None
    if outcome == "succeeded":
        # back from the provider before its webhook arrived: say so rather than nothing
        notice = (
            ("ok", texts["status_paid"].format(amount=format_minor(paid, currency, locale)))
            if paid > 0
            else ("info", texts["status_processing"])
        )
    elif outcome == "failed":
        notice = ("warn", texts["status_failed"])
    elif outcome == "canceled":
        notice = ("info", texts["status_canceled"])
    elif args.get("done") in ("contact", "prefs", "survey"):
        notice = ("ok", texts[f"status_{args['done']}"])
    elif paid > 0 and state.transfer is not None:
        # money that came by bank transfer: say it arrived (the first screen says what is left)
        amount_minor, received = state.transfer
        amount = format_minor(amount_minor, currency, locale)
        when = format_skeleton("MMMMd", received, locale=locale)
        notice = ("ok", texts["status_transfer"].format(amount=amount, date=when))
    if notice is None:
        return Markup("")
    return Markup('<p class="notice {}">{}</p>').format(notice[0], escape(notice[1]))


@bp.get("/s/<token>")
def site(token: str):
    """The microsite: the current page (page_html) plus live state.

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
    if ctx.event_buffer is not None or ctx.journal is not None:  # somewhere to keep the view
        count(None, who, "viewed")
    today = dt.date.today()
    if tail is None:  # a page without a place for notices is served as it is
        return Response(offers.strip_expired(head, today), mimetype="text/html")
    status = Markup('<p class="notice info">{}</p>').format(notice)
    return Response(offers.strip_expired(head + str(status) + tail, today), mimetype="text/html")


def page_html(session, debtor: Debtor, view: DebtorView, today: dt.date | None = None) -> str:
    """The page the debtor's link shows for this view (the live notices' place still marked):
    the stored HTML while it is current, else the page rendered now from the current state.
    The cockpit's preview is this very function's output.

    Stored HTML is current when no change marked it stale and it was rendered from the same
    inputs (view, texts, files, payment mode, templates, renderer) as a rendering now would
    be: a change to the rules, texts, settings, creditor or templates shows on the next open,
    before a render job rebuilds the stored copy. The case's state as of `today` (default:
    today) decides the first screen: only an open case's page is the stored one.
    """
    ctx = context()
    stored = artifacts.by_kind(session, debtor)
    has_video, has_letter = "video" in stored, "letter" in stored
    case, shown = case_view(session, debtor, view, today=today)
    overrides = (debtor.campaign.settings or {}).get("texts")
    online = ctx.settings.payments_online
    inputs = artifacts.site_inputs(
        view, has_video=has_video, has_letter=has_letter, overrides=overrides, online=online
    )
    html: str | None = None
    site = stored.get("site")
    # The stored page is an open case's: any other state (a plan, a promise, a dispute,
    # paid) has a first screen of its own, rendered here.
    if case.state == "open" and not shown.dispute_state and artifacts.is_current(site, inputs):
        try:
            html = ctx.storage.get(site.key).decode("utf-8")
        except KeyError:
            html = None
    if html is None:  # not rendered yet, outdated, or not open: render now (a few ms)
        from renderer.video.template import video_ctas  # the video package loads moviepy

        html = render_site(
            view,
            has_video=has_video,
            has_letter=has_letter,
            overrides=overrides,
            video_ctas=video_ctas() if has_video else None,
            online=online,
            case=shown,
        ).decode()
    if ctx.settings.test_banner:
        html = paymode.mark_test(html, texts_for(view, debtor)["test_banner"])
    return html


def _build_page(session, token: str, state: microsite.LiveState) -> Page:
    """Read the debtor and build the page for this state (page_html), kept until the state's
    stamp changes."""
    debtor = session.scalar(select(Debtor).where(Debtor.token == token))
    if debtor is None:
        abort(404)
    view = debtor_view(session, debtor, paid=state.paid_minor)
    html = page_html(session, debtor, view, today=state.today)
    head, marker, tail = html.partition(STATUS_MARKER)
    return Page(
        stamp=state.stamp,
        who=Tracked.of(debtor),
        head=head,
        tail=tail if marker else None,
        texts=texts_for(view, debtor),
        locale=view.locale.replace("-", "_"),
        currency=debtor.currency,
        amount_due_minor=debtor.amount_due_minor,
        loaded=time.monotonic(),
    )
