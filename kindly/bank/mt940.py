"""SWIFT MT940 statements, read through the `mt-940` package with German `:86:` subfields.

mt-940 is used with every fix of `mt940.Options.all()` on: without them it files the `?31`
account under the counterparty's name and cuts `:86:` after nine 65-character chunks. It
splits the structured `:86:` (`?00` posting text, `?10` prima nota, `?20`–`?29` remittance
joined, then `SVWZ+`, `EREF+`, `KREF+`, `MREF+`, `CRED+`, `ABWA+` split out, `?30` BIC, `?31`
IBAN, `?32`–`?33` name, `?34` return reason, the GVC before the first `?`). What it does not
do is say where a broken line is: each `:61:` is checked here first against mt-940's own
pattern, so a refusal names its line.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import mt940

from kindly.bank import rf
from kindly.bank.entries import (
    Entry,
    Statement,
    StatementError,
    check_size,
    currency_of,
    minor_units,
)

TAG = re.compile(r"^:(\d{2}[A-Z]?|NS):", re.MULTILINE)
STATEMENT_LINE = mt940.tags.Tags.STATEMENT.value
RETURN_GVC = frozenset({"109", "159", "169"})
"""GVCs of money given back: a returned direct debit, a returned or recalled transfer."""
OPTIONS = mt940.Options.all()
NO_REFERENCE = frozenset({"", "NONREF", "NOTPROVIDED"})


def looks_like(text: str) -> bool:
    """Whether text has the tags of an MT940 statement."""
    return bool(re.search(r"^:20:", text, re.MULTILINE)) and (":25:" in text or ":61:" in text)


def decode(data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), else Latin-1 as German banks send it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse(data: bytes) -> list[Statement]:
    """Every statement of the file (one per `:20:` block), in order."""
    check_size(len(data))
    text = decode(data)
    lines = _statement_lines(text)
    try:
        blocks = mt940.parse_statements(text, options=OPTIONS)
    except (RuntimeError, ValueError, KeyError, ArithmeticError) as error:
        raise StatementError(f"MT940 not readable: {_reason(error)}", _where(error, text)) from None
    statements = []
    numbers = iter(lines)
    for block in blocks:
        statements.append(_statement(block, numbers))
    if not statements:
        raise StatementError("no MT940 statement (:20: … :61:) found")
    return statements


def _statement_lines(text: str) -> list[int]:
    """The line number of every `:61:`, each checked against mt-940's statement-line pattern."""
    tags = list(TAG.finditer(text))
    numbers = []
    line, counted = 1, 0
    for index, tag in enumerate(tags):
        if tag.group(1) != "61":
            continue
        line += text.count("\n", counted, tag.start())  # counted on from the last :61:
        counted = tag.start()
        stop = tags[index + 1].start() if index + 1 < len(tags) else len(text)
        value = text[tag.end() : stop].strip()
        match = STATEMENT_LINE.re.match(value)
        if not match:
            raise StatementError(
                f"the :61: statement line {value.splitlines()[0] if value else ''!r} is not "
                "YYMMDD[MMDD], C/D/RC/RD, amount with ',' and a 4-character type",
                f"line {line}",
            )
        try:
            date(2000 + int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError:
            raise StatementError(
                f"the :61: statement line has no valid value date ({value[:6]!r})", f"line {line}"
            ) from None
        if match["amount"].count(",") != 1:
            raise StatementError(
                f"the amount {match['amount']!r} of the :61: line needs exactly one ','",
                f"line {line}",
            )
        numbers.append(line)
    return numbers


def _statement(block: Any, numbers: Any) -> Statement:
    data = block.data
    balance = data.get("final_opening_balance") or data.get("opening_balance")
    currency = balance.amount.currency if balance is not None else None
    account = (data.get("account_identification") or "").replace(" ", "") or None
    number = "/".join(
        part for part in (data.get("statement_number"), data.get("sequence_number")) if part
    )
    statement_id = ":".join(part for part in (data.get("transaction_reference"), number) if part)
    entries = tuple(
        _entry(transaction.data, account, statement_id, next(numbers)) for transaction in block
    )
    return Statement(
        account=account,
        id=statement_id,
        created=None,
        currency=currency_of(currency, "the opening balance :60F:") if currency else None,
        format="mt940",
        entries=entries,
    )


def _entry(t: dict[str, Any], account: str | None, statement_id: str, line: int) -> Entry:
    where = f"line {line}"
    amount = t["amount"]
    currency = currency_of(amount.currency, where)
    minor = minor_units(str(abs(Decimal(amount.amount))), currency, where)
    status = (t.get("status") or "").upper()
    gvc = t.get("transaction_code")
    is_return = status.startswith("R") or gvc in RETURN_GVC
    value_day = _day(t.get("date"))
    bank_reference = (t.get("bank_reference") or "").strip()
    end_to_end = (t.get("end_to_end_reference") or "").strip()
    remittance = t.get("purpose")
    if remittance is None and "transaction_details" in t:  # an unstructured :86:
        remittance = " ".join((t["transaction_details"] or "").split())
    iban = (t.get("applicant_iban") or "").replace(" ", "").upper()
    reason = (t.get("return_debit_notes") or "").strip()
    return Entry(
        account=account,
        statement_id=statement_id,
        reference=None if bank_reference.upper() in NO_REFERENCE else bank_reference,
        booking_date=_day(t.get("entry_date")) or value_day,
        value_date=value_day,
        amount_minor=minor,
        currency=currency,
        credit=status in ("C", "RD"),
        counterparty_name=(t.get("applicant_name") or "").strip() or None,
        counterparty_iban=iban or None,
        counterparty_bic=(t.get("applicant_bin") or "").strip() or None,
        remittance=(remittance or "").strip(),
        creditor_reference=_leading_rf(remittance or ""),
        end_to_end_id=None if end_to_end.upper() in NO_REFERENCE else end_to_end,
        bank_code=gvc or t.get("id"),
        is_return=is_return,
        return_reason=reason if is_return and reason.strip("0") else None,
        original_reference=end_to_end or None if is_return else None,
        origin=where,
    )


def _leading_rf(text: str) -> str | None:
    """The RF reference a SEPA transfer's structured remittance puts first in SVWZ+."""
    if text.lstrip()[:2].upper() != "RF":
        return None
    found = rf.find(text.lstrip()[:40])
    return found[0] if found else None


def _day(value: Any) -> date | None:
    return date(value.year, value.month, value.day) if value else None


def _reason(error: Exception) -> str:
    return str(error.args[0]) if error.args else type(error).__name__


def _where(error: Exception, text: str) -> str | None:
    """The line of the value mt-940 could not read, when its error names one."""
    if len(error.args) >= 3 and isinstance(error.args[2], str) and error.args[2].strip():
        first = error.args[2].strip().splitlines()[0]
        position = text.find(first)
        if position >= 0:
            return f"line {text.count(chr(10), 0, position) + 1}"
    return None
