"""Sending debtors their own link when they ask for it (a mistyped or lost link): a short
email, else a text message, to the address the creditor already has, never to one typed in."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path

from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.creditors.profile import creditor_for
from kindly.infra.config import Settings
from kindly.infra.db import utcnow
from kindly.messaging import email as email_channel
from kindly.messaging import optout, sms
from kindly.site import identity
from kindly.site.personalise import greeting, resolve_locale
from kindly.tracking import events
from renderer.texts import load_texts


def _email(
    session: Session, debtor: Debtor, lang: str, link: str, to: str, settings: Settings
) -> EmailMessage:
    """The message: greeting, the link, and what to do if it was not them, from the debtor's
    own creditor (its sender name; replies to its address)."""
    texts = load_texts("email").for_lang(lang)
    owed = creditor_for(session, debtor)
    creditor = owed.name
    values = {"reference": debtor.reference, "creditor": creditor}
    body = "\n\n".join([
        greeting(lang, debtor.salutation, debtor.first_name, debtor.last_name),
        texts["link_intro"].format(**values),
        link,
        texts["link_ignore"],
        "--\n" + texts["privacy"],
    ])  # fmt: skip
    message = EmailMessage()
    message["Subject"] = texts["link_subject"].format(**values)
    message["From"] = email_channel.sender(debtor.campaign, settings, owed.display_sender)
    if owed.email:
        message["Reply-To"] = owed.email
    message["To"] = formataddr((f"{debtor.first_name or ''} {debtor.last_name}".strip(), to))
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Auto-Submitted"] = "auto-replied"  # asked for by the person, not a reminder
    message["Message-ID"] = email_channel.new_message_id(f"link-{debtor.id}", settings.base_url)
    message.set_content(body + "\n")
    return message


def send_own_link(session: Session, debtor: Debtor, settings: Settings) -> str | None:
    """Send the debtor their page's link by email (else SMS) to the address on file; the
    channel used, or None when none can reach them or the link has expired (a person then
    answers the request, which is recorded either way)."""
    _, lang, _ = resolve_locale(debtor, debtor.campaign)
    link = f"{settings.base_url}/s/{debtor.token}"
    outbox = Path(settings.data_dir) / "outbox"
    key = f"{debtor.campaign.slug}-{debtor.id}-link-{utcnow():%Y%m%d%H%M%S%f}"
    used = None
    if not identity.expired(debtor.campaign, debtor):
        for channel in ("email", "sms"):
            address = optout.address_of(debtor, channel)
            if address is None or optout.blocked(session, address, channel):
                continue
            if channel == "email":
                message = _email(session, debtor, lang, link, address, settings)
                email_channel.send_email(message, settings.smtp_url, outbox, key)
            else:
                texts = load_texts("sms").for_lang(lang)
                creditor = debtor.creditor or debtor.campaign.creditor or ""
                text = sms.plain(texts["link_text"].format(
                    creditor=creditor, reference=debtor.reference, link=link))  # fmt: skip
                sms.send_sms(sms.Sms(address, text, key), settings.sms_webhook_url, outbox)
            used = channel
            break
    events.record(
        session, debtor, "contact", channel="web",
        data={"topic": "new_link", "via": "find", "sent": used},
        key=f"find:{debtor.id}:{dt.date.today()}:{key}",
    )  # fmt: skip
    return used
