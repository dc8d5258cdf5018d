"""Expired links and forms past their limit: polite pages in the debtor's language, and
asking for a new link."""

from __future__ import annotations

import datetime as dt

from flask import render_template
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.tracking import events
from renderer.texts import load_texts
from web.context import context
from web.debtor import limits
from web.debtor.common import bp, lang_of
from web.debtor.hits import LinkExpired, find_debtor, hit


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
        lang = lang_of(debtor)
    return expired_page(lang, token, sent=True)


@bp.app_errorhandler(limits.Limited)
def too_many(exc: limits.Limited):
    """A form past its limit: a polite page in the debtor's language."""
    return limits.page(_lang(exc.token), exc.retry_after)


def expired_page(lang: str, token: str, *, sent: bool = False):
    """The polite 'link expired' page, in the debtor's language."""
    texts = load_texts("site").for_lang(lang)
    return render_template("web/expired.html", t=texts, lang=lang, token=token, sent=sent), 410


@bp.app_errorhandler(LinkExpired)
def link_expired(exc: LinkExpired):
    """Expired links get a page of their own, not the generic error."""
    return expired_page(_lang(exc.token), exc.token)


def _lang(token: str) -> str:
    """The language of the debtor the token names, English for an unknown token."""
    with context().db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        return lang_of(debtor) if debtor else "en"
