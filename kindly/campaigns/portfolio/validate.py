"""Validating a portfolio's rows: every error of every row, in the words a person fixing the
file needs."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel.core import Locale, UnknownLocaleError

from kindly.campaigns.portfolio.read import CASE_AMOUNT, RowError, SourceRow
from kindly.money import MAX_DIGITS, MoneyError, check_currency, exponent, parse_amount

KNOWN = (
    "reference",
    "first_name",
    "last_name",
    "salutation",
    "email",
    "phone",
    "locale",
    "currency",
    "amount_due",
    "principal",
    "interest",
    "fees",
    "due_date",
    "creditor",
    "contract",
    "street",
    "postal_code",
    "city",
    "country",
    "birth_date",
    "item_id",
    "item_date",
    "item_description",
)
ITEM_COLUMNS = frozenset(
    ("item_id", "item_date", "item_description", "amount_due", "principal", "interest", "fees")
)
"""The columns that describe one item of a case; every other column is the case's and repeats
on each of its item rows."""
_KNOWN_SET = frozenset(KNOWN)
MAX_LENGTH = {
    "reference": 100,
    "first_name": 200,
    "last_name": 200,
    "salutation": 50,
    "email": 320,
    "creditor": 200,
    "contract": 500,
    "street": 200,
    "postal_code": 20,
    "city": 100,
}
EMAIL = re.compile(
    r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
Fail = Callable[[str, str], None]
"""Records one problem: fail(column, reason)."""
COUNTRIES = frozenset(code for code in Locale("en").territories if re.fullmatch(r"[A-Z]{2}", code))


@dataclass
class CleanRow:
    """A validated row, ready to become a Debtor."""

    number: int
    fields: dict[str, Any]
    attributes: dict[str, str]
    # the case's items (item_id, item_date, description, amount_minor, principal_minor, …);
    # None for a case given as one amount, without items
    items: list[dict[str, Any]] | None = None


def validate_rows(
    rows: Iterable[SourceRow], today: dt.date | None = None
) -> tuple[list[CleanRow], list[RowError]]:
    """Check every row; return the clean cases (item rows merged) and every error found."""
    today = today or dt.date.today()
    errors: list[RowError] = []
    checked: list[tuple[SourceRow, dict[str, Any], list[RowError]]] = []
    by_reference: dict[str, list[int]] = {}
    for row in rows:
        row_errors: list[RowError] = []
        result = _validate_row(row, today, row_errors)
        reference = result.get("reference")
        if reference:
            by_reference.setdefault(reference, []).append(len(checked))
        checked.append((row, result, row_errors))
    for positions in by_reference.values():
        if len(positions) > 1 or "item" in checked[positions[0]][1]:
            _check_case(checked, positions)
    clean: list[CleanRow] = []
    for _, _, row_errors in checked:
        errors.extend(row_errors)
    failed = {row.number for row, _, row_errors in checked if row_errors}
    seen: set[str] = set()
    for row, result, row_errors in checked:
        reference = result.get("reference")
        if row_errors or reference in seen:
            continue
        positions = by_reference.get(reference, [])
        if "item" in result and any(checked[p][0].number in failed for p in positions):
            continue  # a case of items is written whole or not at all
        seen.add(reference)
        attributes = {
            k: v for k, v in row.values.items() if k not in _KNOWN_SET and k and k != CASE_AMOUNT
        }
        if "item" not in result:
            clean.append(CleanRow(row.number, result, attributes))
            continue
        items = [checked[p][1]["item"] for p in positions]
        fields = {k: v for k, v in result.items() if k != "item"}
        fields["amount_due_minor"] = sum(item["amount_minor"] for item in items)
        for part in ("principal_minor", "interest_minor", "fees_minor"):
            given = [item[part] for item in items if item.get(part) is not None]
            fields[part] = sum(given) if len(given) == len(items) else None
        clean.append(CleanRow(row.number, fields, attributes, items))
    return clean, errors


def _check_case(checked: list[tuple[SourceRow, dict[str, Any], list[RowError]]], positions):
    """The rows of one reference: either one case given as items (its case columns repeat on
    every row, each item_id once, the items add up to a JSON case's own amount_due) or a
    reference given twice."""
    first_row, first, _ = checked[positions[0]]
    reference = first["reference"]
    with_items = [p for p in positions if "item" in checked[p][1]]
    if not with_items:
        for p in positions[1:]:
            row, _, row_errors = checked[p]
            row_errors.append(
                RowError(
                    row.number,
                    "reference",
                    f"duplicate reference {reference!r}, first in row {first_row.number}",
                )
            )
        return
    if len(with_items) != len(positions):
        for p in positions:
            row, result, row_errors = checked[p]
            if "item" not in result:
                row_errors.append(
                    RowError(
                        row.number,
                        "item_id",
                        f"is required: the other rows of case {reference!r} list its items",
                    )
                )
        return
    case_columns = [k for k in first_row.values if k not in ITEM_COLUMNS and not k.startswith("__")]
    item_rows: dict[str, int] = {}
    for p in positions:
        row, result, row_errors = checked[p]
        if p != positions[0]:
            for column in case_columns:
                mine = (row.values.get(column) or "").strip()
                theirs = (first_row.values.get(column) or "").strip()
                if mine != theirs:
                    row_errors.append(
                        RowError(
                            row.number,
                            column,
                            f"is {mine!r} but {theirs!r} in row {first_row.number} of the same "
                            f"case {reference!r}: an item's case columns repeat the case",
                        )
                    )
        item_id = result["item"]["item_id"]
        if item_id in item_rows:
            row_errors.append(
                RowError(
                    row.number,
                    f"{row.item_prefix}item_id",
                    f"duplicate item_id {item_id!r} in case {reference!r}, first in row "
                    f"{item_rows[item_id]}",
                )
            )
        else:
            item_rows[item_id] = row.number
    _check_case_amount(checked, positions)


def _check_case_amount(checked, positions) -> None:
    """A JSON case that gives its own amount_due beside its items: the items must sum to it."""
    first_row, first, first_errors = checked[positions[0]]
    raw = (first_row.values.get(CASE_AMOUNT) or "").strip()
    currency = first.get("currency")
    if not raw or not currency or any(checked[p][2] for p in positions):
        return
    try:
        amount = _parse_amount(raw, currency)
    except MoneyError as exc:
        first_errors.append(RowError(first_row.number, "amount_due", str(exc)))
        return
    total = sum(checked[p][1]["item"]["amount_minor"] for p in positions)
    if int(amount.scaleb(_exponent(currency))) != total:
        shown = Decimal(total).scaleb(-_exponent(currency))
        first_errors.append(
            RowError(
                first_row.number,
                "amount_due",
                f"the case's amount_due is {raw} but its items add up to {shown}",
            )
        )


def _validate_row(row: SourceRow, today: dt.date, errors: list[RowError]) -> dict[str, Any]:
    """One row's clean fields; each problem is appended to `errors` (column order kept)."""

    def fail(column: str, reason: str) -> None:
        prefix = row.item_prefix if column in ITEM_COLUMNS else ""
        errors.append(RowError(row.number, prefix + column, reason))

    if "__shape__" in row.values:
        fail("-", row.values["__shape__"])
        return {}

    values = {k: (v or "").strip() for k, v in row.values.items()}
    out: dict[str, Any] = {}
    _check_identity(values, out, fail)
    _check_contact(values, out, fail)
    _check_money(values, out, fail)
    _check_dates(values, out, fail, today)
    _check_address(values, out, fail)
    out["first_name"] = out.get("first_name")
    if values.get("item_id") or row.item_prefix:
        _check_item(values, out, fail)
    return out


def _check_item(values: dict[str, str], out: dict[str, Any], fail: Fail) -> None:
    """An item row's own columns: its id, date and description; its amounts are the row's."""
    item_id = values.get("item_id", "")
    if not item_id:
        fail("item_id", "is required for an item")
    elif CONTROL.search(item_id) or len(item_id) > 100:
        fail("item_id", "must be at most 100 characters without control characters")
    description = values.get("item_description", "")
    if CONTROL.search(description) or len(description) > 500:
        fail("item_description", "must be at most 500 characters without control characters")
    day = _date(values, "item_date", required=True, fail=fail)
    out["item"] = {
        "item_id": item_id,
        "item_date": day,
        "description": description or None,
        "amount_minor": out.get("amount_due_minor"),
        "principal_minor": out.get("principal_minor"),
        "interest_minor": out.get("interest_minor"),
        "fees_minor": out.get("fees_minor"),
    }


def _check_identity(values: dict[str, str], out: dict[str, Any], fail: Fail) -> None:
    """The free-text columns (no control characters, not too long) and the required names."""
    for column, limit in MAX_LENGTH.items():
        value = values.get(column, "")
        if CONTROL.search(value):
            fail(column, "contains control characters")
        elif len(value) > limit:
            fail(column, f"is longer than {limit} characters")
        else:
            out[column] = value or None

    for column in ("reference", "last_name"):
        if not values.get(column):
            fail(column, "is required")


def _check_contact(values: dict[str, str], out: dict[str, Any], fail: Fail) -> None:
    """Email address, phone number (to E.164) and locale."""
    if values.get("email") and not EMAIL.match(values["email"]):
        fail("email", f"{values['email']!r} is not an email address")
    if values.get("phone"):
        phone = re.sub(r"[\s()-]", "", values["phone"])
        if PHONE.match(phone):
            out["phone"] = phone
        else:
            fail("phone", f"{values['phone']!r} is not in E.164 form (e.g. +4915112345678)")

    if values.get("locale"):
        if _known_locale(values["locale"]):
            out["locale"] = values["locale"].replace("_", "-")
        else:
            fail("locale", f"{values['locale']!r} is not a known locale (e.g. de-DE)")


def _check_money(values: dict[str, str], out: dict[str, Any], fail: Fail) -> None:
    """The currency and the amounts in minor units; the parts must add up to the amount due."""
    currency = None
    if not values.get("currency"):
        fail("currency", "is required")
    else:
        try:
            currency = check_currency(values["currency"])
            out["currency"] = currency
        except MoneyError as exc:
            fail("currency", str(exc))
    if not currency:
        return

    amounts: dict[str, Decimal] = {}
    for column in ("amount_due", "principal", "interest", "fees"):
        raw = values.get(column, "")
        if not raw:
            if column == "amount_due":
                fail(column, "is required")
            continue
        try:
            amount = _parse_amount(raw, currency)
        except MoneyError as exc:
            fail(column, str(exc))
            continue
        if column == "amount_due" and amount <= 0:
            fail(column, f"must be greater than 0, got {raw}")
        elif amount < 0:
            fail(column, f"must not be negative, got {raw}")
        else:
            amounts[column] = amount
            out[f"{column}_minor"] = int(amount.scaleb(_exponent(currency)))
    parts = [amounts[c] for c in ("principal", "interest", "fees") if c in amounts]
    if parts and "amount_due" in amounts and sum(parts) != amounts["amount_due"]:
        fail(
            "amount_due",
            f"principal + interest + fees = {sum(parts)} but amount_due is {amounts['amount_due']}",
        )


def _check_dates(values: dict[str, str], out: dict[str, Any], fail: Fail, today: dt.date) -> None:
    """The due date (required) and the birth date (optional, not in the future)."""
    out["due_date"] = _date(values, "due_date", required=True, fail=fail)
    birth = _date(values, "birth_date", required=False, fail=fail)
    if birth and birth > today:
        fail("birth_date", "lies in the future")
    out["birth_date"] = birth


def _check_address(values: dict[str, str], out: dict[str, Any], fail: Fail) -> None:
    """The country as an ISO 3166-1 alpha-2 code (street, postcode and city are free text)."""
    country = values.get("country", "").upper()
    if country:
        if country in COUNTRIES:
            out["country"] = country
        else:
            fail("country", f"{values['country']!r} is not an ISO 3166-1 alpha-2 code (e.g. DE)")


PLAIN_AMOUNT = re.compile(rf"^[0-9]{{1,{MAX_DIGITS}}}(?:\.([0-9]*))?$")


@functools.lru_cache(maxsize=256)
def _exponent(currency: str) -> int:
    return exponent(currency)


def _parse_amount(raw: str, currency: str) -> Decimal:
    """money.parse_amount, with a shortcut for the usual plain amount (same result).

    Anything unusual (signs, exponents, commas, too many decimals) goes through
    parse_amount, which also words every error.
    """
    plain = PLAIN_AMOUNT.match(raw)
    if plain and len(plain.group(1) or "") <= _exponent(currency):
        return Decimal(raw)
    return parse_amount(raw, currency)


@functools.lru_cache(maxsize=1024)
def _known_locale(value: str) -> bool:
    """Whether Babel knows the locale (asked once per distinct value: a file has few)."""
    try:
        Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return False
    return True


def _date(values: dict[str, str], column: str, *, required: bool, fail: Fail) -> dt.date | None:
    raw = values.get(column, "")
    if not raw:
        if required:
            fail(column, "is required")
        return None
    if not ISO_DATE.match(raw):
        fail(column, f"{raw!r} is not an ISO 8601 date (YYYY-MM-DD)")
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        fail(column, f"{raw!r} is not a real date")
        return None
