"""The refund tables: each credit to hand back, and each pain.001 file that paid some out."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow

STATUSES = ("due", "approved", "exported", "done", "canceled")
"""due: computed from the ledger, waiting for a manager; approved: to go into the next file;
exported: in a pain.001 file and booked as a negative payment; done: the bank carried it out;
canceled: the credit went away before it was paid (a return, a higher claim) or a manager
said no."""
WAYS = ("transfer", "card")
"""transfer: back to the payer's account by SEPA credit transfer; card: the overpayment came
through the card provider, which refunds it (never in a SEPA file)."""


class RefundExport(Base):
    """One pain.001 file: the creditor account it pays from and the document as written."""

    __tablename__ = "refund_export"

    id: Mapped[int] = mapped_column(primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(35), unique=True)  # GrpHdr/MsgId
    account_iban: Mapped[str] = mapped_column(String(34))
    account_bic: Mapped[str | None] = mapped_column(String(11))
    account_name: Mapped[str] = mapped_column(String(70))
    currency: Mapped[str] = mapped_column(String(3))
    count: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)  # kept so a lost file can be written again
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))


class Refund(Base):
    """A debtor's credit (paid beyond the claim) to hand back to the payer, listed once."""

    __tablename__ = "refund"
    __table_args__ = (
        # one refund waits per case: a later overpayment raises it instead of adding another
        Index("uq_refund_due_debtor", "debtor_id", unique=True,
              postgresql_where=text("status = 'due'"), sqlite_where=text("status = 'due'")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    way: Mapped[str] = mapped_column(String(16))  # transfer | card
    payer_iban: Mapped[str | None] = mapped_column(String(34))
    payer_bic: Mapped[str | None] = mapped_column(String(11))
    payer_name: Mapped[str | None] = mapped_column(String(200))
    # the payment that overpaid (its payer is paid back); the negative row booked on export
    source_payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default="due", index=True)
    approved_by: Mapped[str | None] = mapped_column(String(320))
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    export_id: Mapped[int | None] = mapped_column(
        ForeignKey("refund_export.id", ondelete="SET NULL")
    )
    end_to_end_id: Mapped[str | None] = mapped_column(String(35), unique=True)
    booked_payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment.id", ondelete="SET NULL")
    )
    note: Mapped[str | None] = mapped_column(Text)  # why it was canceled
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
