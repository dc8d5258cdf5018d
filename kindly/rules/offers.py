"""Settlement offers in the rules: what an `offer` may say, and what it asks of one claim.

An offer is a treatment key (defaults, a segment, or an experiment variant's `set`):

    "offer": {"discount_percent": 20, "floor": 150, "valid_until": "2026-12-31",
              "reason": "Winter settlement"}

`discount_percent` or `discount` (an amount off, in the claim's currency) makes the offered
amount; `floor` (an amount) or `floor_percent` (of what is open) is the least it may ever be;
`valid_until` is the last day (inclusive) it may be taken; `reason` names the write-off the
rest becomes. `null` switches an offer off (a variant testing "no offer" against a segment's).
Pure: `check_offer` validates (every problem with its path), `terms` applies it to a balance.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from kindly.money import exponent

OFFER_KEYS = ("discount_percent", "discount", "floor", "floor_percent", "valid_until", "reason")
DEFAULT_REASON = "settlement offer"
MAX_REASON = 200


@dataclass(frozen=True)
class Terms:
    """An offer applied to one open balance on one day, in minor units."""

    balance_minor: int  # what is open before the offer
    offered_minor: int  # what paying in one go settles the claim with
    valid_until: dt.date  # the last day it may be taken
    reason: str

    @property
    def written_off_minor(self) -> int:
        """What the creditor gives up when the offered amount is paid."""
        return self.balance_minor - self.offered_minor


def _decimal(value: Any) -> Decimal | None:
    """A JSON number or a decimal string ("49.90"), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _day(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def check_offer(value: Any, path: str, errors: list[str], today: dt.date) -> None:
    """Append every problem of one `offer` value to `errors` (null is fine: no offer)."""
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append(
            f'{path}: expected an object such as {{"discount_percent": 20, '
            f'"valid_until": "{today.isoformat()}"}} or null, got {json.dumps(value)}'
        )
        return
    for key in value:
        if key not in OFFER_KEYS:
            errors.append(f"{path}.{key}: unknown key (expected one of {', '.join(OFFER_KEYS)})")
    percent, amount = value.get("discount_percent"), value.get("discount")
    if ("discount_percent" in value) == ("discount" in value):
        errors.append(f"{path}: give exactly one of discount_percent or discount")
    p = _decimal(percent) if "discount_percent" in value else None
    if "discount_percent" in value:
        if p is None or isinstance(percent, str):
            errors.append(f"{path}.discount_percent: expected a number, got {json.dumps(percent)}")
        elif p > 100:
            errors.append(f"{path}.discount_percent: {percent} % is over 100 %")
        elif p >= 100:
            errors.append(f"{path}.discount_percent: 100 % would write off the whole claim")
        elif p <= 0:
            errors.append(f"{path}.discount_percent: expected more than 0 %")
    if "discount" in value:
        a = _decimal(amount)
        if a is None or a <= 0:
            errors.append(f'{path}.discount: expected an amount above 0, e.g. 50 or "49.90"')
    if "floor" in value and "floor_percent" in value:
        errors.append(f"{path}: give floor or floor_percent, not both")
    if "floor" in value:
        f = _decimal(value["floor"])
        if f is None or f < 0:
            errors.append(f"{path}.floor: expected an amount of 0 or more, e.g. 150")
    floor_percent = value.get("floor_percent")
    if "floor_percent" in value:
        fp = _decimal(floor_percent)
        if fp is None or isinstance(floor_percent, str) or not 0 <= fp <= 100:
            errors.append(f"{path}.floor_percent: expected a number from 0 to 100")
        elif p is not None and 0 < p < 100 and 100 - p < fp:
            errors.append(
                f"{path}: the offer ({100 - p} % of the claim) is below its floor "
                f"({floor_percent} % of the claim); lower the discount or the floor"
            )
    until = value.get("valid_until")
    day = _day(until)
    if "valid_until" not in value:
        errors.append(f'{path}.valid_until: every offer needs its last day, e.g. "2026-12-31"')
    elif day is None:
        errors.append(
            f'{path}.valid_until: expected a date like "2026-12-31", got {json.dumps(until)}'
        )
    elif day < today:
        errors.append(
            f"{path}.valid_until: {until} has passed (today is {today.isoformat()}); "
            "an offer must still be valid when it is saved"
        )
    reason = value.get("reason")
    if "reason" in value and not (
        isinstance(reason, str) and 0 < len(reason.strip()) <= MAX_REASON
    ):
        errors.append(f"{path}.reason: expected a text of 1 to {MAX_REASON} characters")


def _minor(value: Decimal, currency: str) -> int:
    return int(value.scaleb(exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def terms(offer: Any, balance_minor: int, currency: str, day: dt.date) -> Terms | None:
    """What `offer` asks of a claim with `balance_minor` open on `day`; None when there is no
    offer, it expired (after `valid_until`), or it would ask for nothing less than the balance.

    The offered amount is the balance less the discount, never below the floor (a discount
    that would go below it is lifted to the floor) and never below one minor unit."""
    if not isinstance(offer, dict) or balance_minor <= 0:
        return None
    until = _day(offer.get("valid_until"))
    if until is None or day > until:
        return None
    if "discount_percent" in offer:
        percent = _decimal(offer["discount_percent"]) or Decimal(0)
        off = int((Decimal(balance_minor) * percent / 100).quantize(Decimal(1), ROUND_HALF_UP))
    else:
        off = _minor(_decimal(offer.get("discount")) or Decimal(0), currency)
    offered = balance_minor - off
    if "floor" in offer:
        offered = max(offered, _minor(_decimal(offer["floor"]) or Decimal(0), currency))
    elif "floor_percent" in offer:
        share = (_decimal(offer["floor_percent"]) or Decimal(0)) / 100
        offered = max(
            offered, int((Decimal(balance_minor) * share).quantize(Decimal(1), ROUND_HALF_UP))
        )
    offered = max(offered, 1)
    if offered >= balance_minor:
        return None
    reason = str(offer.get("reason") or DEFAULT_REASON).strip()
    return Terms(balance_minor, offered, until, reason)
