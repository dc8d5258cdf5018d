"""Shared helpers for views that act for one debtor named by the token in the URL: finding
the debtor, the token cache, the identity-check cookie, and recording hits with their
verdict (kindly.tracking.verdict)."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from dataclasses import dataclass

from flask import abort, current_app, redirect, request, session
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload
from werkzeug.exceptions import HTTPException

from kindly.campaigns.models import Debtor
from kindly.infra import logs
from kindly.infra.db import utcnow
from kindly.rules.models import Decision
from kindly.site import identity
from kindly.tracking import events
from kindly.tracking.models import Event
from kindly.tracking.verdict import BURST_WINDOW, refine
from web.context import context

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
VERIFIED_KEY = "verified"


class LinkExpired(HTTPException):
    """The link is past its campaign's lifetime."""

    code = 410
    description = "expired"

    def __init__(self, token: str):
        super().__init__()
        self.token = token


def find_debtor(
    session: Session, token: str, *, gate: bool = True, allow_expired: bool = False
) -> Debtor:
    """The debtor the token names: 404 tells nothing, 410 for an expired link, and with
    `gate` a redirect to the identity check until this browser has passed it."""
    if not TOKEN.match(token):
        abort(404)
    debtor = session.scalar(select(Debtor).where(Debtor.token == token))
    if debtor is None:
        abort(404)
    logs.note_campaign(debtor.campaign.slug)
    if not allow_expired and identity.expired(debtor.campaign, debtor):
        raise LinkExpired(token)
    if gate and not verified(debtor):
        abort(redirect(f"/s/{token}", code=303))
    return debtor


CACHE_SECONDS = 30.0
"""How long a tracking route trusts what it read about a token."""
CACHE_SIZE = 100_000
STALE_SECONDS = 3600.0
"""How long an entry past CACHE_SECONDS still answers while the database cannot be reached: a
hit is then journaled for the debtor it was last known as, rather than refused with a 503 (an
outage of PostgreSQL must not cost the clicks made during it)."""


@dataclass(frozen=True)
class Tracked:
    """What tracking routes need to know about a token, cached so a hit costs no query."""

    id: int
    campaign_id: int
    variant: str
    token: str
    expires_at: dt.datetime
    check: str  # the identity check's method, "none" without one
    sent_at: dt.datetime | None
    loaded: float
    campaign: str | None = None
    """The campaign's slug, for the request's log line."""

    @classmethod
    def of(cls, debtor: Debtor, sent_at: dt.datetime | None = None,
           decision: tuple[dict | None] | None = None) -> Tracked:  # fmt: skip
        """What a tracking route needs of this debtor, as of now (`decision`: the newest
        decision's treatment as read with the debtor, in a tuple; None: read it now)."""
        if decision is None:
            check = identity.method(debtor.campaign, debtor)
        else:
            check = identity.method(debtor.campaign, debtor, treatment=decision[0], decided=True)
        return cls(
            id=debtor.id,
            campaign_id=debtor.campaign_id,
            variant=debtor.variant,
            token=debtor.token,
            expires_at=identity.expires_at(debtor.campaign, debtor),
            check=check,
            sent_at=sent_at,
            loaded=time.monotonic(),
            campaign=debtor.campaign.slug,
        )


class TokenCache:
    """Token -> Tracked for CACHE_SECONDS; unknown tokens are never cached, so a scan of
    random tokens costs queries, not memory."""

    def __init__(self) -> None:
        self._entries: dict[str, Tracked] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Tracked | None:
        """The cached entry, if it is fresh."""
        entry = self._entries.get(token)
        if entry is not None and time.monotonic() - entry.loaded <= CACHE_SECONDS:
            return entry
        return None

    def stale(self, token: str) -> Tracked | None:
        """The entry even past CACHE_SECONDS (up to STALE_SECONDS): for while the database is
        down, never instead of reading it."""
        entry = self._entries.get(token)
        if entry is not None and time.monotonic() - entry.loaded <= STALE_SECONDS:
            return entry
        return None

    def put(self, entry: Tracked) -> None:
        """Remember an entry (the whole cache is dropped when it is full: simple and bounded)."""
        with self._lock:
            if len(self._entries) >= CACHE_SIZE:
                self._entries.clear()
            self._entries[entry.token] = entry


def load_tracked(db, token: str) -> Tracked | None:
    """What tracking routes need of the token's debtor, in one query (the debtor, its campaign,
    its last send and its newest decision's treatment); None for an unknown token. Most hits
    of a real send are a process's first for their debtor: four round trips cost them 5 ms."""
    sent = (
        select(func.max(Event.occurred_at))
        .where(Event.debtor_id == Debtor.id, Event.type == "sent")
        .scalar_subquery()
    )
    treatment = (
        select(Decision.treatment)
        .where(Decision.debtor_id == Debtor.id)
        .order_by(Decision.rule_version.desc())
        .limit(1)
        .scalar_subquery()
    )
    with db.session() as session:
        row = session.execute(
            select(Debtor, sent, treatment)
            .options(joinedload(Debtor.campaign))
            .where(Debtor.token == token)
        ).first()
        if row is None:
            return None
        debtor, sent_at, decided = row
        if sent_at is not None and sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=dt.UTC)
        return Tracked.of(debtor, sent_at, (decided,))


def _load_tracked(token: str) -> Tracked:
    entry = load_tracked(context().db, token)
    if entry is None:
        abort(404)
    return entry


def tracked(token: str, *, gate: bool = True) -> Tracked:
    """find_debtor for the hot tracking routes: the same answers (404, 410, the gate),
    from a short-lived cache instead of the database."""
    if not TOKEN.match(token):
        abort(404)
    cache = current_app.extensions.get("kindly_tokens")
    if cache is None:
        cache = current_app.extensions.setdefault("kindly_tokens", TokenCache())
    entry = cache.get(token)
    if entry is None:
        entry = _load_tracked(token)
        cache.put(entry)
    logs.note_campaign(entry.campaign)
    if utcnow() > entry.expires_at:
        raise LinkExpired(token)
    if gate and not is_verified(entry.id, entry.check):
        abort(redirect(f"/s/{token}", code=303))
    return entry


def is_verified(debtor_id: int, check: str) -> bool:
    """Whether this browser passed the debtor's identity check (or there is none)."""
    return check == "none" or debtor_id in session.get(VERIFIED_KEY, [])


def verified(debtor: Debtor) -> bool:
    """Whether this browser may see the debtor's details."""
    return is_verified(debtor.id, identity.method(debtor.campaign, debtor))


def mark_verified(debtor: Debtor) -> None:
    """Remember in the signed session cookie that this browser passed the check."""
    ids = [i for i in session.get(VERIFIED_KEY, []) if i != debtor.id][-19:]
    session[VERIFIED_KEY] = [*ids, debtor.id]


@dataclass(frozen=True)
class Hit:
    """Who asked and through which channel, as far as the request tells."""

    agent: str
    channel: str | None


def hit() -> Hit:
    """Classify the current request by its headers."""
    channel = request.args.get("c")
    return Hit(events.classify(request.headers), channel if channel in events.CHANNELS else None)


def record_hit(
    session: Session | None,
    debtor: Debtor | Tracked,
    type_: str,
    *,
    channel: str | None,
    agent: str,
    data: dict[str, str] | None = None,
    key: str | None = None,
    burst: str | None = None,
) -> None:
    """Store a tracking hit: into the local journal when there is one (one write, no round
    trip), else through the event buffer (one Redis round trip), else directly. `burst` (a
    clicked link; journal only) leaves the scanner-burst check to the journal's shipper."""
    ctx = context()
    if ctx.journal is not None:
        from kindly.tracking.eventbuffer import pending

        event = pending(debtor, type_, channel=channel, agent=agent, data=data, key=key)
        ctx.events.add(event, burst=None if burst is None else (burst, utcnow().timestamp()))
        return
    buffer = ctx.event_buffer
    if buffer is None:
        if session is None:
            with context().db.session() as own:
                events.record(own, debtor, type_, channel=channel, agent=agent, data=data, key=key)
        else:
            events.record(session, debtor, type_, channel=channel, agent=agent, data=data, key=key)
        return
    from kindly.tracking.eventbuffer import pending

    buffer.add(pending(debtor, type_, channel=channel, agent=agent, data=data, key=key))


def _recent_targets(
    session: Session | None, debtor: Debtor | Tracked, target: str, now: dt.datetime
) -> set[str]:
    """The links this debtor's messages were clicked on in the burst window, this one too."""
    buffer = context().event_buffer
    if buffer is not None:  # clicks may still be in the stream: remember them in Redis
        latest = buffer.clicked_links(debtor.id, target, now.timestamp())
        since = now.timestamp() - BURST_WINDOW.total_seconds()
        return {link for link, at in latest.items() if at >= since} | {target}
    if session is None:
        with context().db.session() as own:
            return _recent_targets(own, debtor, target, now)
    recent = session.execute(
        select(Event.data).where(
            Event.debtor_id == debtor.id,
            Event.type == "clicked",
            Event.occurred_at >= now - BURST_WINDOW,
        )
    ).scalars()
    return {(data or {}).get("to") for data in recent} | {target}


def judge(
    session: Session | None, debtor: Debtor | Tracked, current: Hit, *, target: str | None = None
) -> str:
    """The headers' verdict, sharpened by timing (kindly.tracking.verdict): too soon after
    the send, or a burst of hits on every link, is automated."""
    if current.agent != "human":
        return current.agent
    now = utcnow()
    if isinstance(debtor, Tracked):
        sent_at = debtor.sent_at
    else:
        sent_at = session.scalar(
            select(func.max(Event.occurred_at)).where(
                Event.debtor_id == debtor.id, Event.type == "sent"
            )
        )
    links = None if target is None else lambda: _recent_targets(session, debtor, target, now)
    return refine(current.agent, sent_at, now, links=links)


def count(session: Session | None, debtor: Debtor | Tracked, type_: str, **data: str) -> None:
    """Record one hit (HEAD requests look, they don't count).

    A GET proves nothing by itself (a scanner with a browser's user agent looks the same),
    so it is stored as 'unverified' - unless it is a tap on a link of our own page: the
    browser then marks the navigation as user-activated and same-origin, which crawlers
    following links do not. Such a tap is a person, and proves the view too.
    """
    if request.method == "HEAD":
        return
    current = hit()
    agent = judge(session, debtor, current)
    if agent == "human" and request.method == "GET":
        tapped = (
            request.headers.get("Sec-Fetch-User") == "?1"
            and request.headers.get("Sec-Fetch-Site") == "same-origin"
        )
        if type_ != "viewed" and tapped:
            confirm_person(session, debtor)
        else:
            agent = "unverified"
    record_hit(session, debtor, type_, channel=current.channel, agent=agent, data=data)


def confirm_person(session: Session, debtor: Debtor) -> None:
    """A form sent with a valid CSRF token is a person: count one human view if none yet."""
    if hit().agent != "human":
        return
    has_view = session.scalar(
        select(Event.id)
        .where(Event.debtor_id == debtor.id, Event.type == "viewed", Event.agent == "human")
        .limit(1)
    )
    if has_view is None:
        events.record(
            session, debtor, "viewed", channel="web", agent="human", data={"via": "interaction"}
        )
