"""The bank tables: each statement file received, each entry on it (once, by its identity),
and how a booked entry's money was allocated to cases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow

STATES = ("matched", "unmatched", "ignored", "not_ours", "returned")
"""matched: booked to one or more cases (by a rule or a manager); unmatched: waits in the
review queue; ignored: not money in (a debit, a fee, a pending or informational entry);
not_ours: a manager said it belongs to no case; returned: a return that reversed a payment."""
RULES = ("rf", "reference", "iban", "name_amount", "manual", "split", "return")
"""What matched an entry, in the order the importer tries them (manual and split: a manager)."""


class BankStatement(Base):
    """One statement file as received: where it is stored and what its import did."""

    __tablename__ = "bank_statement"

    id: Mapped[int] = mapped_column(primary_key=True)
    format: Mapped[str] = mapped_column(String(16))  # camt | mt940 | csv
    account: Mapped[str | None] = mapped_column(String(34))
    statement_ref: Mapped[str | None] = mapped_column(String(200))  # the bank's statement id(s)
    filename: Mapped[str | None] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(320))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign.id", ondelete="SET NULL")
    )  # matched only against this campaign, when narrowed
    entries: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    unmatched: Mapped[int] = mapped_column(Integer, default=0)
    ignored: Mapped[int] = mapped_column(Integer, default=0)
    returned: Mapped[int] = mapped_column(Integer, default=0)
    already_imported: Mapped[int] = mapped_column(Integer, default=0)


class BankEntry(Base):
    """One movement of a statement, stored once by its identity (kindly.bank.entries)."""

    __tablename__ = "bank_entry"
    __table_args__ = (
        Index("ix_bank_entry_waiting", "id", postgresql_where=text("state = 'unmatched'"),
              sqlite_where=text("state = 'unmatched'")),
        Index("ix_bank_entry_end_to_end_id", "end_to_end_id",
              postgresql_where=text("end_to_end_id IS NOT NULL"),
              sqlite_where=text("end_to_end_id IS NOT NULL")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(
        ForeignKey("bank_statement.id", ondelete="CASCADE"), index=True
    )
    identity: Mapped[str] = mapped_column(String(200), unique=True)
    account: Mapped[str | None] = mapped_column(String(34))
    entry_ref: Mapped[str | None] = mapped_column(String(200))
    booking_date: Mapped[dt.date | None] = mapped_column(Date)
    value_date: Mapped[dt.date | None] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    credit: Mapped[bool] = mapped_column(Boolean)
    bank_status: Mapped[str] = mapped_column(String(16))  # booked | pending | info
    counterparty_name: Mapped[str | None] = mapped_column(String(200))
    counterparty_iban: Mapped[str | None] = mapped_column(String(34))
    counterparty_bic: Mapped[str | None] = mapped_column(String(11))
    remittance: Mapped[str] = mapped_column(Text, default="")
    creditor_reference: Mapped[str | None] = mapped_column(String(64))
    end_to_end_id: Mapped[str | None] = mapped_column(String(64))  # indexed where not null
    bank_code: Mapped[str | None] = mapped_column(String(64))
    is_return: Mapped[bool] = mapped_column(Boolean, default=False)
    return_reason: Mapped[str | None] = mapped_column(String(64))
    original_reference: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16))  # indexed where unmatched: the queue
    rule: Mapped[str | None] = mapped_column(String(16))
    matched_text: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(200))  # why it waits, or why it was ignored
    note: Mapped[str | None] = mapped_column(Text)  # a manager's word on a decision
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[dt.datetime | None] = mapped_column()


class BankAllocation(Base):
    """Part (or all) of a booked entry's money, booked to one case as one payment row."""

    __tablename__ = "bank_allocation"
    __table_args__ = (UniqueConstraint("entry_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Keyed to its payment only (migration 1002): a debtor erased takes the payments and so
    # the allocations; entries are never deleted, and the importer writes an allocation only
    # for the entry it wrote in the same transaction. Each key checked costs about as much as
    # the row itself.
    entry_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer, default=0)  # the split's index; 0 for a whole entry
    campaign_id: Mapped[int] = mapped_column(Integer)
    debtor_id: Mapped[int] = mapped_column(Integer, index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id", ondelete="CASCADE"))
