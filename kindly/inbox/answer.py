"""Replies to inbox items, and how each reaches the debtor: email, SMS or their page.

A reply answers what the debtor asked, so it is a transactional message, not a reminder: the
debtor's own opt-out from reminders does not stop it (they asked; the answer is what they
want). An address that bounced hard, or one on the operator's suppression list, is never
written to, whatever the reason. The page channel needs no address: the answer is kept and
the debtor's page shows it (`kindly.inbox.service.replies_for`).
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path

from sqlalchemy.orm import Session, object_session

from kindly.campaigns.models import Debtor
from kindly.creditors.profile import creditor_for
from kindly.errors import ServiceUnavailable
from kindly.inbox.models import CHANNELS, InboxItem, InboxReply
from kindly.inbox.service import InboxConflict, InboxError
from kindly.infra.config import Settings
from kindly.infra.db import utcnow
from kindly.messaging import email as email_channel
from kindly.messaging import optout, sms, unsublink
from kindly.payments import ledger
from kindly.rules.store import decision_for
from kindly.site.personalise import build_view
from renderer.view import DebtorView

MAX_REPLY = 5000
MAX_SMS_PARTS = 4
"""A reply by SMS longer than this is refused: write it to the page or by email instead."""
NEVER = ("bounced_hard", "suppressed")
"""Blocks that stop every message, a reply too (see the module's docstring)."""


def view_of(session: Session, settings: Settings, debtor: Debtor) -> DebtorView:
    """The debtor's view (language, creditor, name) with the live balance."""
    decision = decision_for(session, debtor)
    return build_view(
        debtor, debtor.campaign, base_url=settings.base_url,
        paid_minor=ledger.paid_minor(session, debtor),
        tone=decision.tone if decision is not None else None,
    )  # fmt: skip


def address_for(session: Session, debtor: Debtor, channel: str) -> str | None:
    """Where a reply on this channel goes (None for the page), or InboxError why it cannot."""
    if channel == "page":
        return None
    address = optout.address_of(debtor, channel)
    if address is None:
        raise InboxConflict(f"no {'email address' if channel == 'email' else 'phone'} on file")
    block = optout.blocked(session, address, channel)
    if block in NEVER:
        raise InboxConflict(f"the debtor's {channel} address is blocked ({block}): answer on the "
                         "page or another channel")  # fmt: skip
    return address


def reply_email(
    view: DebtorView, debtor: Debtor, settings: Settings, to: str, body: str, key: str
) -> EmailMessage:
    """The answer as a plain-text email in the debtor's language, with their page's link."""
    texts = email_channel.texts_for(view)
    link = email_channel.links(
        settings.base_url, debtor.token, "email",
        unsubscribe=unsublink.credential(settings.secret_key, debtor.id, "email"),
    )  # fmt: skip
    message = EmailMessage()
    message["Subject"] = texts["reply_subject"]
    owed = creditor_for(object_session(debtor), debtor)
    message["From"] = email_channel.sender(debtor.campaign, settings, owed.display_sender)
    message["To"] = formataddr((view.full_name, to))
    reply_to = owed.email or (debtor.campaign.settings or {}).get("reply_to")
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = email_channel.new_message_id(key, settings.base_url)
    message["Content-Language"] = view.locale
    message.set_content(f"{body}\n\n-- \n{texts['reply_page']}\n{link.site}\n")
    return message


def reply(
    session: Session,
    settings: Settings,
    item: InboxItem,
    *,
    author: str,
    body: str,
    channel: str,
) -> InboxReply:
    """Answer the item on a channel; the reply row says whether it reached the debtor.

    Refused, with nothing recorded, for an empty or too long answer (InboxError), a closed
    item or a channel without a usable address (InboxConflict). A gateway that fails records
    the reply `failed` with the reason and raises InboxConflict: it did not go out.
    """
    body = (body or "").replace("\r\n", "\n").strip()
    if channel not in CHANNELS:
        raise InboxError(f"channel must be one of {', '.join(CHANNELS)}")
    if not body:
        raise InboxError("write an answer first")
    if len(body) > MAX_REPLY:
        raise InboxError(f"an answer has at most {MAX_REPLY} characters")
    if item.status == "closed":
        raise InboxConflict("this item is closed")
    debtor = session.get(Debtor, item.debtor_id)
    address = address_for(session, debtor, channel)
    text = sms.plain(body) if channel == "sms" else body
    if channel == "sms" and sms.count(text).parts > MAX_SMS_PARTS:
        raise InboxError(f"too long for {MAX_SMS_PARTS} text messages: answer by email or on "
                         "the page")  # fmt: skip
    row = InboxReply(item_id=item.id, debtor_id=debtor.id, author=author, body=body,
                     channel=channel, status="sending", address=address)  # fmt: skip
    session.add(row)
    session.flush()
    key = f"{debtor.campaign.slug}-{debtor.id}-reply-{row.id}"
    outbox = Path(settings.data_dir) / "outbox"
    try:
        if channel == "email":
            view = view_of(session, settings, debtor)
            message = reply_email(view, debtor, settings, address, body, key)
            email_channel.send_email(message, settings.smtp_url, outbox, key)
            row.status = "sent" if settings.smtp_url else "outbox"
        elif channel == "sms":
            sms.send_sms(sms.Sms(address, text, key), settings.sms_webhook_url, outbox)
            row.status = "sent" if settings.sms_webhook_url else "outbox"
        else:
            row.status = "shown"
    except (smtplib.SMTPException, ServiceUnavailable, ValueError, OSError) as exc:
        row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        session.commit()  # the attempt stays on record
        raise InboxConflict(f"the answer did not go out: {row.error}") from None
    if item.status == "open":
        item.status, item.answered_at = "answered", utcnow()
    item.owner = item.owner or author
    return row
