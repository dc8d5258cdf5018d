"""A statement file in: read whole, matched, stored as received, booked once — or nothing.

`import_statement` parses the entire file before it writes anything: a file that cannot be
read raises StatementError (naming the element or line) and leaves no row and no stored copy
behind. A readable file is kept in storage under its SHA-256 and its entries are written in the
caller's transaction; an entry whose identity is already known (the same file again, or an
overlapping statement) is counted as `already_imported` and changes nothing.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from kindly.bank import detect
from kindly.bank.entries import Entry, Statement, StatementError, identities
from kindly.campaigns.models import Campaign
from kindly.claims import offers
from kindly.infra import metrics
from kindly.infra.db import utcnow
from kindly.infra.storage import Storage
from kindly.payments.models import Payment
from kindly.reconciliation import matching
from kindly.reconciliation.booking import METHOD, Booking, reverse, settle_instalments
from kindly.reconciliation.booking import arrays as booking_arrays
from kindly.reconciliation.bulk import among, array_literal, draw_ids
from kindly.reconciliation.models import BankAllocation, BankEntry, BankStatement
from kindly.reconciliation.writer import (
    Chunk,
    Helper,
    Writer,
    bookings_of,
    chunk_size,
    threaded,
)

LOCK = 72657218
"""The advisory lock that serialises imports on PostgreSQL."""
PREFIX = "bank/statements"
"""Where statement files are kept, as received: `<PREFIX>/<sha256>.<format>`."""


@dataclass
class ImportResult:
    """What one file's import did."""

    statement_id: int
    format: str
    account: str | None
    entries: int = 0
    matched: int = 0
    unmatched: int = 0
    ignored: int = 0
    returned: int = 0
    already_imported: int = 0
    duplicate: bool = False  # the very same file was imported before
    by_rule: dict[str, int] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """For --json and the API."""
        return dataclasses.asdict(self)


def _cut(text: str | None, size: int) -> str | None:
    return text[:size] if text else text


def import_statement(
    session: Session,
    storage: Storage,
    data: bytes,
    filename: str | None = None,
    *,
    campaign: Campaign | None = None,
    account: str | None = None,
    by: str = "operator",
    mapping: Any = None,
) -> ImportResult:
    """Import one statement file in the caller's transaction (all or nothing)."""
    statements = detect.parse(data, filename, mapping)
    return import_parsed(session, storage, data, filename, statements, campaign=campaign,
                         account=account, by=by)  # fmt: skip


def import_parsed(
    session: Session,
    storage: Storage,
    data: bytes,
    filename: str | None,
    statements: list[Statement],
    *,
    campaign: Campaign | None = None,
    account: str | None = None,
    by: str = "operator",
) -> ImportResult:
    """Import the statements already read from `data` (the file's bytes, kept as received)."""
    # Each entry makes several objects that live to the end: the cyclic garbage collector
    # would scan them again and again (as in kindly.campaigns.portfolio.write).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _import(session, storage, data, filename, statements, campaign, account, by)
    finally:
        if collecting:
            gc.enable()


def _import(session, storage, data, filename, statements, campaign, account, by) -> ImportResult:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # one import at a time: a second one (an overlapping file from the watched folder and
        # the dashboard at once) waits and then finds the first one's entries already known
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})
    account = matching.compact_iban(account)
    entries: list[Entry] = []
    for statement in statements:
        if account and statement.account and statement.account != account:
            raise StatementError(f"the file is for account {statement.account}, not {account}")
        for entry in statement.entries:
            entries.append(
                entry
                if entry.account or not account
                else dataclasses.replace(entry, account=account)
            )
    kind = statements[0].format if statements else detect.detect(data, filename)
    file_account = account or next((s.account for s in statements if s.account), None)
    sha = hashlib.sha256(data).hexdigest()
    earlier = session.scalar(select(BankStatement).where(BankStatement.sha256 == sha))
    if earlier is not None:
        return ImportResult(earlier.id, earlier.format, earlier.account, entries=len(entries),
                            already_imported=len(entries), duplicate=True)  # fmt: skip

    narrowed = [campaign.id] if campaign is not None else None
    key = f"{PREFIX}/{sha}.{'xml' if kind.startswith('camt') else kind}"
    with Helper(threaded(connection)) as helper:
        # ids for every entry of the file, drawn by the server while Python computes the
        # entries' identities: those of entries already imported stay unused, as a
        # rolled-back insert's would (a sequence promises no unbroken run)
        drawing = helper.run(_draw, session, len(entries))
        keys = identities(entries)
        ids = drawing.result()
        index = matching.load(session, narrowed)
        known = _known(session, keys)
        fresh: list[tuple[str, Entry]] = []
        for identity, entry in zip(keys, entries, strict=True):
            if identity not in known:
                known.add(identity)  # a bank repeating a reference in one file: the first counts
                fresh.append((identity, entry))
        # the file goes to storage while the entries are decided and written; the import
        # fails (and rolls back) if it could not be kept
        keeping = helper.run(storage.put, key, data, "application/octet-stream", own=True)
        result = _book_file(session, statements, kind, file_account, filename, key, sha,
                            by, campaign, entries, index, fresh, ids)  # fmt: skip
        keeping.result()
    return result


def _book_file(session, statements, kind, file_account, filename, key, sha, by, campaign,
               entries, index, fresh, ids) -> ImportResult:  # fmt: skip
    row = BankStatement(
        format=kind[:16], account=file_account, filename=(filename or "")[:255] or None,
        statement_ref=", ".join(s.id for s in statements)[:200] or None, storage_key=key,
        sha256=sha, imported_by=by[:320], campaign_id=campaign.id if campaign else None,
        entries=len(entries), already_imported=len(entries) - len(fresh),
        matched=0, unmatched=0, ignored=0, returned=0,
    )  # fmt: skip
    session.add(row)
    session.flush()
    result = ImportResult(row.id, row.format, row.account, entries=len(entries),
                          already_imported=row.already_imported)  # fmt: skip
    _write(session, index, row.id, fresh, result, ids)
    for name in ("matched", "unmatched", "ignored", "returned"):
        setattr(row, name, getattr(result, name))
    session.flush()
    return result


def _known(session: Session, keys: list[str]) -> set[str]:
    known: set[str] = set()
    if not keys:
        return known
    connection = session.connection()
    if threaded(connection):  # one text parameter the server parses, not 100,000 dumped
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(
                # a join the planner can take key by key through the unique index (an ANY
                # over an array it cannot see at plan time would be compared row by row)
                "SELECT e.identity FROM unnest(%s::text::text[]) AS k (identity) "
                "JOIN bank_entry e ON e.identity = k.identity",
                (array_literal(keys),),
            )
            return {row[0] for row in cursor.fetchall()}
        finally:
            cursor.close()
    for condition in among(connection, BankEntry.__table__.c.identity, keys):
        known.update(session.scalars(select(BankEntry.identity).where(condition)))
    return known


def _write(
    session: Session,
    index: matching.Index,
    statement_id: int,
    fresh: list[tuple[str, Entry]],
    result: ImportResult,
    ids: list[int] | None,
) -> None:
    """Decide every fresh entry, write them, book the matched ones and reverse the returns.

    Deciding is Python's work and writing the database's; on PostgreSQL they overlap: this
    thread decides a chunk of entries and prepares its rows and bookings as columns, and a
    writer thread sends them over the session's connection while the next chunk is decided
    (the waits on the server release the GIL). The ids are drawn beforehand, so no chunk
    waits for another's (`ids`: drawn for PostgreSQL, at least one per fresh entry; None
    elsewhere, where each chunk is written at once, in order)."""
    connection = session.connection()
    writer = Writer(connection, threaded=ids is not None)
    states: list[str] = []
    returns: list[int] = []
    matched: list[Booking] = []
    planned = {d for d, case in index.cases.items() if case.next_instalment_minor is not None}
    size = chunk_size(len(fresh))
    try:
        for start in range(0, len(fresh), size):
            rows: list[tuple] = []
            bookings: list[tuple[int, Entry, matching.Match]] = []
            for number in range(start, min(start + size, len(fresh))):
                key, entry = fresh[number]
                state, verdict, reason = _decide(index, entry)
                if state == "returned":
                    returns.append(number)
                elif state == "matched":
                    index.paid(
                        verdict.debtor_id,
                        entry.amount_minor,
                        matching.compact_iban(entry.counterparty_iban),
                    )
                    result.by_rule[verdict.rule] = result.by_rule.get(verdict.rule, 0) + 1
                    bookings.append((number, entry, verdict))
                states.append(state)
                rows.append(_row(statement_id, key, entry, state, verdict, reason))
            if ids is None:  # the entries' ids come back from the insert
                writer.send(Chunk(rows, None, start, bookings))
                continue
            chunk = bookings_of(ids, bookings, fresh, index)
            matched.extend(chunk)
            variants = {b.debtor_id: index.cases[b.debtor_id].variant for b in chunk}
            given = ids[start : start + len(rows)]
            writer.send(Chunk(rows, given, start, None, booking_arrays(chunk, variants)))
    finally:
        entry_ids = writer.close(fresh, index, matched)
    settle_instalments(session, matched, planned)
    # a transfer of an offer's amount settles the case: the rest is written off, once
    offers.settle_offers(session, sorted({booking.debtor_id for booking in matched}))
    metrics.count_payment(METHOD, session, len(matched))
    for state in states:
        if state != "returned":  # returns count once their original is looked up
            setattr(result, state, getattr(result, state) + 1)
    for number in returns:
        _return(session, entry_ids[number], fresh[number][1], fresh[number][0], result)


def _draw(session: Session, count: int) -> list[int] | None:
    """`count` new bank_entry ids where the writer thread runs (PostgreSQL), else None."""
    connection = session.connection()
    return draw_ids(connection, BankEntry.__table__, count) if threaded(connection) else None


def _decide(index: matching.Index, entry: Entry):
    """(state, match, reason) of one entry before anything is written."""
    if entry.status != "booked":
        return "ignored", None, f"{entry.status} entry"
    if entry.is_return:
        return "returned", None, None  # decided once the original is looked up
    if not entry.credit:
        return "ignored", None, "money out"
    if entry.amount_minor <= 0:
        return "ignored", None, "no amount"
    verdict = matching.match(index, entry)
    if verdict.debtor_id is None:
        return "unmatched", verdict, verdict.reason
    return "matched", verdict, None


def _row(statement_id: int, key: str, entry: Entry, state: str, verdict, reason) -> tuple:
    return (
        statement_id, key, _cut(entry.account, 34), _cut(entry.reference, 200),
        entry.booking_date, entry.value_date, entry.amount_minor, entry.currency, entry.credit,
        entry.status, _cut(entry.counterparty_name, 200),
        _cut(matching.compact_iban(entry.counterparty_iban), 34), _cut(entry.counterparty_bic, 11),
        entry.remittance or "", _cut(entry.creditor_reference, 64), _cut(entry.end_to_end_id, 64),
        _cut(entry.bank_code, 64), entry.is_return, _cut(entry.return_reason, 64),
        _cut(entry.original_reference, 200), (entry.origin or "")[:200], state,
        verdict.rule if verdict is not None else None,
        _cut(verdict.text, 200) if verdict is not None else None, _cut(reason, 200),
    )  # fmt: skip


def _return(session: Session, entry_id: int, entry: Entry, key: str, result: ImportResult) -> None:
    """Reverse the payments of the entry a returned transfer names; else it is ignored."""
    row = session.get(BankEntry, entry_id)
    original = None
    if entry.original_reference:
        original = session.scalar(
            select(BankEntry)
            .where(
                BankEntry.end_to_end_id == entry.original_reference[:64],
                BankEntry.state == "matched",
                BankEntry.id != entry_id,
            )
            .order_by(BankEntry.id)
        )
    if original is None:
        row.state, row.reason = "ignored", "a return of a transfer not booked here"
        result.ignored += 1
        return
    allocated = session.execute(
        select(BankAllocation, Payment)
        .join(Payment, Payment.id == BankAllocation.payment_id)
        .where(BankAllocation.entry_id == original.id)
        .order_by(BankAllocation.seq)
    ).all()
    for allocation, payment in allocated:
        reverse(session, payment, f"{key}#{allocation.seq}", payment.amount_minor)
    original.state, original.reason = "returned", f"returned by entry {entry_id}"
    row.state, row.rule, row.matched_text = "returned", "return", entry.original_reference[:200]
    row.decided_at = utcnow()
    result.returned += 1
