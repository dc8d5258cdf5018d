"""The rules document's `interest` key: which interest a campaign's claims bear.

    "interest": {"basis": "statutory", "debtor": "consumer", "debtor_field": "debtor_type"}
    "interest": {"basis": "contractual", "rate": "7.5"}
    "interest": {"basis": "none"}

`basis` none (the default), contractual (a fixed `rate`, percent a year, 0 to 30) or statutory
(default interest of § 288 BGB: the base rate of § 247 BGB plus 5 points for a consumer, plus
9 for a business). For statutory interest the debtor's kind comes from the portfolio column
named by `debtor_field` (consumer or business; b2c and b2b are read too), else from `debtor`.
kindly.claims.interest computes it; this module only knows the vocabulary and checks it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

BASES = ("none", "contractual", "statutory")
PARTIES = ("consumer", "business")
MARGINS = {"consumer": Decimal(5), "business": Decimal(9)}
"""Points above the base rate (§ 288 (1) and (2) BGB)."""
MAX_RATE = Decimal(30)
"""The highest contractual rate a campaign may set, percent a year (a guard against typos:
a rate above it is almost always a monthly rate or a slipped digit)."""
DEFAULT_FIELD = "debtor_type"
KEYS = ("basis", "rate", "debtor", "debtor_field")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ALIASES = {"consumer": "consumer", "b2c": "consumer", "business": "business", "b2b": "business"}


def rate_of(value: Any) -> Decimal | None:
    """A rate given as a JSON number or a decimal string, or None when it is neither."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return rate if rate.is_finite() else None


def check_interest(value: Any, errors: list[str], path: str = "interest") -> None:
    """Append every problem of an `interest` value to `errors`, each with its path."""
    if not isinstance(value, dict):
        errors.append(f'{path}: expected an object like {{"basis": "statutory"}}')
        return
    for key in value:
        if key not in KEYS:
            errors.append(f"{path}.{key}: unknown key (expected one of {', '.join(KEYS)})")
    basis = value.get("basis", "none")
    if basis not in BASES:
        errors.append(f"{path}.basis: {basis!r} is not one of {', '.join(BASES)}")
        return
    if basis == "contractual":
        if "rate" not in value:
            errors.append(f"{path}.rate: a contractual basis needs a rate, percent a year")
        else:
            rate = rate_of(value["rate"])
            if rate is None:
                errors.append(
                    f'{path}.rate: expected a percentage like "7.5", got {value["rate"]!r}'
                )
            elif not Decimal(0) <= rate <= MAX_RATE:
                errors.append(
                    f"{path}.rate: {value['rate']} % is outside 0–30 % a year "
                    "(a contractual rate is percent a year)"
                )
    elif "rate" in value:
        errors.append(
            f"{path}.rate: only a contractual basis takes a rate"
            + (" (statutory interest follows the base rate)" if basis == "statutory" else "")
        )
    if "debtor" in value and value["debtor"] not in PARTIES:
        errors.append(f"{path}.debtor: {value['debtor']!r} is not one of {', '.join(PARTIES)}")
    if "debtor_field" in value and not (
        isinstance(value["debtor_field"], str) and _FIELD.match(value["debtor_field"])
    ):
        errors.append(f"{path}.debtor_field: expected a portfolio column name")
    if basis != "statutory":
        for key in ("debtor", "debtor_field"):
            if key in value:
                errors.append(f"{path}.{key}: only statutory interest depends on the debtor")


def party_of(value: Any) -> str | None:
    """consumer or business from a portfolio cell (None: it says neither)."""
    return _ALIASES.get(str(value).strip().casefold()) if value is not None else None
