"""Rate limits on the debtor's forms and identity check, per link and per client address.

Every form POST counts against its link (per form) and against the client's address (all
forms and links together); the identity check counts wrong answers per address, across
links, on top of each link's own lock (kindly.site.identity). Past a limit the debtor gets
a polite page in their language with 429 and Retry-After; nothing behind it runs (no event,
no webhook, no payment session).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import render_template, request
from werkzeug.exceptions import HTTPException

from kindly.site.ratelimit import Rule, Ticket
from renderer.texts import load_texts
from web.context import context
from web.debtor.hits import TOKEN

FORM_PER_LINK = Rule("form-link", 10, 3600)
"""POSTs of one form for one link per hour: a person needs two or three."""
FORM_PER_ADDRESS = Rule("form-address", 100, 3600)
"""Form POSTs from one address per hour, every link together (households and carriers share
addresses, so this is looser than the per-link limit)."""
RENEW_PER_LINK = Rule("renew-link", 3, 3600)
"""Requests for a new link per hour: each tells the creditor."""
CHECK_PER_ADDRESS = Rule("check-address", 20, 3600)
"""Wrong identity-check answers from one address per hour, every link together."""


class Limited(HTTPException):
    """A limit was reached: the debtor is asked to wait."""

    code = 429
    description = "too many requests"

    def __init__(self, token: str, retry_after: int):
        super().__init__()
        self.token = token
        self.retry_after = retry_after


def client_address() -> str:
    """The client's address as the app sees it (behind a proxy, after its trusted hops)."""
    return request.remote_addr or "-"


def take(rule: Rule, key: str, session=None) -> Ticket:
    """Count one hit against the rule (see kindly.site.ratelimit)."""
    return context().rate_limiter.take(rule, key, session=session)


def check_form(form: str, token: str) -> None:
    """Count one POST of the form; Limited once the address or the link is past its limit."""
    per_link = RENEW_PER_LINK if form == "renew" else FORM_PER_LINK
    for rule, key in ((FORM_PER_ADDRESS, client_address()), (per_link, f"{form}:{token}")):
        ticket = take(rule, key)
        if not ticket.allowed:
            raise Limited(token, ticket.retry_after())


def limited(form: str) -> Callable:
    """Apply the form limits to a debtor view's POSTs (the view takes the token)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(token: str, **kwargs: Any):
            if request.method == "POST" and TOKEN.match(token):
                check_form(form, token)
            return view(token, **kwargs)

        return wrapper

    return decorate


def minutes(retry_after: int) -> int:
    """Whole minutes to wait, rounded up."""
    return max(1, math.ceil(retry_after / 60))


def busy_text(lang: str, retry_after: int) -> str:
    """'Please try again in N minutes' in the debtor's language."""
    texts = load_texts("site").for_lang(lang)
    return texts["busy_text"].format(minutes=minutes(retry_after))


def page(lang: str, retry_after: int):
    """The 429 page: a title and one sentence in the debtor's language, and Retry-After."""
    texts = load_texts("site").for_lang(lang)
    html = render_template("web/message.html", t=texts, lang=lang, title=texts["busy_title"],
                           message=busy_text(lang, retry_after))  # fmt: skip
    return html, 429, {"Retry-After": str(retry_after)}
