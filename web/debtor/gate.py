"""The identity check in front of a debtor's page: a neutral question, one answer at a time,
with the link's own lock (kindly.site.identity) and a limit per client address."""

from __future__ import annotations

import math

from flask import redirect, render_template, request

from kindly.infra.db import utcnow
from kindly.site import identity
from renderer.texts import load_texts
from web.context import context
from web.debtor import limits
from web.debtor.common import bp, lang_of
from web.debtor.hits import find_debtor, hit, judge, mark_verified, verified


def gate_page(
    session, debtor, *, message: str | None = None, code: int = 200, locked: bool = False
):
    """The identity check: a neutral greeting and one question, nothing personal."""
    lang = lang_of(debtor)
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


@bp.post("/s/<token>/check")
def check(token: str):
    """One answer to the identity check; wrong answers also count against the address."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token, gate=False)
        kind = identity.method(debtor.campaign, debtor)
        if kind == "none" or verified(debtor):
            return redirect(f"/s/{token}", code=303)
        lang = lang_of(debtor)
        # counted in this transaction: a second writer would wait on it (SQLite)
        ticket = limits.take(limits.CHECK_PER_ADDRESS, limits.client_address(), session)
        if not ticket.allowed:
            wait = ticket.retry_after()
            busy = limits.busy_text(lang, wait)
            page, code = gate_page(session, debtor, message=busy, code=429, locked=True)
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
            return gate_page(session, debtor)
        wrong = load_texts("site").for_lang(lang)["gate_wrong"].format(tries=attempt.tries_left)
        return gate_page(session, debtor, message=wrong, code=400)
