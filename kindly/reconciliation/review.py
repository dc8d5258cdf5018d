"""The review queue: entries no rule could place, and a manager's three answers to each.

A manager assigns an entry to one case, splits it across several (the parts add up to the
entry's amount exactly), or marks it "not ours". Each answer books through
`booking.book` like a rule's match would, is audited, and applies only to an entry still
waiting: a second answer to the same entry is refused and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.accounts.models import User
from kindly.campaigns.models import Campaign, Debtor
from kindly.errors import KindlyError
from kindly.infra.db import utcnow
from kindly.money import MoneyError, from_minor, parse_amount, to_minor
from kindly.reconciliation import matching
from kindly.reconciliation.booking import Booking, book
from kindly.reconciliation.models import BankEntry

LIMIT = 500
"""Entries one page of the queue lists."""


class ReviewError(KindlyError):
    """A decision that cannot be taken as asked; nothing was changed."""


@dataclass(frozen=True)
class Part:
    """One case's share of a split: the debtor and the amount in minor units."""

    debtor: Debtor
    amount_minor: int


def waiting(session: Session, limit: int = LIMIT) -> list[BankEntry]:
    """Entries waiting for a decision, oldest first."""
    return list(
        session.scalars(
            select(BankEntry)
            .where(BankEntry.state == "unmatched")
            .order_by(BankEntry.id)
            .limit(limit)
        )
    )


def summary(entry: BankEntry) -> dict[str, Any]:
    """What the queue shows of one entry (`kindly bank unmatched --json`, the API)."""
    day = entry.booking_date or entry.value_date
    return {
        "id": entry.id,
        "date": day.isoformat() if day else None,
        "amount": str(from_minor(entry.amount_minor, entry.currency)),
        "currency": entry.currency,
        "name": entry.counterparty_name,
        "iban": entry.counterparty_iban,
        "remittance": entry.remittance,
        "reason": entry.reason,
        "statement": entry.statement_id,
    }


MAX_ID = 2**31 - 1
"""The largest id a bank_entry row can have (an INTEGER key)."""


def entry_or_fail(session: Session, entry_id: int) -> BankEntry:
    """The entry, locked for the decision, still waiting; ReviewError otherwise."""
    if not 0 < entry_id <= MAX_ID:  # beyond the column: no such entry, not a database error
        raise ReviewError(f"there is no bank entry {entry_id}")
    entry = session.scalar(
        select(BankEntry)
        .where(BankEntry.id == entry_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if entry is None:
        raise ReviewError(f"there is no bank entry {entry_id}")
    if entry.state != "unmatched":
        raise ReviewError(f"entry {entry_id} is {entry.state}, not waiting for a decision")
    return entry


def find_debtor(session: Session, reference: str, campaign: Campaign | None = None) -> Debtor:
    """A case by its reference or payment reference (in one campaign when given)."""
    text = reference.strip()
    query = select(Debtor)
    if campaign is not None:
        query = query.where(Debtor.campaign_id == campaign.id)
    payref = text.replace(" ", "").upper()
    found = list(session.scalars(query.where(Debtor.reference == text)))
    if not found and payref.startswith("RF"):
        found = list(session.scalars(query.where(Debtor.payment_reference == payref)))
    if not found:
        raise ReviewError(f"no case has the reference {text!r}")
    if len(found) > 1:
        slugs = ", ".join(sorted(d.campaign.slug for d in found))
        raise ReviewError(f"the reference {text!r} is in several campaigns ({slugs}): name one")
    return found[0]


def amount_of(text: str, currency: str) -> int:
    """A part's amount ('57.30') in minor units; ReviewError when it is not one."""
    try:
        value = parse_amount(text, currency)
    except MoneyError as error:
        raise ReviewError(f"amount {text!r}: {error}") from None
    if value <= 0:
        raise ReviewError(f"amount {text!r}: must be more than zero")
    return to_minor(value, currency)


def assign(
    session: Session, entry_id: int, debtor: Debtor, *, user: User | None, via: str
) -> BankEntry:
    """Book the whole entry to one case."""
    entry = entry_or_fail(session, entry_id)
    _check_money_in(entry)
    return _decide(session, entry, [Part(debtor, entry.amount_minor)], user=user, via=via)


def split(
    session: Session, entry_id: int, parts: Sequence[Part], *, user: User | None, via: str
) -> BankEntry:
    """Book the entry across several cases; the parts must add up to its amount exactly."""
    entry = entry_or_fail(session, entry_id)
    _check_money_in(entry)
    if len(parts) < 2:
        raise ReviewError("a split needs at least two parts")
    if len({part.debtor.id for part in parts}) != len(parts):
        raise ReviewError("a split names each case once")
    total = sum(part.amount_minor for part in parts)
    if total != entry.amount_minor:
        raise ReviewError(
            f"the parts add up to {from_minor(total, entry.currency)}, the entry is "
            f"{from_minor(entry.amount_minor, entry.currency)} {entry.currency}"
        )
    return _decide(session, entry, parts, user=user, via=via)


def not_ours(
    session: Session, entry_id: int, note: str, *, user: User | None, via: str
) -> BankEntry:
    """Mark the entry as belonging to no case, with the manager's reason."""
    entry = entry_or_fail(session, entry_id)
    note = (note or "").strip()
    if not note:
        raise ReviewError("say why the entry is not ours (a note)")
    entry.state, entry.rule, entry.note = "not_ours", None, note[:2000]
    entry.decided_by, entry.decided_at = _actor(user), utcnow()
    audit.record(session, user, "bank.not_ours", via=via, entry=entry.id, note=entry.note,
                 amount=str(from_minor(entry.amount_minor, entry.currency)),
                 currency=entry.currency)  # fmt: skip
    session.flush()
    return entry


def _check_money_in(entry: BankEntry) -> None:
    if not entry.credit or entry.is_return:
        raise ReviewError(f"entry {entry.id} is not money in: only credits are booked to cases")


def _actor(user: User | None) -> str:
    return user.email if user is not None else "operator"


def _decide(
    session: Session, entry: BankEntry, parts: Sequence[Part], *, user: User | None, via: str
) -> BankEntry:
    for part in parts:
        if part.debtor.currency != entry.currency:
            raise ReviewError(
                f"case {part.debtor.reference} is in {part.debtor.currency}, "
                f"the entry in {entry.currency}"
            )
    splitting = len(parts) > 1
    bookings = [
        Booking(
            entry.id, entry.identity, seq, part.debtor.id, part.debtor.campaign_id,
            part.amount_minor, entry.currency, matching.compact_iban(entry.counterparty_iban),
            entry.booking_date or entry.value_date, split=splitting,
        )
        for seq, part in enumerate(parts)
    ]  # fmt: skip
    book(session, bookings, {part.debtor.id: part.debtor.variant for part in parts})
    entry.state = "matched"
    entry.rule = "split" if splitting else "manual"
    entry.matched_text = ", ".join(part.debtor.reference for part in parts)[:200]
    entry.reason = None
    entry.decided_by, entry.decided_at = _actor(user), utcnow()
    for part in parts:
        audit.record(
            session, user, "bank.split" if splitting else "bank.assign", via=via,
            campaign_id=part.debtor.campaign_id, entry=entry.id, reference=part.debtor.reference,
            amount=str(from_minor(part.amount_minor, entry.currency)), currency=entry.currency,
        )  # fmt: skip
    session.flush()
    return entry
