"""Bank CSV exports read through a saved column mapping.

A mapping is a plain dict, saved once per bank export layout:

    {"date": "Buchungstag", "value_date": "Valuta", "amount": "Betrag",
     "currency": "Währung", "name": "Auftraggeber", "iban": "IBAN",
     "remittance": ["Verwendungszweck", "Verwendungszweck 2"], "reference": "Referenz",
     "decimal": ",", "date_format": "%d.%m.%Y", "encoding": "utf-8",
     "account": "DE89370400440532013000"}

`amount` (signed) or the pair `debit` and `credit` (two columns, each positive) is required,
as is `date`. `currency` names a column; `currency_code` gives one code for the whole file
(default EUR). The delimiter is sniffed unless `delimiter` is given; the encoding is UTF-8
(with or without a byte-order mark) and falls back to Latin-1 unless `encoding` says which.
Cells are text: one that looks like a spreadsheet formula is kept as the characters it is.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import date, datetime
from typing import Any

from kindly.bank.entries import (
    Entry,
    Statement,
    StatementError,
    check_size,
    currency_of,
    minor_units,
)

COLUMNS = (
    "date",
    "value_date",
    "amount",
    "debit",
    "credit",
    "currency",
    "name",
    "iban",
    "bic",
    "remittance",
    "reference",
)
SETTINGS = ("decimal", "date_format", "delimiter", "encoding", "currency_code", "account")
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1")


def check_mapping(mapping: Any) -> dict[str, Any]:
    """The mapping with defaults filled in, or StatementError naming what is wrong."""
    if not isinstance(mapping, dict):
        raise StatementError("the CSV mapping must be an object of column names")
    unknown = sorted(set(mapping) - set(COLUMNS) - set(SETTINGS))
    if unknown:
        raise StatementError(f"the CSV mapping has unknown keys: {', '.join(unknown)}")
    if not mapping.get("date"):
        raise StatementError("the CSV mapping needs 'date': the column of the booking date")
    has_amount = bool(mapping.get("amount"))
    has_pair = bool(mapping.get("debit")) and bool(mapping.get("credit"))
    if has_amount == has_pair:
        raise StatementError(
            "the CSV mapping needs either 'amount' (signed) or both 'debit' and 'credit'"
        )
    result = {"decimal": ".", "date_format": "%Y-%m-%d", "currency_code": "EUR", **mapping}
    if result["decimal"] not in (".", ","):
        raise StatementError(f"'decimal' is {result['decimal']!r}; use '.' or ','")
    if result.get("encoding", "utf-8") not in ENCODINGS:
        raise StatementError(f"'encoding' is {result['encoding']!r}; use {', '.join(ENCODINGS)}")
    delimiter = result.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise StatementError(f"'delimiter' is {delimiter!r}; use one character such as ';'")
    try:
        datetime.strptime(date(2026, 12, 31).strftime(result["date_format"]), result["date_format"])
    except (ValueError, TypeError):
        raise StatementError(
            f"'date_format' {result['date_format']!r} is not a date format"
        ) from None
    for key in COLUMNS:
        value = result.get(key)
        columns = value if isinstance(value, list) else [value]
        if value is not None and not all(isinstance(c, str) and c for c in columns):
            raise StatementError(f"'{key}' must name a column (or, for remittance, a list)")
    currency_of(result["currency_code"], "the mapping's currency_code")
    return result


def parse(data: bytes, mapping: Any, filename: str | None = None) -> list[Statement]:
    """The CSV file's rows as one statement; a bad row is refused with its number."""
    check_size(len(data))
    spec = check_mapping(mapping)
    text = _decode(data, spec.get("encoding"))
    delimiter = spec.get("delimiter") or _sniff(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise StatementError("the CSV file is empty")
    index = {name.strip(): i for i, name in enumerate(header)}
    for key in COLUMNS:
        value = spec.get(key)
        for column in value if isinstance(value, list) else [value] if value else []:
            if column not in index:
                raise StatementError(
                    f"the mapping's {key!r} column {column!r} is not in the header "
                    f"({', '.join(repr(h) for h in header)})",
                    "row 1",
                )
    account = (spec.get("account") or "").replace(" ", "").upper() or None
    statement_id = "csv:" + hashlib.sha256(data).hexdigest()[:16]
    entries = []
    for number, row in enumerate(reader, start=2):  # row 1 is the header, as a spreadsheet counts
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise StatementError(f"has {len(row)} cells, the header {len(header)}", f"row {number}")
        entries.append(_entry(row, index, spec, account, statement_id, number))
    return [Statement(account, statement_id, None, None, "csv", tuple(entries))]


def _entry(row, index, spec, account, statement_id, number) -> Entry:
    where = f"row {number}"

    def cell(key: str) -> str:
        column = spec.get(key)
        return row[index[column]].strip() if column else ""

    currency = currency_of(cell("currency") or spec["currency_code"], f"{where}, currency")
    if spec.get("amount"):
        signed = _amount(cell("amount"), spec["decimal"], currency, f"{where}, {spec['amount']}")
    else:
        debit = cell("debit")
        credit = cell("credit")
        if bool(debit) == bool(credit):
            raise StatementError("needs an amount in exactly one of debit and credit", where)
        column = spec["debit"] if debit else spec["credit"]
        signed = abs(_amount(debit or credit, spec["decimal"], currency, f"{where}, {column}"))
        signed = -signed if debit else signed
    remittance = spec.get("remittance")
    columns = remittance if isinstance(remittance, list) else [remittance] if remittance else []
    text = " ".join(row[index[c]].strip() for c in columns if row[index[c]].strip())
    iban = cell("iban").replace(" ", "").upper()
    return Entry(
        account=account,
        statement_id=statement_id,
        reference=cell("reference") or None,
        booking_date=_date(cell("date"), spec["date_format"], f"{where}, {spec['date']}"),
        value_date=_date(cell("value_date"), spec["date_format"], f"{where}, value_date")
        if cell("value_date")
        else None,
        amount_minor=abs(signed),
        currency=currency,
        credit=signed >= 0,
        counterparty_name=cell("name") or None,
        counterparty_iban=iban or None,
        counterparty_bic=cell("bic") or None,
        remittance=text,
        origin=where,
    )


_NUMBER = re.compile(r"[+-]?[0-9][0-9.,' ]*[+-]?")


def _amount(text: str, decimal: str, currency: str, where: str) -> int:
    """Signed minor units from '1.234,56', '-57,30', '57,30-' or '1,234.56'."""
    raw = text.replace("\u00a0", " ").strip()
    if not _NUMBER.fullmatch(raw):
        raise StatementError(f"{raw!r} is not an amount", where)
    negative = raw.startswith("-") or raw.endswith("-")
    digits = raw.strip("+-").replace(" ", "").replace("'", "")
    thousands = "." if decimal == "," else ","
    # a thousands separator only between groups of three: '57,30' read with decimal '.' is
    # refused, never taken for 5730
    grouped = rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+(?:{re.escape(decimal)}\d+)?"
    plain = rf"\d+(?:{re.escape(decimal)}\d+)?"
    if not (re.fullmatch(plain, digits) or re.fullmatch(grouped, digits)):
        raise StatementError(f"{raw!r} is not an amount written with {decimal!r} decimals", where)
    digits = digits.replace(thousands, "").replace(decimal, ".")
    minor = minor_units(digits, currency, where)
    return -minor if negative else minor


def _date(text: str, pattern: str, where: str) -> date:
    try:
        return datetime.strptime(text, pattern).date()
    except ValueError:
        raise StatementError(f"{text!r} is not a date in the format {pattern!r}", where) from None


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding:
        try:
            return data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
        except UnicodeDecodeError as error:
            raise StatementError(f"the file is not {encoding} (byte {error.start})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _sniff(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=";,\t|").delimiter
    except csv.Error:
        return ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
