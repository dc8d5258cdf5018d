"""The one shape every statement format turns into: `Entry` rows inside a `Statement`."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from kindly.errors import KindlyError
from kindly.money import MoneyError, check_currency, parse_amount, to_minor

Status = Literal["booked", "pending", "info"]

MAX_BYTES = 100 * 1024 * 1024
"""The largest statement file read; a bigger one is refused before any parsing."""


class StatementError(KindlyError):
    """A statement file that cannot be read; `where` names the element path or line."""

    def __init__(self, reason: str, where: str | None = None):
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


@dataclass(frozen=True, slots=True)
class Entry:
    """One movement on the statement's account, as the bank reported it.

    `amount_minor` is always positive, in the currency's minor units; `credit` says the
    direction (money in). Pending and informational entries are kept with their `status` so
    an importer can ignore them knowingly. `origin` names where the entry stands in its file
    (an element path or a line number) for messages and the review queue.
    """

    account: str | None
    statement_id: str
    reference: str | None
    booking_date: date | None
    value_date: date | None
    amount_minor: int
    currency: str
    credit: bool
    status: Status = "booked"
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    counterparty_bic: str | None = None
    remittance: str = ""
    creditor_reference: str | None = None
    end_to_end_id: str | None = None
    bank_code: str | None = None
    is_return: bool = False
    return_reason: str | None = None
    original_reference: str | None = None
    origin: str = ""

    @property
    def signed_minor(self) -> int:
        """The amount with its direction: positive for money in, negative for money out."""
        return self.amount_minor if self.credit else -self.amount_minor

    def fingerprint(self) -> str:
        """A digest of what the bank shows of the movement, for banks that give no reference.

        It covers the account, booking date (value date when there is none), signed amount,
        currency, counterparty name and IBAN, remittance text, the structured creditor
        reference and the payer's end-to-end id, with letter case and runs of whitespace
        ignored, so the same entry read from two overlapping statements gives the same digest
        while two transfers that differ only in their RF reference or end-to-end id stay two
        (money is never taken for already imported because a bank gave no entry reference).
        Two genuinely identical movements on one day share it: `identities` tells them apart
        by their order.
        """
        day = self.booking_date or self.value_date
        end_to_end = _norm(self.end_to_end_id)
        parts = (
            _norm(self.account),
            day.isoformat() if day else "",
            str(self.signed_minor),
            self.currency,
            _norm(self.counterparty_name),
            _norm(self.counterparty_iban).replace(" ", ""),
            _norm(self.remittance),
            _norm(self.creditor_reference).replace(" ", ""),
            "" if end_to_end == "notprovided" else end_to_end,
        )
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def _norm(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def identities(entries: Iterable[Entry]) -> list[str]:
    """The exactly-once key of each entry, in order.

    `ref:<account>:<reference>` when the bank gives an entry reference, else
    `fp:<fingerprint>:<n>` where n counts earlier entries of the same file with the same
    fingerprint (two identical transfers on one day stay two; the same file, or an overlapping
    one listing them in the same order, gives the same keys again).
    """
    seen: Counter[str] = Counter()
    keys = []
    for entry in entries:
        if entry.reference:
            keys.append(f"ref:{(entry.account or '').replace(' ', '').upper()}:{entry.reference}")
            continue
        digest = entry.fingerprint()
        keys.append(f"fp:{digest}:{seen[digest]}")
        seen[digest] += 1
    return keys


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement or notification: its account, the bank's id, and its entries."""

    account: str | None
    id: str
    created: datetime | None
    currency: str | None
    format: str
    entries: tuple[Entry, ...] = field(default=())


def currency_of(code: str | None, where: str) -> str:
    """The ISO 4217 code, or StatementError naming `where`."""
    try:
        return check_currency(code or "")
    except MoneyError as error:
        raise StatementError(str(error), where) from None


def minor_units(text: str, currency: str, where: str) -> int:
    """A '.'-decimal amount in minor units, refused when it has more decimals than the currency."""
    try:
        value = parse_amount(text, currency)
    except MoneyError as error:
        raise StatementError(
            f"amount {error}" if str(error).startswith("is ") else str(error), where
        ) from None
    if value < 0:
        raise StatementError(f"amount {text.strip()!r} is negative", where)
    return to_minor(value, currency)


def check_size(size: int) -> None:
    """Refuse a file larger than MAX_BYTES, before anything reads it."""
    if size > MAX_BYTES:
        raise StatementError(
            f"the file has {size:,} bytes, more than the {MAX_BYTES:,} a statement may have"
        )
