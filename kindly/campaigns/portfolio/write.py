"""Writing a validated portfolio: new debtors get a token, known references are updated, all
in the caller's transaction."""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from kindly.bank.rf import rf_for
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio.items import ItemChanges, keep_paid, known_items, write_items
from kindly.campaigns.portfolio.read import PortfolioRejected, RowError, SourceRow
from kindly.campaigns.portfolio.validate import CleanRow, validate_rows
from kindly.campaigns.tokens import new_token
from kindly.infra import csvsafe
from kindly.infra.db import utcnow


@dataclass
class ImportResult:
    """What an import did."""

    created: int = 0
    updated: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    items: ItemChanges = field(default_factory=ItemChanges)


COLUMNS = (
    "reference", "first_name", "last_name", "salutation", "email", "phone", "locale",
    "currency", "amount_due_minor", "principal_minor", "interest_minor", "fees_minor",
    "due_date", "creditor", "contract", "street", "postal_code", "city", "country",
    "birth_date",
)  # fmt: skip
"""The debtor columns an import sets; `attributes` holds every other column of the file."""
BATCH = 5_000
"""Rows per INSERT/UPDATE statement when COPY is not available."""


def import_portfolio(
    session: Session,
    campaign: Campaign,
    rows: list[SourceRow],
    *,
    skip_invalid: bool = False,
    write: str = "bulk",
) -> tuple[ImportResult, list[tuple[SourceRow, list[RowError]]]]:
    """Validate and write the rows; without skip_invalid any error writes nothing.

    New debtors get a token; known references keep theirs and have every column and their
    attributes replaced. Everything happens in the caller's transaction (all or nothing).
    `write="bulk"` (the default) writes with COPY on PostgreSQL and batched statements
    elsewhere; `write="orm"` is the former one-object-at-a-time path, kept as the benchmark's
    baseline.

    Returns the result and the rejected rows with their errors (for the rejects file).
    """
    if write not in ("bulk", "orm"):
        raise ValueError(f"write must be 'bulk' or 'orm', not {write!r}")
    # A portfolio makes several objects per row that all live until the end: the cyclic
    # garbage collector would scan them again and again (a fifth of the time at 100k rows).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _import(session, campaign, rows, skip_invalid=skip_invalid, write=write)
    finally:
        if collecting:
            gc.enable()


def _import(
    session: Session, campaign: Campaign, rows: list[SourceRow], *, skip_invalid: bool, write: str
) -> tuple[ImportResult, list[tuple[SourceRow, list[RowError]]]]:
    clean, errors = validate_rows(rows)
    rejected: list[tuple[SourceRow, list[RowError]]] = []
    if errors:
        if not skip_invalid:
            raise PortfolioRejected(errors)
        by_row: dict[int, list[RowError]] = {}
        for error in errors:
            by_row.setdefault(error.row, []).append(error)
        kept = {row.fields["reference"] for row in clean}
        for row in rows:  # a case is written whole: its other rows go with a rejected one
            reference = (row.values.get("reference") or "").strip()
            if row.number not in by_row and reference and reference not in kept:
                by_row[row.number] = [
                    RowError(row.number, "reference", f"case {reference!r} has an invalid row")
                ]
        rejected = [(row, by_row[row.number]) for row in rows if row.number in by_row]

    result = ImportResult(rejected=len(rejected), errors=errors)
    session.flush()
    known = known_items(session, campaign, clean)
    if known is not None:
        keep_paid(clean, known)
    if write == "orm":
        _write_orm(session, campaign, clean, result)
    else:
        _write_bulk(session, campaign, clean, result)
    if known is not None:
        result.items = write_items(session, campaign, clean, known)
    return result, rejected


def _write_orm(
    session: Session, campaign: Campaign, clean: list[CleanRow], result: ImportResult
) -> None:
    """One ORM object per debtor (the baseline: about 1,500 rows/s on PostgreSQL)."""
    existing = {
        debtor.reference: debtor
        for debtor in session.scalars(select(Debtor).where(Debtor.campaign_id == campaign.id))
    }
    for row in clean:
        fields = dict(row.fields)
        debtor = existing.get(fields["reference"])
        if debtor is None:
            debtor = Debtor(campaign_id=campaign.id, token=new_token())
            session.add(debtor)
            existing[fields["reference"]] = debtor
            result.created += 1
        else:
            result.updated += 1
        for column in COLUMNS:
            setattr(debtor, column, fields.get(column))
        debtor.attributes = row.attributes
    session.flush()


NEW = (*COLUMNS, "attributes", "campaign_id", "token", "segment", "variant", "channel",
       "created_at", "updated_at", "payment_reference")  # fmt: skip
CHANGED = ("id", *COLUMNS, "attributes", "updated_at")


def _write_bulk(
    session: Session, campaign: Campaign, clean: list[CleanRow], result: ImportResult
) -> None:
    """Insert new debtors and update changed ones in bulk, in the session's transaction."""
    session.flush()  # the campaign has its id; the caller's pending objects are written first
    table = Debtor.__table__
    compared = [table.c.id, *(table.c[name] for name in COLUMNS), table.c.attributes]
    existing = {
        row[1]: row
        for row in session.execute(select(*compared).where(table.c.campaign_id == campaign.id))
    }
    now = utcnow()
    # the columns' scalar defaults, as the ORM would set them
    segment, variant, channel = (table.c[n].default.arg for n in ("segment", "variant", "channel"))
    new: list[tuple] = []
    changed: list[tuple] = []
    for row in clean:
        fields = row.fields
        values = (*[fields.get(name) for name in COLUMNS], row.attributes)
        before = existing.get(values[0])
        if before is None:
            new.append(
                (*values, campaign.id, new_token(), segment, variant, channel, now, now,
                 rf_for(campaign.slug, values[0]))
            )  # fmt: skip
        elif tuple(before[1:]) != values:
            changed.append((before[0], *values, now))
    result.created += len(new)
    result.updated += len(clean) - len(new)

    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        _copy_postgresql(connection, new, changed)
    else:
        for start in range(0, len(new), BATCH):
            batch = [dict(zip(NEW, v, strict=True)) for v in new[start : start + BATCH]]
            connection.execute(insert(table), batch)
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in CHANGED[1:]})
        )
        for start in range(0, len(changed), BATCH):
            batch = [
                dict(zip(("_id", *CHANGED[1:]), v, strict=True))
                for v in changed[start : start + BATCH]
            ]
            connection.execute(statement, batch)
    # Debtor objects the session already holds are stale now: reload them on next access.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Debtor):
            session.expire(obj)
    if "debtors" in campaign.__dict__:
        session.expire(campaign, ["debtors"])


def _copy_postgresql(connection, new: list[tuple], changed: list[tuple]) -> None:
    """COPY new debtors straight into the table; COPY changed ones beside it and UPDATE FROM."""
    # every name in these statements is one of the column constants above, never input
    cursor = connection.connection.driver_connection.cursor()
    at = len(COLUMNS)  # where `attributes` sits in both tuples (after the id in `changed`)
    if new:
        with cursor.copy(f"COPY debtor ({', '.join(NEW)}) FROM STDIN") as copy:
            for values in new:
                copy.write_row((*values[:at], _json(values[at]), *values[at + 1 :]))
    if changed:
        columns = ", ".join(CHANGED)
        cursor.execute(
            f"CREATE TEMPORARY TABLE kindly_import AS SELECT {columns} FROM debtor WITH NO DATA"  # noqa: S608
        )
        with cursor.copy(f"COPY kindly_import ({columns}) FROM STDIN") as copy:
            for values in changed:
                copy.write_row((*values[: at + 1], _json(values[at + 1]), *values[at + 2 :]))
        assignments = ", ".join(f"{name} = i.{name}" for name in CHANGED[1:])
        cursor.execute(
            f"UPDATE debtor SET {assignments} FROM kindly_import i WHERE debtor.id = i.id"  # noqa: S608
        )
        cursor.execute("DROP TABLE kindly_import")
    cursor.close()


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json(value: dict[str, Any]) -> str:
    return _encode(value) if value else "{}"


def write_rejects(path: Path, rejected: list[tuple[SourceRow, list[RowError]]]) -> None:
    """Write the rejected rows as CSV with their row number and a reason column."""
    columns: list[str] = []
    for row, _ in rejected:
        for key in row.values:
            if key not in columns and key != "__shape__":
                columns.append(key)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csvsafe.writer(handle)
        writer.writerow(["row", *columns, "reason"])
        for row, errors in rejected:
            reason = "; ".join(f"{e.column}: {e.reason}" for e in errors)
            writer.writerow([row.number, *(row.values.get(c, "") for c in columns), reason])
