"""What a bank statement brought, for the creditor's books: entries by outcome and rule.

Read-only: the statements and entries are written by kindly.reconciliation. One statement's
report counts and sums its entries by state (matched, unmatched, ignored, not ours, returned)
and the matched ones by the rule that placed them, per currency; "booked" is the money that
reached cases as payments (a split entry's parts included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.errors import KindlyError
from kindly.money import from_minor
from kindly.reconciliation.models import RULES, STATES, BankAllocation, BankEntry, BankStatement

LIMIT = 200
"""Statements the overview lists, newest first."""


class ReportError(KindlyError):
    """A report that cannot be made as asked."""


def statements(session: Session, limit: int = LIMIT) -> list[BankStatement]:
    """The latest statements, newest first."""
    return list(
        session.scalars(select(BankStatement).order_by(BankStatement.id.desc()).limit(limit))
    )


def statement_or_fail(session: Session, statement_id: int) -> BankStatement:
    """The statement, or ReportError naming the id."""
    statement = session.get(BankStatement, statement_id)
    if statement is None:
        raise ReportError(f"there is no bank statement {statement_id}")
    return statement


def _money(minor: int, currency: str) -> str:
    return str(from_minor(minor, currency))


def report(session: Session, statement: BankStatement) -> dict[str, Any]:
    """One statement's numbers: entries and amounts by state, matched ones by rule."""
    rows = session.execute(
        select(
            BankEntry.state, BankEntry.rule, BankEntry.currency,
            func.count(), func.coalesce(func.sum(BankEntry.amount_minor), 0),
        )
        .where(BankEntry.statement_id == statement.id)
        .group_by(BankEntry.state, BankEntry.rule, BankEntry.currency)
    ).all()  # fmt: skip
    total = func.coalesce(func.sum(BankAllocation.amount_minor), 0)
    booked = session.execute(
        select(BankEntry.currency, func.count(), total)
        .join(BankAllocation, BankAllocation.entry_id == BankEntry.id)
        .where(BankEntry.statement_id == statement.id)
        .group_by(BankEntry.currency)
    ).all()  # fmt: skip
    states: dict[str, dict[str, Any]] = {s: {"entries": 0, "amounts": {}} for s in STATES}
    rules: dict[str, dict[str, Any]] = {}
    for state, rule, currency, count, total in rows:
        bucket = states.setdefault(state, {"entries": 0, "amounts": {}})
        bucket["entries"] += count
        _add(bucket["amounts"], currency, int(total))
        if state == "matched" and rule:
            by_rule = rules.setdefault(rule, {"entries": 0, "amounts": {}})
            by_rule["entries"] += count
            _add(by_rule["amounts"], currency, int(total))
    ordered = {r: rules[r] for r in (*RULES, *sorted(rules)) if r in rules}
    return {
        "statement": statement.id,
        "format": statement.format,
        "account": statement.account,
        "statement_ref": statement.statement_ref,
        "filename": statement.filename,
        "imported_at": statement.imported_at.isoformat(),
        "imported_by": statement.imported_by,
        "entries": sum(bucket["entries"] for bucket in states.values()),
        "already_imported": statement.already_imported,
        "states": {s: _formatted(bucket) for s, bucket in states.items()},
        "matched_by_rule": {r: _formatted(bucket) for r, bucket in ordered.items()},
        "booked": {
            currency: {"payments": count, "amount": _money(int(total), currency)}
            for currency, count, total in booked
        },
    }


def _add(amounts: dict[str, int], currency: str, minor: int) -> None:
    amounts[currency] = amounts.get(currency, 0) + minor


def _formatted(bucket: dict[str, Any]) -> dict[str, Any]:
    return {
        "entries": bucket["entries"],
        "amounts": {c: _money(m, c) for c, m in sorted(bucket["amounts"].items())},
    }


def reports(session: Session, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Reports of the statements named (all of the latest when None)."""
    chosen = (
        [statement_or_fail(session, i) for i in ids] if ids is not None else statements(session)
    )
    return [report(session, statement) for statement in chosen]
