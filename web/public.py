"""The debtor's pages: the microsite with live state, the identity check, and the
self-service forms (promise a date, ask or dispute, contact preferences, FAQ)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from babel.dates import format_date
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
)
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kindly.campaigns.models import Debtor
from kindly.infra.db import utcnow
from kindly.messaging import optout
from kindly.money import format_minor
from kindly.payments import ledger
from kindly.site import artifacts, identity, links, microsite
from kindly.site.personalise import build_view
from kindly.tracking import events
from renderer.site import STATUS_MARKER, render_site
from renderer.texts import load_texts
from renderer.view import DebtorView
from web import limits, paymode
from web.debtors import (
    TOKEN,
    LinkExpired,
    Tracked,
    confirm_person,
    context,
    count,
    find_debtor,
    hit,
    is_verified,
    judge,
    mark_verified,
    record_hit,
    tracked,
    verified,
)
from web.security import csrf_exempt

bp = Blueprint("public", __name__)

FILES = {
    "letter.pdf": "letter",
    "video.mp4": "video",
    "poster.jpg": "poster",
    "captions.vtt": "captions",
}
BEACON_TYPES = {
    "view": "viewed",
    "video_play": "video_play",
    "video_progress": "video_progress",
    "video_complete": "video_complete",
}
TOPICS = ("question", "dispute", "callback")
PHONE = re.compile(r"^\+?[0-9 ()/-]{6,20}$")
MAX_MESSAGE = 2000


def debtor_view(session, debtor, *, paid: int | None = None) -> DebtorView:
    """The debtor's view with the live balance (`paid`: already read from the ledger)."""
    return build_view(
        debtor,
        debtor.campaign,
        base_url=context().settings.base_url,
        paid_minor=ledger.paid_minor(session, debtor) if paid is None else paid,
    )


def texts_for(view: DebtorView, debtor: Debtor) -> dict[str, str]:
    """The site's texts in the debtor's language and tone, with the campaign's overrides."""
    overrides = (debtor.campaign.settings or {}).get("texts")
    return load_texts("site").for_lang(view.lang, view.tone, overrides)


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
    if paid > 0:
        amount = format_minor(paid, currency, locale)
        notices.append(("ok", texts["status_paid"].format(amount=amount)))
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


def _live_page(template: str, view: DebtorView, texts: dict[str, str], **values):
    return render_template(
        template,
        v=view,
        t=texts,
        lang=view.lang,
        path=f"/s/{view.site_url.rsplit('/', 1)[-1]}",
        **values,
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
            return _gate(session, debtor)
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


@dataclass(frozen=True)
class Page:
    """A debtor's page as this process keeps it between views, valid for one stamp."""

    stamp: tuple
    who: Tracked
    head: str  # the page up to the live notices
    tail: str | None  # the rest; None when the page has no place for notices
    texts: dict[str, str]
    locale: str  # Babel's spelling, de_DE
    currency: str
    amount_due_minor: int
    loaded: float


PAGE_SECONDS = 300.0
"""A safety net only: a page is rebuilt as soon as its stamp changes."""
PAGE_CACHE_SIZE = 2_000


class PageCache:
    """Token -> Page, bounded; a page whose stamp differs from the live one is not returned."""

    def __init__(self) -> None:
        self._pages: dict[str, Page] = {}
        self._lock = threading.Lock()

    def peek(self, token: str) -> Page | None:
        """The kept page whatever its stamp or age (while the database can't say)."""
        return self._pages.get(token)

    def get(self, token: str, stamp: tuple) -> Page | None:
        """The kept page if it was built for this stamp and is not too old."""
        page = self._pages.get(token)
        if page is None or page.stamp != stamp or time.monotonic() - page.loaded > PAGE_SECONDS:
            return None
        return page

    def put(self, token: str, page: Page) -> None:
        """Keep a page (all are dropped when the cache is full: simple and bounded)."""
        with self._lock:
            if len(self._pages) >= PAGE_CACHE_SIZE:
                self._pages.clear()
            self._pages[token] = page


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


def _gate(session, debtor, *, message: str | None = None, code: int = 200, locked: bool = False):
    """The identity check: a neutral greeting and one question, nothing personal."""
    _, lang, _ = _resolve(debtor)
    texts = load_texts("site").for_lang(lang)
    found = identity.lock(session, debtor)
    if found is not None:
        message, code, locked = _lock_message(texts, found), 429, True
    return (
        render_template(
            "web/gate.html",
            t=texts,
            lang=lang,
            token=debtor.token,
            method=identity.method(debtor.campaign, debtor),
            message=message,
            locked=locked,
            sealed=found is not None and found.sealed,
        ),
        code,
    )


def _lock_message(texts: dict[str, str], found: identity.Lock) -> str:
    """How long the link is paused, in minutes or hours, or that it needs a new link."""
    if found.sealed or found.until is None:
        return texts["gate_sealed"]
    seconds = (found.until - utcnow()).total_seconds()
    if seconds > 90 * 60:
        return texts["gate_locked_hours"].format(hours=math.ceil(seconds / 3600))
    return texts["gate_locked"].format(minutes=max(1, int(seconds // 60) + 1))


def _resolve(debtor):
    from kindly.site.personalise import resolve_locale

    return resolve_locale(debtor, debtor.campaign)


@bp.post("/s/<token>/check")
def check(token: str):
    """One answer to the identity check; wrong answers also count against the address."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token, gate=False)
        kind = identity.method(debtor.campaign, debtor)
        if kind == "none" or verified(debtor):
            return redirect(f"/s/{token}", code=303)
        _, lang, _ = _resolve(debtor)
        # counted in this transaction: a second writer would wait on it (SQLite)
        ticket = limits.take(limits.CHECK_PER_ADDRESS, limits.client_address(), session)
        if not ticket.allowed:
            wait = ticket.retry_after()
            busy = limits.busy_text(lang, wait)
            page, code = _gate(session, debtor, message=busy, code=429, locked=True)
            return page, code, {"Retry-After": str(wait)}
        attempt = identity.check(
            session,
            debtor,
            kind,
            request.form.get("answer", ""),
            agent=judge(session, debtor, hit()),
        )
        if attempt.passed or attempt.refused:  # only wrong answers count against the address
            ctx.rate_limiter.give_back(ticket, session=session)
        if attempt.passed:
            mark_verified(debtor)
            return redirect(f"/s/{token}", code=303)
        if attempt.refused or attempt.locked_until is not None or attempt.sealed:
            return _gate(session, debtor)
        wrong = load_texts("site").for_lang(lang)["gate_wrong"].format(tries=attempt.tries_left)
        return _gate(session, debtor, message=wrong, code=400)


@bp.get("/s/<token>/<name>")
def file(token: str, name: str):
    """The debtor's letter, video, poster or captions, streamed or via a short-lived URL."""
    kind = FILES.get(name)
    if kind is None:
        abort(404)
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        artifact = artifacts.find(session, debtor, kind)
        if artifact is None:
            abort(404)
        if kind == "letter":
            count(session, debtor, "cta", cta="letter")
        key, mimetype = artifact.key, artifact.content_type
    path = ctx.storage.local_path(key)
    if path is not None:
        return send_file(path, mimetype=mimetype, conditional=True, max_age=0)
    url = ctx.storage.presigned_url(key, expires=600)
    if url is None:
        abort(404)
    return redirect(url, code=302)


@bp.post("/s/<token>/e")
@csrf_exempt
def beacon(token: str):
    """The page's script reports a view or video progress: proof that a person is there.

    Each page load sends its own random id, so a repeated beacon is one event.
    """
    try:
        payload = json.loads(request.get_data(cache=False, as_text=True)[:BEACON_MAX] or "{}")
    except ValueError:
        abort(400)
    report = read_beacon(payload)
    if report is None:
        abort(400)
    debtor = tracked(token)
    kind, data, key = report.event(debtor.id)
    record_hit(None, debtor, kind, channel="web", agent=judge(None, debtor, hit()), data=data,
               key=key)  # fmt: skip
    return Response(status=204)


BEACON_MAX = 2000
"""Characters of a beacon's body that are read."""
BEACON_PAGE = re.compile(r"[A-Za-z0-9-]{8,64}")


@dataclass(frozen=True)
class Beacon:
    """What a page's beacon reports: the event type, the page load's id, a video's progress."""

    kind: str
    page: str
    pct: int | None

    def event(self, debtor_id: int) -> tuple[str, dict[str, str], str]:
        """The event's type, data and idempotency key (one per page load and report)."""
        data = {"via": "beacon"} | ({"pct": str(self.pct)} if self.pct else {})
        return self.kind, data, f"{self.kind}:{debtor_id}:{self.page}:{self.pct or ''}"


def read_beacon(payload: object) -> Beacon | None:
    """The beacon a parsed JSON body reports, or None for anything malformed."""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return None
    kind = BEACON_TYPES.get(payload["type"])
    page = str(payload.get("id", ""))[:64]
    if not kind or not BEACON_PAGE.fullmatch(page):
        return None
    pct = payload.get("pct")
    if kind != "video_progress":
        return Beacon(kind, page, None)
    if isinstance(pct, bool) or pct not in (25, 50, 75):
        return None
    return Beacon(kind, page, pct)


@bp.route("/s/<token>/promise", methods=["GET", "POST"])
@limits.limited("promise")
def promise(token: str):
    """Promise to pay on a date within the campaign's limit."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        view = debtor_view(session, debtor)
        texts = texts_for(view, debtor)
        today = dt.date.today()
        latest = today + dt.timedelta(days=identity.promise_days(debtor.campaign))
        max_text = format_date(latest, format="long", locale=view.locale.replace("-", "_"))
        error = None
        if request.method == "POST":
            try:
                chosen = dt.date.fromisoformat(request.form.get("date", "").strip())
            except ValueError:
                chosen = None
            if chosen is not None and today <= chosen <= latest and view.amount_minor > 0:
                confirm_person(session, debtor)
                events.record(
                    session,
                    debtor,
                    "promise",
                    channel="web",
                    agent="human",
                    data={"date": chosen.isoformat(), "amount_minor": str(view.amount_minor)},
                )
                return redirect(f"/s/{token}", code=303)
            error = texts["promise_invalid"].format(max_date=max_text)
        else:
            count(session, debtor, "cta", cta="promise")
        return _live_page(
            "web/promise.html",
            view,
            texts,
            error=error,
            min=today.isoformat(),
            max=latest.isoformat(),
            max_text=max_text,
        ), (400 if error else 200)


@bp.route("/s/<token>/contact", methods=["GET", "POST"])
@limits.limited("contact")
def contact(token: str):
    """Ask a question, dispute the claim or ask for a call back."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        view = debtor_view(session, debtor)
        texts = texts_for(view, debtor)
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
                and (topic != "callback" or phone or debtor.phone)
            )
            if valid:
                confirm_person(session, debtor)
                events.record(
                    session,
                    debtor,
                    "contact",
                    channel="web",
                    agent="human",
                    data={"topic": topic, "message": message, "phone": phone},
                )
                return redirect(f"/s/{token}?done=contact", code=303)
            error = texts["contact_invalid"]
        else:
            count(session, debtor, "cta", cta="contact")
        return _live_page(
            "web/contact.html",
            view,
            texts,
            error=error,
            topics=TOPICS,
            chosen=request.args.get("topic", "question"),
        ), (400 if error else 200)


@bp.route("/s/<token>/preferences", methods=["GET", "POST"])
@limits.limited("preferences")
def preferences(token: str):
    """The debtor's preferred channel, and opting out of digital messages."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        view = debtor_view(session, debtor)
        texts = texts_for(view, debtor)
        if request.method == "POST":
            channel = request.form.get("channel", "")
            if channel not in ("email", "sms", "letter"):
                abort(400)
            confirm_person(session, debtor)
            events.record(
                session,
                debtor,
                "preference",
                channel="web",
                agent="human",
                data={"preferred_channel": channel},
            )
            if request.form.get("opt_out") == "1":
                # the suppression list `kindly send` honours, plus an `opted_out` event each
                for digital in ("email", "sms"):
                    optout.opt_out(session, debtor, digital, source="microsite")
            return redirect(f"/s/{token}?done=prefs", code=303)
        count(session, debtor, "cta", cta="preferences")
        return _live_page("web/preferences.html", view, texts, current=debtor.channel)


@bp.get("/s/<token>/faq")
def faq(token: str):
    """Short answers to what debtors ask most."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        view = debtor_view(session, debtor)
        count(session, debtor, "cta", cta="faq")
        return _live_page("web/faq.html", view, texts_for(view, debtor))


@bp.post("/s/<token>/renew")
@limits.limited("renew")
def renew(token: str):
    """An expired link asks for a new one; nothing about the claim is shown."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token, gate=False, allow_expired=True)
        events.record(
            session,
            debtor,
            "contact",
            channel="web",
            agent=hit().agent,
            data={"topic": "new_link"},
            key=f"renew:{debtor.id}:{dt.date.today()}",
        )
        _, lang, _ = _resolve(debtor)
    return expired_page(lang, token, sent=True)


@bp.app_errorhandler(limits.Limited)
def too_many(exc: limits.Limited):
    """A form past its limit: a polite page in the debtor's language."""
    with context().db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == exc.token))
        lang = _resolve(debtor)[1] if debtor else "en"
    return limits.page(lang, exc.retry_after)


def expired_page(lang: str, token: str, *, sent: bool = False):
    """The polite 'link expired' page, in the debtor's language."""
    texts = load_texts("site").for_lang(lang)
    return render_template("web/expired.html", t=texts, lang=lang, token=token, sent=sent), 410


@bp.app_errorhandler(LinkExpired)
def link_expired(exc: LinkExpired):
    """Expired links get a page of their own, not the generic error."""
    with context().db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == exc.token))
        lang = _resolve(debtor)[1] if debtor else "en"
    return expired_page(lang, exc.token)
