"""Money as integer minor units with the currency's exponent; Decimal at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.core import Locale
from babel.numbers import format_currency, get_currency_precision, list_currencies

_KNOWN = frozenset(list_currencies())


class MoneyError(ValueError):
    """An amount or a currency that cannot be used."""


def check_currency(code: str) -> str:
    """The upper-cased ISO 4217 code, or MoneyError when it is unknown."""
    upper = code.strip().upper()
    if len(upper) != 3 or upper not in _KNOWN:
        raise MoneyError(f"unknown currency {code!r} (expected an ISO 4217 code such as EUR)")
    return upper


def exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has (EUR 2, JPY 0, BHD 3)."""
    return get_currency_precision(currency)


MAX_DIGITS = 15
"""Digits an amount may have before the decimal point (as the importer's plain path allows)."""


def parse_amount(text: str, currency: str) -> Decimal:
    """Parse a decimal written with '.' and at most the currency's decimals."""
    raw = text.strip()
    if not raw:
        raise MoneyError("is empty")
    if "," in raw:
        raise MoneyError(f"{raw!r} uses ',' — write amounts with '.' as the decimal separator")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise MoneyError(f"{raw!r} is not a number") from None
    if not value.is_finite():
        raise MoneyError(f"{raw!r} is not a finite number")
    if value and value.adjusted() >= MAX_DIGITS:  # minor units must fit a 64-bit column
        raise MoneyError(f"{raw!r} is too large (at most {MAX_DIGITS} digits before the point)")
    places = exponent(currency)
    if -value.as_tuple().exponent > places:  # type: ignore[operator]
        raise MoneyError(f"{raw!r} has more than {places} decimals for {currency}")
    return value


def to_minor(value: Decimal, currency: str) -> int:
    """Decimal amount to integer minor units (exact; parse_amount guarantees no rounding)."""
    return int(value.scaleb(exponent(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    """Integer minor units back to a Decimal with the currency's places."""
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def format_minor(minor: int, currency: str, locale: str | Locale) -> str:
    """A locale-formatted amount, e.g. '1.234,56 €' in de-DE."""
    return format_currency(from_minor(minor, currency), currency, locale=_babel_locale(locale))


def _babel_locale(locale: str | Locale) -> Locale:
    if isinstance(locale, Locale):
        return locale
    return Locale.parse(locale.replace("-", "_"))
