"""Bounces: delivery-status notifications (RFC 3464) and SMS gateway callbacks.

5.1.1 / 5.1.2 / 5.1.6 (no such user, no such domain, moved) are hard: the address is
blocked and the next plan uses the debtor's next channel. 4.x.x and "mailbox full" (5.2.2)
are soft: the send is retried later. 5.7.x are policy blocks about the sender (spam filters,
authentication), not the debtor: nothing is held against the address.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import Message

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.infra import metrics
from kindly.messaging import optout
from kindly.messaging.models import Send
from kindly.tracking import events

HARD = frozenset({"5.1.1", "5.1.2", "5.1.6", "5.1.10"})
_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_FULL = re.compile(r"mailbox (is )?full|over ?quota|quota exceeded", re.IGNORECASE)


def status_code(text: str) -> str | None:
    """The first enhanced status code (e.g. 5.1.1) in a reply, if any."""
    found = _CODE.search(text or "")
    return found.group(1) if found else None


def classify_status(code: str, text: str = "") -> str:
    """'hard', 'soft', 'sender' (policy: not the debtor's fault) or 'delivered'."""
    if code.startswith("2."):
        return "delivered"
    if code.startswith("4.") or code == "5.2.2" or _FULL.search(text or ""):
        return "soft"
    if code.startswith("5.7."):
        return "sender"
    if code in HARD:
        return "hard"
    return "soft" if code.startswith("5.2.") or code.startswith("5.4.") else "sender"


@dataclass(frozen=True)
class Bounce:
    """One recipient's status from a DSN."""

    recipient: str
    status: str
    action: str
    diagnostic: str
    message_id: str | None

    @property
    def kind(self) -> str:
        """hard, soft, sender or delivered."""
        return classify_status(self.status, self.diagnostic)


def parse_dsn(data: bytes) -> list[Bounce]:
    """The per-recipient statuses of a multipart/report; report-type=delivery-status."""
    message = email.message_from_bytes(data, policy=policy.default)
    original_id = None
    statuses: list[Message] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            # Each block of fields is a sub-part: the per-message block, then per recipient.
            statuses.extend(part.get_payload()[1:] if part.is_multipart() else [])
        elif kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) else None
            if inner is None:
                inner = email.message_from_string(part.get_content(), policy=policy.default)
            original_id = original_id or inner.get("Message-ID")
    out = []
    for block in statuses:
        recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        out.append(Bounce(
            recipient=recipient.split(";", 1)[-1].strip().lower(),
            status=str(block.get("Status") or "").strip(),
            action=str(block.get("Action") or "").strip().lower(),
            diagnostic=str(block.get("Diagnostic-Code") or ""),
            message_id=str(original_id).strip() if original_id else None,
        ))  # fmt: skip
    return out


def apply(session: Session, bounce: Bounce, channel: str = "email") -> str | None:
    """Record one bounce against the send it answers; returns its kind (None: no such send)."""
    row = None
    if bounce.message_id:
        row = session.scalar(select(Send).where(Send.message_id == bounce.message_id))
    if row is None and bounce.recipient:
        row = session.scalar(
            select(Send)
            .where(Send.address == optout.normalise(bounce.recipient), Send.channel == channel)
            .order_by(Send.id.desc())
            .limit(1)
        )
    if row is None:
        return None
    debtor = session.get(Debtor, row.debtor_id)
    kind = bounce.kind
    if kind in ("hard", "soft"):
        metrics.count_send(channel, "bounced", kind)
    data = {"status": bounce.status, "diagnostic": bounce.diagnostic[:500], "send_id": row.id}
    if kind == "hard":
        row.status = "bounced"
        optout.add(session, row.address or bounce.recipient, channel, "bounced_hard",
                   campaign_id=row.campaign_id)  # fmt: skip
        events.record(session, debtor, "bounced_hard", channel=channel, data=data,
                      key=f"bounced_hard:{row.id}")  # fmt: skip
    elif kind == "soft":
        row.status = "failed"  # the next `kindly send` run retries it
        events.record(session, debtor, "bounced_soft", channel=channel, data=data)
    elif kind == "delivered":
        events.record(session, debtor, "delivered", channel=channel, data=data,
                      key=f"delivered:{row.id}")  # fmt: skip
    return kind


def sms_callback(session: Session, payload: dict) -> str | None:
    """A gateway's delivery report {"reference", "status": delivered|failed|undeliverable}."""
    row = session.scalar(select(Send).where(Send.message_id == str(payload.get("reference"))))
    if row is None:
        return None
    status = str(payload.get("status", "")).lower()
    code = {"delivered": "2.0.0", "undeliverable": "5.1.1", "invalid_number": "5.1.1"}.get(
        status, "4.0.0"
    )
    return apply(session, Bounce(row.address or "", code, status, status, row.message_id), "sms")
