"""What the settlement-offer and survey tests share: rules with offers, taking an offer
through the sandbox checkout, answering the survey."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.context import Context
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules


def csrf(html: str) -> str:
    """The CSRF token of a page's form."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def offer_rules(until: dt.date, **offer: Any) -> dict[str, Any]:
    """Rules with an offer for the `german` segment (locale de-DE) only."""
    terms = {"discount_percent": 20, "valid_until": until.isoformat(), "reason": "Winter deal"}
    terms.update(offer)
    return {"segments": [{"name": "german", "when": {"locale": "de-DE"}, "offer": terms}]}


def apply_rules(ctx: Context, document: dict[str, Any], today: dt.date, slug: str = "winter"):
    """Save the rules (validated as of `today`) and decide every debtor of the campaign."""
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
        rules = save_rules(session, campaign, parse_rules(document, today=today))
        decide(session, campaign, rules, today)
        return rules


def token_of(ctx: Context, reference: str) -> str:
    """The page token of the debtor with this reference."""
    with ctx.db.session() as session:
        return session.scalar(select(Debtor.token).where(Debtor.reference == reference))


def take_offer(client, token: str, *, outcome: str = "succeeded", amount: str | None = None):
    """Open the offer, confirm it (optionally with another amount), and finish the sandbox
    checkout with `outcome`; returns the last response."""
    page = client.get(f"/s/{token}/offer").get_data(as_text=True)
    shown = re.search(r'name="amount" value="(\d+)"', page).group(1)
    answer = client.post(
        f"/s/{token}/offer", data={"csrf_token": csrf(page), "amount": amount or shown}
    )
    if answer.status_code != 303:
        return answer
    path = urlsplit(answer.headers["Location"]).path
    checkout = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf(checkout), "outcome": outcome})


def pay_part(client, token: str, amount: str, *, outcome: str = "succeeded"):
    """Pay a part of the balance through the ordinary pay page and the sandbox."""
    page = client.get(f"/s/{token}/pay").get_data(as_text=True)
    answer = client.post(
        f"/s/{token}/pay", data={"csrf_token": csrf(page), "choice": "part", "amount": amount}
    )
    path = urlsplit(answer.headers["Location"]).path
    checkout = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf(checkout), "outcome": outcome})
