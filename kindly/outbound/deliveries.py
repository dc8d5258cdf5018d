"""Outgoing webhooks: signed JSON posts of paid, plan_agreed, promise, contact, opted_out and
holds placed or released, each with the case's state as Kindly sees it when it is posted.

Each subscription keeps a watermark (the last event id looked at). `collect(session)` turns
the events after it into `WebhookDelivery` rows, one per (subscription, event), and moves
the watermark; `attempt(session, delivery_id)` posts one of them. The signature header is
`Kindly-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from typing import Any

import requests
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import case_of
from kindly.cases.state import Case
from kindly.creditors.profile import creditor_name
from kindly.infra import metrics
from kindly.infra.constant_time import same
from kindly.infra.db import utcnow
from kindly.outbound import egress
from kindly.outbound.models import WebhookDelivery, WebhookSubscription
from kindly.tracking.models import Event

EVENTS = ("paid", "plan_agreed", "promise", "contact", "opted_out", "hold", "hold_released")
"""The event types a subscription can receive."""
HEADER = "Kindly-Signature"
TIMEOUT = 10
"""Seconds to wait for the receiver."""
BACKOFF = (10, 60, 300, 1800, 7200, 21600)
"""Seconds before the next attempt after each failure; after the last one it is `failed`."""
MAX_ATTEMPTS = len(BACKOFF) + 1
BATCH = 1000
"""Events looked at per subscription and run."""


class SubscriptionError(ValueError):
    """A subscription that cannot be saved, with the reason."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Kindly-Signature` header value for a body."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """Whether the header signs the body with the secret, at most `tolerance` seconds ago."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return same(parts.get("v1", ""), expected)


def subscribe(
    session: Session,
    url: str,
    events: Iterable[str] | None = None,
    campaign: Campaign | None = None,
    *,
    allow_private: bool = False,
) -> tuple[WebhookSubscription, str]:
    """Save a subscription; it receives events stored from now on. Returns it and its secret."""
    if isinstance(url, str) and len(url) > 500:
        raise SubscriptionError("url: at most 500 characters")
    try:
        egress.check_url(url, allow_private=allow_private)
    except egress.Refused as exc:
        raise SubscriptionError(str(exc)) from None
    chosen = list(EVENTS) if events is None else list(dict.fromkeys(events))
    if not chosen or any(e not in EVENTS for e in chosen):
        raise SubscriptionError(f"events: a non-empty list of {', '.join(EVENTS)}")
    secret = "whsec_" + secrets.token_urlsafe(32)
    latest = session.scalar(select(func.max(Event.id))) or 0
    sub = WebhookSubscription(
        campaign_id=campaign.id if campaign else None, url=url, secret=secret, events=chosen,
        last_event_id=latest,
    )  # fmt: skip
    session.add(sub)
    session.flush()
    return sub, secret


def payload(
    event: Event, debtor: Debtor, campaign: Campaign, case: Case | None = None
) -> dict[str, Any]:
    """What the receiver gets: the event, the case's reference, its creditor and campaign,
    and the case's state (kindly.cases) as of the post."""
    occurred = event.occurred_at
    occurred = occurred if occurred.tzinfo else occurred.replace(tzinfo=dt.UTC)
    state = None
    if case is not None:
        state = {
            "state": case.state, "hold": case.hold, "balance_minor": case.balance_minor,
            "currency": debtor.currency, "as_of": utcnow().isoformat(),
        }  # fmt: skip
    return {
        "id": f"evt_{event.id}",
        "type": event.type,
        "campaign": campaign.slug,
        "reference": debtor.reference,
        "creditor": creditor_name(debtor, campaign),
        "channel": event.channel,
        "agent": event.agent,
        "occurred_at": occurred.isoformat(),
        "data": json.loads(json.dumps(event.data or {}, default=str)),
        "case": state,
    }


def collect(session: Session) -> list[int]:
    """Record a delivery for each new event of each active subscription; return the ids of
    every delivery now due (new ones and retries whose time has come)."""
    for sub in session.scalars(select(WebhookSubscription).where(WebhookSubscription.active)):
        query = (
            select(Event.id, Event.type)
            .where(Event.id > sub.last_event_id)
            .order_by(Event.id)
            .limit(BATCH)
        )
        if sub.campaign_id is not None:
            query = query.where(Event.campaign_id == sub.campaign_id)
        rows = session.execute(query).all()
        for event_id, type_ in rows:
            if type_ in sub.events:
                session.add(WebhookDelivery(subscription_id=sub.id, event_id=event_id))
        if rows:
            sub.last_event_id = rows[-1][0]
    session.flush()
    now = utcnow()
    due = session.scalars(
        select(WebhookDelivery.id)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookSubscription.active,
            or_(
                WebhookDelivery.status == "pending",
                (WebhookDelivery.status == "retrying") & (WebhookDelivery.next_attempt_at <= now),
            ),
        )
        .order_by(WebhookDelivery.id)
    )
    return list(due)


def attempt(
    session: Session, delivery_id: int, *, allow_private: bool = False
) -> WebhookDelivery | None:
    """Post one delivery once; record the outcome (None when it no longer exists)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status in ("delivered", "failed"):
        return delivery
    sub = session.get(WebhookSubscription, delivery.subscription_id)
    row = session.execute(
        select(Event, Debtor, Campaign)
        .join(Debtor, Debtor.id == Event.debtor_id)
        .join(Campaign, Campaign.id == Event.campaign_id)
        .where(Event.id == delivery.event_id)
    ).first()
    if sub is None or row is None:
        delivery.status, delivery.error = "failed", "the event or subscription is gone"
        metrics.count_webhook("failed", retry=delivery.attempts > 0)
        return delivery
    event, debtor, campaign = row
    data = payload(event, debtor, campaign, case_of(session, debtor))
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Kindly-Webhooks/1",
        HEADER: sign(sub.secret, body),
        "Kindly-Event-Id": f"evt_{delivery.event_id}",
    }
    delivery.attempts += 1
    try:
        # checked again here: the name may resolve elsewhere than when it was saved
        response = egress.post(sub.url, body, headers, timeout=TIMEOUT, allow_private=allow_private)
        delivery.response_status = response.status_code
        ok = 200 <= response.status_code < 300
        error = None if ok else f"HTTP {response.status_code}"
    except egress.Refused as exc:
        ok, error = False, f"refused: {exc}"[:1000]
    except requests.RequestException as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"[:1000]
    now = utcnow()
    if ok:
        delivery.status, delivery.error, delivery.delivered_at = "delivered", None, now
        delivery.next_attempt_at = None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.error, delivery.next_attempt_at = "failed", error, None
    else:
        delivery.status, delivery.error = "retrying", error
        delivery.next_attempt_at = now + dt.timedelta(seconds=BACKOFF[delivery.attempts - 1])
    metrics.count_webhook(delivery.status, retry=delivery.attempts > 1)
    return delivery


def as_json(sub: WebhookSubscription, campaign_slug: str | None) -> dict[str, Any]:
    """A subscription as the API lists it (never the secret, only its first characters)."""
    created = sub.created_at if sub.created_at.tzinfo else sub.created_at.replace(tzinfo=dt.UTC)
    return {
        "id": sub.id, "url": sub.url, "events": list(sub.events), "campaign": campaign_slug,
        "active": sub.active, "secret_prefix": sub.secret[:10], "created_at": created.isoformat(),
    }  # fmt: skip
