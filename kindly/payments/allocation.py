"""Which part of a claim a payment settles: costs, then interest, then principal (§ 367 BGB).

German law (§ 367 (1) BGB) applies a payment that does not cover everything first to the
costs, then to the interest and only then to the principal. Other jurisdictions order the parts
differently, so a campaign may name its own order in `settings["payments"]["allocation_order"]`
(a list of the three parts, each once). Allocation is derived, never stored: the net sum paid
is laid over the parts in order, so any number of payments, refunds and counter-entries gives
the same answer as their total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kindly.campaigns.models import Campaign, Debtor

PARTS = ("fees", "interest", "principal")
"""The parts of a claim; as a tuple also the default order (§ 367 BGB: costs, interest,
principal)."""
KEY = "allocation_order"


def allocate(parts: Mapping[str, int], paid_minor: int, order: Sequence[str]) -> dict[str, int]:
    """What stays open of each part once `paid_minor` is laid over the parts in `order`.

    Parts not named in `order` are settled last, in the order `parts` lists them; a negative
    or zero payment leaves every part open, an overpayment closes them all.
    """
    left = max(paid_minor, 0)
    open_ = dict(parts)
    for name in [*order, *(p for p in parts if p not in order)]:
        if name not in open_:
            continue
        take = min(left, max(open_[name], 0))
        open_[name] -= take
        left -= take
    return {name: open_[name] for name in parts}


def settled(parts: Mapping[str, int], before_minor: int, after_minor: int,
            order: Sequence[str]) -> dict[str, int]:  # fmt: skip
    """How much of each part one booking settled (negative: a reversal reopened it), given the
    net sum paid before and after it."""
    before = allocate(parts, before_minor, order)
    after = allocate(parts, after_minor, order)
    return {name: before[name] - after[name] for name in parts}


def parts_of(debtor: Debtor) -> dict[str, int] | None:
    """The claim's parts in minor units, or None when it is not broken down.

    A principal left out is what the claim holds beyond the fees and interest given.
    """
    fees, interest, principal = debtor.fees_minor, debtor.interest_minor, debtor.principal_minor
    if fees is None and interest is None and principal is None:
        return None
    fees, interest = fees or 0, interest or 0
    if principal is None:
        principal = max(debtor.amount_due_minor - fees - interest, 0)
    return {"fees": fees, "interest": interest, "principal": principal}


def order_of(campaign: Campaign) -> tuple[str, ...]:
    """The campaign's allocation order (the § 367 BGB default unless it names one)."""
    value = ((campaign.settings or {}).get("payments") or {}).get(KEY)
    if not value or check_order(value):
        return PARTS
    return tuple(value)


def check_order(value: Any) -> list[str]:
    """What is wrong with an allocation order (empty: nothing)."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return [f"{KEY}: a list of the parts {', '.join(PARTS)}"]
    unknown = [v for v in value if v not in PARTS]
    if unknown:
        return [f"{KEY}: {', '.join(map(repr, unknown))} is not a part ({', '.join(PARTS)})"]
    if sorted(value) != sorted(PARTS):
        return [f"{KEY}: name each of {', '.join(PARTS)} exactly once"]
    return []


def open_parts(debtor: Debtor, paid_minor: int) -> dict[str, int] | None:
    """What is still open of each part of the debtor's claim (None: not broken down)."""
    parts = parts_of(debtor)
    if parts is None:
        return None
    return allocate(parts, paid_minor, order_of(debtor.campaign))
