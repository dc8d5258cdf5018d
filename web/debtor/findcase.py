"""A way back from a mistyped link: a debtor gives the reference and postcode, and their own
link is sent to the email address or phone number the creditor has for them.

The answer is the same page, word for word, whether the details matched a case or not, and
costs the same before it is sent: one query, one constant-time comparison per candidate (or
one against a stand-in), the same rate-limit counts. Whatever only a match does (sending the
link, recording the request) runs after the response has gone out, so its time cannot be
measured from outside. The link itself and the debtor's data never appear in the answer.
"""

from __future__ import annotations

import logging
import re

from flask import Response, render_template, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from kindly.campaigns.models import Debtor
from kindly.context import Context
from kindly.infra.constant_time import same
from kindly.messaging.ownlink import send_own_link
from kindly.site.ratelimit import Rule
from renderer.texts import LANGUAGES, load_texts
from web.context import context
from web.debtor import limits
from web.debtor.common import bp

log = logging.getLogger(__name__)

FIND_PER_ADDRESS = Rule("find-address", 5, 3600)
"""Find-my-case requests from one client address per hour: a person needs one or two."""
FIND_PER_REFERENCE = Rule("find-reference", 5, 86400)
"""Requests naming one reference per day, from any address: guessing a postcode for a known
reference from many addresses stays hopeless, and a debtor gets at most five links a day."""
LINK_PATH = re.compile(r"^/[sc]/[^/]+/?$")
"""The paths of a debtor's link (page, tracked click): where a mistyped one lands."""
FIELD_MAX = 100


def _lang() -> str:
    """The visitor's language: nothing else is known about someone without a valid link. Read
    also while answering an error, so a body too large or unreadable is simply not read."""
    chosen = request.args.get("lang", "")
    if not chosen and request.method == "POST":
        try:
            chosen = request.form.get("lang", "")
        except HTTPException:  # e.g. 413: the 404 page is still what this visitor gets
            chosen = ""
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def _normalise(text: str) -> str:
    """A reference or postcode as compared: no spaces or hyphens, upper case."""
    return re.sub(r"[\s-]", "", text).upper()


def _page(lang: str, *, lost: bool = False, sent: bool = False, invalid: bool = False):
    texts = load_texts("site").for_lang(lang)
    return render_template("web/find.html", t=texts, lang=lang, lost=lost, sent=sent,
                           invalid=invalid)  # fmt: skip


def lost_link_page() -> tuple[str, int]:
    """The 404 of a debtor's link: say what may have happened, and offer the way back."""
    return _page(_lang(), lost=True), 404


def is_link_path(path: str) -> bool:
    """Whether a not-found path looks like a debtor's link (mistyped or truncated)."""
    return bool(LINK_PATH.match(path))


@bp.get("/find")
def find_form():
    """The find-my-case form on its own page."""
    return _page(_lang())


@bp.post("/find")
def find_case():
    """Look the case up by reference and postcode; the same answer whether it exists or not."""
    lang = _lang()
    reference = request.form.get("reference", "").strip()[:FIELD_MAX]
    postcode = request.form.get("postal_code", "").strip()[:FIELD_MAX]
    if not reference or not postcode:
        return _page(lang, invalid=True), 400
    for rule, key in ((FIND_PER_ADDRESS, limits.client_address()),
                      (FIND_PER_REFERENCE, _normalise(reference))):  # fmt: skip
        ticket = limits.take(rule, key)
        if not ticket.allowed:
            return limits.page(lang, ticket.retry_after())
    ctx = context()
    wanted = _normalise(postcode)
    with ctx.db.session() as session:
        candidates = session.execute(
            select(Debtor.id, Debtor.postal_code, Debtor.attributes).where(
                Debtor.reference.in_({reference, reference.upper()})
            )
        ).all()
    matches = []
    # one constant-time comparison per candidate, and one against a stand-in without any,
    # so a miss costs what a hit costs
    for debtor_id, postal_code, attributes in candidates or [(None, "0" * len(wanted), {})]:
        known = _normalise(postal_code or "")
        erased = bool((attributes or {}).get("erased_at"))
        if same(wanted, known) and known and debtor_id is not None and not erased:
            matches.append(debtor_id)
    response = Response(_page(lang, sent=True), mimetype="text/html")
    if matches:  # after the answer has gone out (outside the request: the context is passed)
        response.call_on_close(lambda: _send_links(ctx, matches))
    return response


def _send_links(ctx: Context, debtor_ids: list[int]) -> None:
    """After the response: send each matching debtor their link, and record the request."""
    for debtor_id in debtor_ids:
        try:
            with ctx.db.session() as session:
                debtor = session.get(Debtor, debtor_id)
                if debtor is not None:
                    send_own_link(session, debtor, ctx.settings)
                    session.commit()
        except Exception:  # the debtor has their answer already; a person sees the gap
            log.exception("sending a requested link failed for debtor %s", debtor_id)
