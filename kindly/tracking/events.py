"""Append-only events, each recorded at most once per idempotency key."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.tracking.models import Event

TYPES = frozenset(
    {
        "sent", "delivered", "bounced_hard", "bounced_soft", "opened", "clicked", "viewed",
        "verified", "video_play", "video_progress", "video_complete", "cta", "plan_requested",
        "plan_agreed", "promise", "contact", "payment_started", "paid", "payment_failed",
        "opted_out", "preference", "outbox", "plan_viewed", "opted_in", "hold",
        "hold_released", "plan_changed",
        "written_off", "survey", "cost",
    }
)  # fmt: skip
CHANNELS = frozenset({"email", "sms", "letter", "web", "video"})
AGENTS = ("human", "unverified", "prefetch", "automated")
"""human: proven by the page's script or a form a person sent; unverified: looked like a
browser but proved nothing yet; prefetch: fetched ahead by a client or a privacy proxy;
automated: a scanner, crawler or bot."""

# Mail-privacy proxies, link scanners and crawlers that open links by themselves.
_AUTOMATED_UA = re.compile(
    r"bot|crawl|spider|slurp|preview|scanner|scan|proofpoint|mimecast|barracuda|"
    r"safelinks|googleimageproxy|yahoomailproxy|curl/|wget/|python-requests|go-http-client|"
    r"headlesschrome|phantomjs|facebookexternalhit|whatsapp|telegrambot|skypeuripreview",
    re.IGNORECASE,
)


def classify(headers: Mapping[str, str]) -> str:
    """What the request's headers alone say: 'human', 'prefetch' or 'automated'.

    'human' here only means "looks like a browser"; callers that need proof (page views)
    store such hits as 'unverified' until the page's script or a form confirms them.
    """
    purpose = (headers.get("Sec-Purpose") or headers.get("Purpose") or "").lower()
    if "prefetch" in purpose or headers.get("X-Moz", "").lower() == "prefetch":
        return "prefetch"
    agent = headers.get("User-Agent", "").strip()
    if agent == "Mozilla/5.0":
        return "prefetch"  # Apple Mail Privacy Protection's proxy fetches with exactly this
    if not agent or _AUTOMATED_UA.search(agent):
        return "automated"
    return "human"


def record(
    session: Session,
    debtor: Debtor,
    type_: str,
    *,
    channel: str | None = None,
    agent: str = "human",
    data: dict[str, Any] | None = None,
    key: str | None = None,
) -> bool:
    """Append one event; return False when an event with this key was already recorded."""
    if type_ not in TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}")
    key = key or f"{type_}:{uuid.uuid4().hex}"
    if session.scalar(select(Event.id).where(Event.idempotency_key == key)) is not None:
        return False
    event = Event(
        idempotency_key=key,
        campaign_id=debtor.campaign_id,
        debtor_id=debtor.id,
        type=type_,
        channel=channel if channel in CHANNELS else None,
        variant=debtor.variant,
        agent=agent,
        data=data or {},
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        # A concurrent request recorded the same key first: that is the one event.
        return False
    return True
