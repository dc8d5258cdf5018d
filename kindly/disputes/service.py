"""Opening a dispute from the debtor's page, and a manager's resolution in the cockpit.

Opening checks every file (kindly.disputes.files), scans each with clamd when one is
configured (kindly.disputes.scan), and only then stores them privately, records the dispute,
places the `dispute` hold (no reminder, cost or plan charge while it is open) and puts it in
the cockpit's inbox. Anything refused leaves nothing behind. A manager upholds it (the amount
corrected, or the claim closed) or rejects it (the reason goes to the debtor); either releases
the hold. Every step is an audit entry and, through the hold's events, on the case's record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts.audit import record as audit
from kindly.accounts.models import AuditLog, User
from kindly.campaigns.models import Debtor
from kindly.cases import holds
from kindly.cases.models import CaseHold
from kindly.claims import items as claim_items
from kindly.disputes import files, scan
from kindly.disputes.models import OUTCOMES, REASONS, Dispute, DisputeFile
from kindly.errors import KindlyError
from kindly.inbox import answer as inbox_answer
from kindly.inbox import service as inbox
from kindly.inbox.models import InboxItem
from kindly.infra.config import Settings
from kindly.infra.db import utcnow
from kindly.infra.storage import Storage
from kindly.payments import ledger
from kindly.site import artifacts

ANSWER_DAYS = 14
"""Days within which a person answers a dispute: the page states the date."""
MAX_TEXT = 2000
"""Characters the debtor's own words may have."""
MAX_ANSWER = inbox_answer.MAX_REPLY
REASON_LABELS = {
    "already_paid": "already paid",
    "amount_wrong": "the amount is wrong",
    "not_my_contract": "not my contract",
    "not_received": "goods or service not received",
    "other": "other",
}
"""Each reason as the cockpit shows it (the debtor sees their own language's)."""


class DisputeError(KindlyError):
    """A dispute that cannot be opened or resolved as asked; `code` names the message."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class Scanner:
    """Where files are scanned: clamd's URL, or None for no scan."""

    clamd_url: str | None = None

    def verdict(self, data: bytes) -> scan.Verdict | None:
        """clamd's verdict, or None when no clamd is configured."""
        return scan.instream(self.clamd_url, data) if self.clamd_url else None


def current(session: Session, debtor: Debtor) -> Dispute | None:
    """The debtor's latest dispute (open or resolved), or None."""
    return session.scalar(
        select(Dispute).where(Dispute.debtor_id == debtor.id).order_by(Dispute.id.desc()).limit(1)
    )


def files_of(session: Session, dispute: Dispute) -> list[DisputeFile]:
    """The dispute's files in the order the debtor gave them."""
    return list(
        session.scalars(
            select(DisputeFile).where(DisputeFile.dispute_id == dispute.id).order_by(DisputeFile.id)
        )
    )


def open_dispute(
    session: Session,
    storage: Storage,
    debtor: Debtor,
    *,
    reason: str,
    text: str,
    uploads: list[files.Upload],
    scanner: Scanner,
    item_ref: str | None = None,
    today: dt.date | None = None,
) -> Dispute:
    """Open a dispute with its files, or raise (DisputeError, files.FileRefused,
    scan.ScanUnavailable) having stored and changed nothing."""
    today = today or dt.date.today()
    text = (text or "").replace("\r\n", "\n").strip()
    if reason not in REASONS:
        raise DisputeError("reason", f"reason must be one of {', '.join(REASONS)}")
    if len(text) > MAX_TEXT:
        raise DisputeError("text_long", f"the text has at most {MAX_TEXT} characters")
    if reason == "other" and not text:
        raise DisputeError("text_missing", "say what is wrong")
    open_one = current(session, debtor)
    if open_one is not None and open_one.state == "open":
        raise DisputeError("already_open", "a dispute of this case is being looked at")
    item_ref = (item_ref or "").strip()[:100] or None
    if item_ref is not None:
        row = claim_items.row_of(session, debtor, item_ref)
        if row is None or row.status == "closed":
            raise DisputeError("item", "the case has no such open item")
    checked = files.check_all(uploads)
    scans = []
    for one in checked:  # every file scanned before any is stored
        verdict = scanner.verdict(one.data)
        if verdict is not None and not verdict.clean:
            raise files.FileRefused("infected", one.name)
        scans.append("clean" if verdict is not None else "unscanned")
    dispute = Dispute(campaign_id=debtor.campaign_id, debtor_id=debtor.id, reason=reason,
                      text=text, state="open", answer_by=today + dt.timedelta(days=ANSWER_DAYS),
                      item_ref=item_ref)  # fmt: skip
    session.add(dispute)
    session.flush()
    if item_ref is not None:  # the item is held too: it cannot be chosen and bears no interest
        claim_items.mark_disputed(session, debtor, item_ref, True)
    stored: list[str] = []
    try:
        for one, verdict in zip(checked, scans, strict=True):
            # a key nobody can guess (144 random bits), never the debtor's file name
            key = f"disputes/{debtor.id}/{secrets.token_urlsafe(18)}.{one.ending}"
            storage.put(key, one.data, one.content_type)
            stored.append(key)
            session.add(DisputeFile(dispute_id=dispute.id, key=key, filename=one.name,
                                    content_type=one.content_type, size=len(one.data),
                                    sha256=hashlib.sha256(one.data).hexdigest(),
                                    scan=verdict))  # fmt: skip
        message = f"Dispute ({REASON_LABELS[reason]}), {len(checked)} file(s)" + (
            f": {text}" if text else ""
        )
        item = inbox.receive(session, debtor, "dispute", message[: inbox.MAX_MESSAGE])
        hold = holds.place(session, debtor, "dispute", source="page", note=text or None)
        dispute.hold_id, dispute.inbox_item_id = hold.id, item.id
        session.add(AuditLog(actor="debtor", via="web", action="dispute.open",
                             campaign_id=debtor.campaign_id,
                             detail={"reference": debtor.reference, "dispute": dispute.id,
                                     "reason": reason, "files": len(checked),
                                     "item": dispute.item_ref,
                                     "answer_by": dispute.answer_by.isoformat()}))  # fmt: skip
        session.flush()
    except Exception:
        for key in stored:  # the transaction rolls back: its files go too
            storage.delete(key)
        raise
    return dispute


def _restate(debtor: Debtor, amount_minor: int) -> None:
    """Set the claim to `amount_minor`; a breakdown that no longer adds up loses the
    principal's difference, or is dropped when the principal cannot absorb it."""
    cut = debtor.amount_due_minor - amount_minor
    debtor.amount_due_minor = amount_minor
    parts = (debtor.principal_minor, debtor.interest_minor, debtor.fees_minor)
    if any(part is not None for part in parts):
        if debtor.principal_minor is not None and debtor.principal_minor >= cut:
            debtor.principal_minor -= cut
        else:
            debtor.principal_minor = debtor.interest_minor = debtor.fees_minor = None


def resolve(
    session: Session,
    settings: Settings,
    dispute: Dispute,
    *,
    user: User,
    outcome: str,
    answer: str = "",
    amount_minor: int | None = None,
    channel: str = "page",
    via: str = "web",
) -> Dispute:
    """Resolve an open dispute: `corrected` (the claim set to `amount_minor`, below what it
    was), `closed` (nothing more is owed) or `rejected` (`answer` says why and goes to the
    debtor on `channel`: email, sms or page). The hold is released; DisputeError otherwise."""
    answer = (answer or "").replace("\r\n", "\n").strip()
    if dispute.state != "open":
        raise DisputeError("resolved", f"dispute {dispute.id} was resolved already")
    if outcome not in OUTCOMES:
        raise DisputeError("outcome", f"outcome must be one of {', '.join(OUTCOMES)}")
    if outcome == "rejected" and not answer:
        raise DisputeError("answer", "a rejection needs the reason the debtor will read")
    if len(answer) > MAX_ANSWER:
        raise DisputeError("answer", f"an answer has at most {MAX_ANSWER} characters")
    debtor = session.get(Debtor, dispute.debtor_id)
    before = debtor.amount_due_minor
    paid = ledger.paid_minor(session, debtor)
    if outcome == "corrected" and (amount_minor is None or not 0 < amount_minor < before):
        raise DisputeError("amount", "the corrected amount must be above 0 and below the "
                           f"current claim ({before} minor units)")  # fmt: skip
    # the answer first: a gateway that fails keeps its failed try on record (answer.reply
    # commits it) before anything of the resolution is changed
    sent_on = _tell(session, settings, dispute, user, answer, channel) if answer else None
    item = claim_items.row_of(session, debtor, dispute.item_ref) if dispute.item_ref else None
    if item is not None and outcome == "corrected" and before - amount_minor >= item.amount_minor:
        raise DisputeError("amount", "a corrected item keeps an amount above 0: close it instead")
    if outcome == "corrected":
        if item is not None:  # the cut is the disputed item's
            item.amount_minor -= before - amount_minor
            if item.principal_minor is not None:
                item.principal_minor = max(item.principal_minor - (before - amount_minor), 0)
        _restate(debtor, amount_minor)
    elif outcome == "closed" and item is not None:
        # only the disputed item goes: the claim is the sum of the items not closed
        item.status, item.closed_at = "closed", utcnow()
        _restate(debtor, max(before - item.amount_minor, min(paid, before)))
    elif outcome == "closed":
        _restate(debtor, min(paid, before))  # what was paid stays; nothing more is owed
    if item is not None and item.status == "disputed":  # rejected or corrected: open again
        claim_items.mark_disputed(session, debtor, item.item_id, False)
    dispute.state = "rejected" if outcome == "rejected" else "upheld"
    dispute.outcome, dispute.answer, dispute.answer_channel = outcome, answer or None, sent_on
    dispute.amount_before_minor, dispute.amount_after_minor = before, debtor.amount_due_minor
    dispute.resolved_at, dispute.resolved_by = utcnow(), user.email
    hold = session.get(CaseHold, dispute.hold_id) if dispute.hold_id else None
    if hold is not None and hold.released_at is None:
        note = f"dispute {outcome}" + (f": {answer}" if answer else "")
        holds.release(session, debtor, hold.id, by=user.email, note=note[:2000])
    item = session.get(InboxItem, dispute.inbox_item_id) if dispute.inbox_item_id else None
    if item is not None and item.status != "closed":
        item.status, item.closed_at = "closed", utcnow()
        item.owner = item.owner or user.email
    if debtor.amount_due_minor != before:  # the letter and page show the new amount
        artifacts.mark_stale(session, debtor.campaign_id, "dispute", [debtor.id])
    audit(session, user, "dispute.resolve", via=via, campaign_id=debtor.campaign_id,
          reference=debtor.reference, dispute=dispute.id, outcome=outcome,
          amount_before_minor=before, amount_after_minor=debtor.amount_due_minor,
          answer_channel=sent_on)  # fmt: skip
    session.flush()
    return dispute


def _tell(
    session: Session, settings: Settings, dispute: Dispute, user: User, answer: str, channel: str
) -> str:
    """Send the answer on `channel` as a reply to the dispute's inbox item; when that channel
    fails (the failed try stays on record) the answer is shown on the page instead."""
    item = session.get(InboxItem, dispute.inbox_item_id) if dispute.inbox_item_id else None
    if item is None:  # its item was erased: the page still shows the answer
        return "page"
    if item.status == "closed":
        item.status = "answered"
    channel = channel if channel in ("email", "sms", "page") else "page"
    try:
        inbox_answer.reply(session, settings, item, author=user.email, body=answer, channel=channel)
        return channel
    except inbox.InboxError:
        if channel == "page":
            raise
        inbox_answer.reply(session, settings, item, author=user.email, body=answer, channel="page")
        return "page"


def forget(session: Session, storage: Storage | None, debtor: Debtor) -> int:
    """Erase a debtor's dispute files and texts (GDPR Art. 17); returns the files deleted.
    The disputes stay as facts (reason, state, dates, amounts)."""
    deleted = 0
    for dispute in session.scalars(select(Dispute).where(Dispute.debtor_id == debtor.id)):
        for row in files_of(session, dispute):
            if storage is not None:
                storage.delete(row.key)
            session.delete(row)
            deleted += 1
        dispute.text, dispute.answer = "", None
    return deleted
