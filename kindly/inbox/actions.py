"""What a person does to a case from the cockpit: write a note, hold collection or release a
hold, and send the debtor their link again. Each action leaves a record on the case (a note,
a hold's events, a `sent`/`outbox` event); the caller writes the audit entry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.campaigns.service import status_of
from kindly.cases import holds
from kindly.cases.models import CaseHold
from kindly.cases.read import case_of
from kindly.creditors.profile import creditor_for
from kindly.inbox.answer import view_of
from kindly.inbox.models import CaseNote
from kindly.inbox.service import InboxConflict, InboxError
from kindly.infra.config import Settings
from kindly.messaging import email as email_channel
from kindly.messaging import optout, sms, unsublink
from kindly.tracking import events
from kindly.tracking.models import Event
from renderer.texts import load_texts

MAX_NOTE = 5000
RESEND_CHANNELS = ("email", "sms")


def add_note(session: Session, debtor: Debtor, author: str, body: str) -> CaseNote:
    """A note on the case; refused when empty or too long."""
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise InboxError("write a note first")
    if len(body) > MAX_NOTE:
        raise InboxError(f"a note has at most {MAX_NOTE} characters")
    note = CaseNote(campaign_id=debtor.campaign_id, debtor_id=debtor.id, author=author, body=body)
    session.add(note)
    session.flush()
    return note


def notes_of(session: Session, debtor: Debtor) -> list[CaseNote]:
    """The case's notes, newest first."""
    return list(
        session.scalars(
            select(CaseNote).where(CaseNote.debtor_id == debtor.id).order_by(CaseNote.id.desc())
        )
    )


def hold(
    session: Session, debtor: Debtor, by: str, note: str, until: dt.date | None = None
) -> CaseHold:
    """A manager's hold on collection (until a day, or until released), with its reason
    kept as a note too."""
    placed = holds.place(session, debtor, "manual", source="cockpit", by=by,
                         note=note.strip() or None, until=until)  # fmt: skip
    if note.strip():
        add_note(session, debtor, by, f"Hold: {note.strip()}")
    return placed


def release(session: Session, debtor: Debtor, hold_id: int, by: str, note: str) -> CaseHold:
    """Lift a hold (a dispute answered, a manager's hold over) with the reason why; collection
    resumes unless another hold remains."""
    if not note.strip():
        raise InboxError("say why the hold ends (the note is kept on the case)")
    released = holds.release(session, debtor, hold_id, by=by, note=note.strip())
    add_note(session, debtor, by, f"Released {released.reason} hold: {note.strip()}")
    return released


def _short_sms(debtor: Debtor, view, link: str) -> str:
    """The tone's short text with the debtor's link, and how to stop messages."""
    texts = load_texts("sms").for_lang(view.lang)
    text = texts[f"short_{view.tone}"].format(
        first_name=view.first_name or "", creditor=view.creditor, amount=view.amount,
        reference=debtor.reference, due_date=view.due_date, link=link,
    )  # fmt: skip
    return sms.plain(f"{text} {texts['stop']}")


def resend_link(session: Session, settings: Settings, debtor: Debtor, channel: str) -> str:
    """Send the debtor's message with their link again on a channel: the campaign's email for
    their tone with today's balance, or the tone's short SMS. Refused for a case that is paid
    or closed, disputed or in breathing space (the message asks for payment), a campaign that
    is not live, and an address that is missing or blocked (an opt-out counts here: this is a
    reminder, not an answer). Returns "sent" or "outbox"."""
    if channel not in RESEND_CHANNELS:
        raise InboxError("a link is sent again by email or SMS (letters go in print batches)")
    case = case_of(session, debtor)
    if case.state in ("paid", "closed"):
        raise InboxConflict(f"the case is {case.state}: nothing to send")
    if case.state in ("disputed", "breathing_space"):
        raise InboxConflict(f"the case is {case.state.replace('_', ' ')}: the message asks for "
                         "payment; answer in the inbox instead")  # fmt: skip
    status = status_of(session, debtor.campaign_id)
    if status != "live":
        raise InboxConflict(f"the campaign is {status}: nothing is sent until it is live")
    address = optout.address_of(debtor, channel)
    if address is None:
        raise InboxConflict(f"no {'email address' if channel == 'email' else 'phone'} on file")
    block = optout.blocked(session, address, channel)
    if block:
        raise InboxConflict(f"the debtor's {channel} address is blocked ({block})")
    earlier = session.scalar(
        select(func.count(Event.id)).where(
            Event.debtor_id == debtor.id, Event.idempotency_key.like("resend:%")
        )
    )
    key = f"{debtor.campaign.slug}-{debtor.id}-resend-{(earlier or 0) + 1}-{channel}"
    outbox = Path(settings.data_dir) / "outbox"
    view = view_of(session, settings, debtor)
    link = email_channel.links(
        settings.base_url, debtor.token, channel,
        unsubscribe=unsublink.credential(settings.secret_key, debtor.id, channel),
    )  # fmt: skip
    if channel == "email":
        message_id = email_channel.new_message_id(key, settings.base_url)
        owed = creditor_for(session, debtor)
        from_ = email_channel.sender(debtor.campaign, settings, owed.display_sender)
        message = email_channel.compose_email(
            view, address, sender=from_,
            reply_to=owed.email or (debtor.campaign.settings or {}).get("reply_to"), link=link,
            message_id=message_id,
        )  # fmt: skip
        email_channel.send_email(message, settings.smtp_url, outbox, key)
        gateway = settings.smtp_url
    else:
        text = _short_sms(debtor, view, f"{settings.base_url}/c/{debtor.token}?c=sms")
        message_id = sms.send_sms(sms.Sms(address, text, key), settings.sms_webhook_url, outbox)
        gateway = settings.sms_webhook_url
    outcome = "sent" if gateway else "outbox"  # a file in the outbox folder reached nobody
    events.record(session, debtor, outcome, channel=channel, key=f"resend:{key}",
                  data={"resend": True, "message_id": message_id})  # fmt: skip
    return outcome
