"""Inbox items: made from the debtor's `contact` events, listed, owned and closed.

An item is made from its `contact` event, at most once (event_id is unique), by whichever
comes first: `receive` when something records a message on purpose, or `collect` when the
inbox is read. So nothing a debtor sent is lost, whoever recorded the event.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import cases_for
from kindly.errors import KindlyError
from kindly.inbox.due import due_at
from kindly.inbox.models import TOPICS, CaseNote, InboxItem, InboxReply
from kindly.infra.db import as_utc, utcnow
from kindly.tracking import events
from kindly.tracking.models import Event

MAX_MESSAGE = 2000
MAX_ID = 2**31 - 1
"""The largest id an item can have (a 32-bit integer key)."""
VIEWS = ("all", "mine", "unassigned")
"""The inbox's filters: every item, the signed-in person's, or nobody's yet."""


class InboxError(KindlyError):
    """An inbox or case action asked with bad input (an empty answer, an unknown channel)."""


class InboxConflict(InboxError):
    """An action the case's state refuses (a closed item, a blocked address, a paid case)."""


def _item_from(event: Event, debtor: Debtor, campaign: Campaign, source: str) -> InboxItem:
    data = event.data or {}
    topic = data.get("topic") if data.get("topic") in TOPICS else "question"
    arrived = as_utc(event.occurred_at)
    return InboxItem(
        campaign_id=debtor.campaign_id, debtor_id=debtor.id, event_id=event.id, topic=topic,
        message=str(data.get("message") or "")[:MAX_MESSAGE],
        phone=str(data.get("phone") or "")[:32] or None, source=source, status="open",
        due_at=due_at(arrived, campaign.default_locale), created_at=arrived,
    )  # fmt: skip


def _insert(session: Session, item: InboxItem) -> bool:
    """Add the item unless its event has one already (a concurrent reader made it)."""
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        return False
    return True


def receive(
    session: Session,
    debtor: Debtor,
    topic: str,
    message: str,
    phone: str | None = None,
    source: str = "page",
) -> InboxItem:
    """Record a question, dispute or call-back request (its `contact` event) and its item."""
    if topic not in TOPICS:
        raise InboxError(f"topic must be one of {', '.join(TOPICS)}, got {topic!r}")
    message = (message or "").strip()
    if len(message) > MAX_MESSAGE:
        raise InboxError(f"a message has at most {MAX_MESSAGE} characters")
    if not message and topic != "callback":
        raise InboxError("a question or dispute needs a message")
    key = f"contact:{uuid.uuid4().hex}"
    data = {"topic": topic, "message": message, "phone": (phone or "").strip(), "source": source}
    events.record(session, debtor, "contact", channel="web", data=data, key=key)
    event = session.scalar(select(Event).where(Event.idempotency_key == key))
    item = _item_from(event, debtor, debtor.campaign, source)
    if not _insert(session, item):  # a reader of the inbox made it a moment ago
        item = session.scalar(select(InboxItem).where(InboxItem.event_id == event.id))
    return item


def collect(
    session: Session, *, campaign_ids: Sequence[int] | None = None, debtor: Debtor | None = None
) -> int:
    """Make the items of `contact` events that have none yet (of some campaigns, or of one
    debtor); returns how many were made."""
    query = (
        select(Event, Debtor, Campaign)
        .join(Debtor, Debtor.id == Event.debtor_id)
        .join(Campaign, Campaign.id == Event.campaign_id)
        .outerjoin(InboxItem, InboxItem.event_id == Event.id)
        .where(Event.type == "contact", InboxItem.id.is_(None))
        .order_by(Event.id)
    )
    if campaign_ids is not None:
        query = query.where(Event.campaign_id.in_(list(campaign_ids)))
    if debtor is not None:
        query = query.where(Event.debtor_id == debtor.id)
    made = 0
    for event, owner, campaign in session.execute(query).all():
        source = str((event.data or {}).get("source") or "page")[:16]
        made += _insert(session, _item_from(event, owner, campaign, source))
    session.flush()
    return made


@dataclass(frozen=True)
class Row:
    """One line of the inbox: the item, its case and whether its answer is late."""

    item: InboxItem
    campaign_slug: str
    reference: str
    name: str
    case_state: str
    overdue: bool


def listing(
    session: Session,
    campaign_ids: Sequence[int],
    *,
    view: str = "all",
    me: str | None = None,
    closed: bool = False,
    now: dt.datetime | None = None,
    limit: int = 200,
) -> list[Row]:
    """The items of these campaigns: overdue first, then by due time (closed ones with
    `closed`, newest first). Contact events not in the inbox yet are picked up first."""
    if view not in VIEWS:
        raise InboxError(f"view must be one of {', '.join(VIEWS)}")
    now = now or dt.datetime.now(dt.UTC)
    collect(session, campaign_ids=campaign_ids)
    query = (
        select(InboxItem, Debtor, Campaign.slug)
        .join(Debtor, Debtor.id == InboxItem.debtor_id)
        .join(Campaign, Campaign.id == InboxItem.campaign_id)
        .where(InboxItem.campaign_id.in_(list(campaign_ids)))
    )
    if closed:
        query = query.where(InboxItem.status == "closed").order_by(InboxItem.closed_at.desc())
    else:
        query = query.where(InboxItem.status != "closed").order_by(InboxItem.due_at, InboxItem.id)
    if view == "mine":
        query = query.where(InboxItem.owner == me)
    elif view == "unassigned":
        query = query.where(InboxItem.owner.is_(None))
    found = session.execute(query.limit(limit)).all()
    cases = cases_for(session, [debtor for _, debtor, _ in found], now=now)
    rows = [
        Row(item, slug, debtor.reference,
            " ".join(f"{debtor.first_name or ''} {debtor.last_name}".split()),
            cases[debtor.id].state, is_overdue(item, now))
        for item, debtor, slug in found
    ]  # fmt: skip
    return sorted(rows, key=lambda row: not row.overdue)  # stable: due order kept within


def is_overdue(item: InboxItem, now: dt.datetime) -> bool:
    """Whether the page's promise is broken: nobody answered and the due time passed."""
    return item.status == "open" and as_utc(item.due_at) < now


def find(session: Session, item_id: int, campaign_ids: Sequence[int]) -> InboxItem | None:
    """The item if it belongs to one of these campaigns (else None, as if it did not exist)."""
    if not 0 < item_id <= MAX_ID:
        return None  # no such row, and a database would refuse the number
    item = session.get(InboxItem, item_id)
    return item if item is not None and item.campaign_id in campaign_ids else None


def take(session: Session, item: InboxItem, owner: str | None) -> InboxItem:
    """Give the item to a person (their email), or back to nobody with None."""
    if item.status == "closed":
        raise InboxConflict("this item is closed")
    item.owner = owner
    return item


def close(session: Session, item: InboxItem) -> InboxItem:
    """Nothing more to do for this item."""
    if item.status == "closed":
        raise InboxConflict("this item is closed already")
    item.status, item.closed_at = "closed", utcnow()
    return item


def items_of(session: Session, debtor: Debtor) -> list[InboxItem]:
    """The debtor's items, newest first (the case page)."""
    collect(session, debtor=debtor)
    return list(
        session.scalars(
            select(InboxItem).where(InboxItem.debtor_id == debtor.id).order_by(InboxItem.id.desc())
        )
    )


def replies_of(session: Session, items: Sequence[InboxItem]) -> dict[int, list[InboxReply]]:
    """The replies of these items, oldest first, by item id."""
    out: dict[int, list[InboxReply]] = {item.id: [] for item in items}
    if out:
        for reply in session.scalars(
            select(InboxReply).where(InboxReply.item_id.in_(list(out))).order_by(InboxReply.id)
        ):
            out[reply.item_id].append(reply)
    return out


@dataclass(frozen=True)
class PageReply:
    """An answer shown on the debtor's page: what they asked and what we answered."""

    topic: str
    asked: str
    body: str
    at: dt.datetime


def replies_for(session: Session, debtor: Debtor) -> list[PageReply]:
    """The answers the debtor's page shows, newest first (replies sent to the page)."""
    rows = session.execute(
        select(InboxReply, InboxItem)
        .join(InboxItem, InboxItem.id == InboxReply.item_id)
        .where(InboxReply.debtor_id == debtor.id, InboxReply.channel == "page")
        .order_by(InboxReply.id.desc())
    ).all()
    return [PageReply(item.topic, item.message, reply.body, as_utc(reply.created_at))
            for reply, item in rows]  # fmt: skip


def personal_rows(session: Session, debtor: Debtor) -> dict[str, list]:
    """The debtor's items, replies and case notes (for an Art. 15 export)."""
    return {
        "inbox_items": list(
            session.scalars(
                select(InboxItem).where(InboxItem.debtor_id == debtor.id).order_by(InboxItem.id)
            )
        ),
        "inbox_replies": list(
            session.scalars(
                select(InboxReply).where(InboxReply.debtor_id == debtor.id).order_by(InboxReply.id)
            )
        ),
        "case_notes": list(
            session.scalars(
                select(CaseNote).where(CaseNote.debtor_id == debtor.id).order_by(CaseNote.id)
            )
        ),
    }


def erase(session: Session, debtor: Debtor) -> int:
    """Blank what the debtor wrote, what was answered and noted (Art. 17) and close their
    items (an erased case is closed); the rows stay with topic and times, so the cockpit's
    counts keep their numbers. Returns the rows changed."""
    rows = personal_rows(session, debtor)
    for item in rows["inbox_items"]:
        item.message, item.phone = "", None
        if item.status != "closed":
            item.status, item.closed_at = "closed", utcnow()
    for reply in rows["inbox_replies"]:
        reply.body, reply.address, reply.error = "(erased)", None, None
    for note in rows["case_notes"]:
        note.body = "(erased)"
    return sum(len(found) for found in rows.values())
