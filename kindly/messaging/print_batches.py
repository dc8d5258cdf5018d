"""Print batches: which debtors get a letter, in which order, in which file, on which pages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kindly.campaigns.models import Debtor
from kindly.infra import csvsafe

MANIFEST_COLUMNS = (
    "reference", "pages", "padded_pages", "address", "country", "postal_code",
    "batch_file", "page_range", "first_page", "last_page",
)  # fmt: skip


@dataclass(frozen=True)
class Skipped:
    """A debtor who gets no letter, and why (listed for the operator, never dropped silently)."""

    reference: str
    name: str
    reason: str


@dataclass(frozen=True)
class Placed:
    """One letter's place in a batch file."""

    reference: str
    address: tuple[str, ...]
    country: str
    postal_code: str
    batch_file: str
    pages: int  # the letter's own pages
    padded_pages: int  # with the blank pages that start the next letter on a new sheet
    first_page: int  # 1-based, in the batch file

    @property
    def last_page(self) -> int:
        """The last page of this letter in the batch file, blank padding included."""
        return self.first_page + self.padded_pages - 1


def missing_address(debtor: Debtor) -> str | None:
    """What is missing for a postal address, or None when the letter can be posted."""
    missing = [
        label
        for label, value in (
            ("street", debtor.street),
            ("postal code", debtor.postal_code),
            ("city", debtor.city),
        )
        if not (value or "").strip()
    ]
    return f"no postal address: {', '.join(missing)} missing" if missing else None


def postal_order(debtor: Debtor) -> tuple:
    """Sort key for the post: country, then postal code (digits by value), city, reference."""
    code = (debtor.postal_code or "").strip().upper()
    code_key = (0, int(code), code) if code.isdigit() else (1, 0, re.sub(r"\s+", "", code))
    return ((debtor.country or "").upper(), code_key, (debtor.city or "").upper(), debtor.reference)


def select_for_print(
    debtors: Iterable[Debtor], balances: dict[int, int], holds: dict[int, str | None] | None = None
) -> tuple[list[Debtor], list[Skipped]]:
    """The debtors to print, in postal order, and those left out with the reason (`holds`:
    each case's hold, kindly.cases — a disputed case or a running promise gets no letter)."""
    printable, skipped = [], []
    for debtor in debtors:
        name = f"{debtor.first_name or ''} {debtor.last_name}".strip()
        reason = missing_address(debtor)
        if reason is None and balances.get(debtor.id, debtor.amount_due_minor) <= 0:
            reason = "nothing owed: the claim is settled"
        hold = (holds or {}).get(debtor.id)
        if reason is None and hold:
            reason = f"held: {hold}"
        if reason:
            skipped.append(Skipped(debtor.reference, name, reason))
        else:
            printable.append(debtor)
    printable.sort(key=postal_order)
    skipped.sort(key=lambda s: s.reference)
    return printable, skipped


def chunks(items: Sequence, size: int) -> list[Sequence]:
    """`items` cut into consecutive batches of at most `size`."""
    if size < 1:
        raise ValueError("a batch holds at least one letter")
    return [items[i : i + size] for i in range(0, len(items), size)]


def padded(pages: int, pad_to: int) -> int:
    """`pages` rounded up to a multiple of `pad_to` (2 for duplex: each letter on a new sheet)."""
    return -(-pages // pad_to) * pad_to


def place(
    debtors: Sequence[Debtor],
    address_lines: Sequence[tuple[str, ...]],
    page_counts: Sequence[int],
    *,
    batch_file: str,
    pad_to: int,
) -> list[Placed]:
    """Where each letter of one batch lies in the batch file, in the order they were joined."""
    placed, next_page = [], 1
    for debtor, address, pages in zip(debtors, address_lines, page_counts, strict=True):
        row = Placed(
            reference=debtor.reference,
            address=tuple(address),
            country=(debtor.country or "").upper(),
            postal_code=debtor.postal_code or "",
            batch_file=batch_file,
            pages=pages,
            padded_pages=padded(pages, pad_to),
            first_page=next_page,
        )
        placed.append(row)
        next_page = row.last_page + 1
    return placed


def write_manifest(path: Path, rows: Iterable[Placed]) -> None:
    """The manifest CSV a print-and-mail provider checks the batch files against."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csvsafe.writer(handle)
        writer.writerow(MANIFEST_COLUMNS)
        for row in rows:
            writer.writerow([
                row.reference, row.pages, row.padded_pages, ", ".join(row.address), row.country,
                row.postal_code, row.batch_file, f"{row.first_page}-{row.last_page}",
                row.first_page, row.last_page,
            ])  # fmt: skip


def write_skipped(path: Path, rows: Iterable[Skipped]) -> None:
    """The debtors who got no letter, with the reason, for the operator to follow up."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csvsafe.writer(handle)
        writer.writerow(("reference", "name", "reason"))
        for row in rows:
            writer.writerow((row.reference, row.name, row.reason))
