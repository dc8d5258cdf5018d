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

from kindly.campaigns.portfolio.read import RowError, SourceRow
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
)
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


def validate_rows(
    rows: Iterable[SourceRow], today: dt.date | None = None
) -> tuple[list[CleanRow], list[RowError]]:
    """Check every row; return the clean ones and every error found."""
    today = today or dt.date.today()
    clean: list[CleanRow] = []
    errors: list[RowError] = []
    first_seen: dict[str, int] = {}
    for row in rows:
        row_errors: list[RowError] = []
        result = _validate_row(row, today, row_errors)
        reference = result.get("reference")
        if reference:
            if reference in first_seen:
                row_errors.append(
                    RowError(
                        row.number,
                        "reference",
                        f"duplicate reference {reference!r}, first in row {first_seen[reference]}",
                    )
                )
            else:
                first_seen[reference] = row.number
        if row_errors:
            errors.extend(row_errors)
            continue
        attributes = {k: v for k, v in row.values.items() if k not in _KNOWN_SET and k}
        clean.append(CleanRow(row.number, result, attributes))
    return clean, errors


def _validate_row(row: SourceRow, today: dt.date, errors: list[RowError]) -> dict[str, Any]:
    """One row's clean fields; each problem is appended to `errors` (column order kept)."""

    def fail(column: str, reason: str) -> None:
        errors.append(RowError(row.number, column, reason))

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
    return out


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
