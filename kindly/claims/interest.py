"""Interest that accrues on a claim: contractual or statutory (§ 288 BGB), simple (§ 289 BGB).

Per campaign, the rules document's `interest` key (kindly.rules.interest) says which: none, a
contractual rate, or default interest at the base rate (kindly.claims.rates) plus 5 points for
a consumer, plus 9 for a business. Interest accrues on each open principal piece (the claim,
or each item with its own due date), never on interest or costs. This module is the pure
calculation; kindly.claims.accrual reads what it needs for many debtors at once.

The count, one convention everywhere:

- **days**: act/365 — the actual days, divided by 365 also in a leap year (§ 191 BGB counts a
  year as 365 days; no statute fixes a day count for § 288, and act/365 is what German courts'
  and collectors' interest calculators commonly use). A piece due on D bears interest for the
  days after D (§ 187 (1) BGB) up to and including the day asked about: `day − D` days.
- **periods**: a piece's time is split wherever its rate changes (1 January and 1 July for
  statutory interest), wherever a payment changes its principal, and around an agreed plan.
  Each period's interest is principal × rate × days / 365, rounded half-up to the minor unit
  once; a piece's interest is the sum of its periods'.
- **payments** stop interest on what they settle: money that arrived on day P (the payment's
  `received_on`, else the day it was last updated) settles costs, then interest accrued up to
  and including P, then principal, oldest piece first (§ 367 BGB, or the campaign's own
  allocation order); from the day after P the settled principal bears no interest. So paying
  the amount shown on a day settles everything. A refund or a returned transfer (a negative
  row) takes back the latest money before it, as if that money had not come.
- **an agreed plan** is a deferral (Stundung): no interest accrues after the day a plan was
  agreed while it runs; a broken plan lets it run again from the day it broke.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kindly.claims import rates as rates_module
from kindly.claims.rates import RateTable
from kindly.payments import allocation
from kindly.rules import interest as vocabulary

YEAR_DAYS = 365
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Terms:
    """The interest one debtor's claim bears."""

    basis: str  # none | contractual | statutory
    rate: Decimal | None = None  # contractual: percent a year
    party: str | None = None  # statutory: consumer | business

    @property
    def margin(self) -> Decimal:
        """Statutory: the points above the base rate (§ 288 (1), (2) BGB)."""
        return vocabulary.MARGINS[self.party or "consumer"]

    @property
    def charges(self) -> bool:
        """Whether any interest accrues."""
        return self.basis == "statutory" or (self.basis == "contractual" and bool(self.rate))


NONE = Terms("none")


@dataclass(frozen=True)
class Piece:
    """A principal that bears interest from its own due date."""

    key: str  # "claim", or the item's id
    label: str  # the reference, or the item's description
    principal_minor: int
    due_date: dt.date


@dataclass(frozen=True)
class Period:
    """Days of one piece at one principal and one rate."""

    first: dt.date  # the first day that bears interest
    last: dt.date  # the last one, inclusive
    principal_minor: int
    rate: Decimal  # percent a year
    interest_minor: int
    beyond_table: bool = False  # a base rate past the table's end: its last rate assumed

    @property
    def days(self) -> int:
        """How many days the period counts."""
        return (self.last - self.first).days + 1


@dataclass
class PieceInterest:
    """One piece's periods and what is still open of its principal on the day."""

    piece: Piece
    periods: list[Period] = field(default_factory=list)
    open_minor: int = 0

    @property
    def interest_minor(self) -> int:
        """The interest this piece accrued up to the day."""
        return sum(period.interest_minor for period in self.periods)


@dataclass(frozen=True)
class Settlement:
    """What the money that arrived on one day settled, by part."""

    on: dt.date
    amount_minor: int
    fees_minor: int
    interest_minor: int
    principal_minor: int


@dataclass
class Breakdown:
    """A debtor's interest on a day: per piece, with its periods, and the payments' parts."""

    day: dt.date
    terms: Terms
    pieces: list[PieceInterest]
    settlements: list[Settlement]
    table_ends: dt.date | None = None  # statutory: the last day the base-rate table covers

    @property
    def interest_minor(self) -> int:
        """Interest accrued up to and including the day (settled or not)."""
        return sum(piece.interest_minor for piece in self.pieces)

    @property
    def principal_minor(self) -> int:
        """The principal the interest is computed on."""
        return sum(piece.piece.principal_minor for piece in self.pieces)

    @property
    def beyond_table(self) -> bool:
        """Whether a period assumed the last known base rate."""
        return any(p.beyond_table for piece in self.pieces for p in piece.periods)


def _rounded(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _annual_rate(terms: Terms, table: RateTable | None, day: dt.date) -> Decimal:
    if terms.basis == "contractual":
        return terms.rate or Decimal(0)
    assert table is not None
    return max(table.rate_on(day) + terms.margin, Decimal(0))


def _boundaries(terms: Terms, table: RateTable | None) -> Sequence[dt.date]:
    """The last days before a rate may change (a period ends on each)."""
    if terms.basis != "statutory" or table is None:
        return []
    return table.last_days


def _paused(day: dt.date, pauses: Sequence[tuple[dt.date, dt.date | None]]) -> bool:
    """Whether `day` lies in a pause (after its first day, up to and including its last)."""
    return any(start < day and (end is None or day <= end) for start, end in pauses)


def _periods(
    principal: int,
    after: dt.date,
    until: dt.date,
    terms: Terms,
    table: RateTable | None,
    pauses: Sequence[tuple[dt.date, dt.date | None]],
) -> list[Period]:
    """The periods of the days after `after` up to and including `until` at `principal`."""
    if until <= after or principal <= 0:
        return []
    cuts = [c for c in _boundaries(terms, table) if after < c < until]
    for start, end in pauses:
        cuts += [day for day in (start, end) if day is not None and after < day < until]
    edges = [after, *sorted(set(cuts)), until]
    out: list[Period] = []
    for low, high in itertools.pairwise(edges):
        first = low + ONE_DAY
        if _paused(first, pauses):
            continue
        rate = _annual_rate(terms, table, first)
        days = (high - low).days
        amount = _rounded(Decimal(principal) * rate * days / (100 * YEAR_DAYS))
        beyond = terms.basis == "statutory" and table is not None and first > table.ends
        out.append(Period(first, high, principal, rate, amount, beyond))
    return out


def compute(
    pieces: Sequence[Piece],
    terms: Terms,
    day: dt.date,
    *,
    table: RateTable | None = None,
    payments: Sequence[tuple[dt.date, int]] = (),
    pauses: Sequence[tuple[dt.date, dt.date | None]] = (),
    fees_minor: int = 0,
    prior_interest_minor: int = 0,
    order: Sequence[str] = allocation.PARTS,
) -> Breakdown:
    """The interest on `pieces` up to and including `day` (pure: everything is given).

    `payments` are (day the money arrived, amount) in any order, refunds and returns negative;
    `fees_minor` and `prior_interest_minor` are the costs and interest the claim already holds
    (payments settle them in `order` with the accrued interest and the principal).
    """
    result = {piece.key: PieceInterest(piece, open_minor=piece.principal_minor) for piece in pieces}
    if not terms.charges:
        return Breakdown(day, terms, list(result.values()), [])
    if terms.basis == "statutory" and table is None:
        table = rates_module.shipped()
    accrued_to = {piece.key: piece.due_date for piece in pieces}
    owed = {"fees": fees_minor, "interest": prior_interest_minor}

    def accrue(until: dt.date) -> None:
        for piece in pieces:
            mine = result[piece.key]
            if until <= accrued_to[piece.key]:
                continue
            made = _periods(mine.open_minor, accrued_to[piece.key], until, terms, table, pauses)
            mine.periods.extend(made)
            owed["interest"] += sum(period.interest_minor for period in made)
            accrued_to[piece.key] = until

    settlements: list[Settlement] = []
    oldest_first = sorted(pieces, key=lambda piece: (piece.due_date, piece.key))
    for on, amount in _net_by_day(payments):
        if on > day:
            break
        accrue(on)
        left, taken = amount, {"fees": 0, "interest": 0, "principal": 0}
        for part in [*order, *(p for p in allocation.PARTS if p not in order)]:
            if part == "principal":
                for piece in oldest_first:
                    take = min(left, result[piece.key].open_minor)
                    result[piece.key].open_minor -= take
                    taken["principal"] += take
                    left -= take
            elif part in owed:
                take = min(left, owed[part])
                owed[part] -= take
                taken[part] += take
                left -= take
        settlements.append(
            Settlement(on, amount, taken["fees"], taken["interest"], taken["principal"])
        )
    accrue(day)
    ends = table.ends if terms.basis == "statutory" and table is not None else None
    return Breakdown(day, terms, list(result.values()), settlements, ends)


def _net_by_day(payments: Sequence[tuple[dt.date, int]]) -> list[tuple[dt.date, int]]:
    """Money in by the day it arrived, each negative row taking back the latest money before
    it (a returned transfer undoes its transfer; a refund gives back the last excess)."""
    kept: list[list[Any]] = []
    for on, amount in sorted(payments, key=lambda row: (row[0], row[1] < 0)):
        if amount >= 0:
            kept.append([on, amount])
            continue
        back = -amount
        while back and kept:
            take = min(back, kept[-1][1])
            kept[-1][1] -= take
            back -= take
            if kept[-1][1] == 0:
                kept.pop()
    by_day: dict[dt.date, int] = {}
    for on, amount in kept:
        by_day[on] = by_day.get(on, 0) + amount
    return sorted((on, amount) for on, amount in by_day.items() if amount > 0)


def as_dict(breakdown: Breakdown, currency: str) -> dict[str, Any]:
    """The breakdown as plain JSON data: money as decimal strings, rates in percent."""
    from kindly.money import from_minor

    def money(minor: int) -> str:
        return str(from_minor(minor, currency))

    terms = breakdown.terms
    return {
        "on": breakdown.day.isoformat(),
        "currency": currency,
        "basis": terms.basis,
        "debtor": terms.party if terms.basis == "statutory" else None,
        "rate": (
            f"base rate + {terms.margin} points"
            if terms.basis == "statutory"
            else f"{terms.rate}"
            if terms.basis == "contractual"
            else None
        ),
        "day_count": "act/365",
        "base_rate_table_until": breakdown.table_ends.isoformat() if breakdown.table_ends else None,
        "pieces": [
            {
                "item": piece.piece.key,
                "label": piece.piece.label,
                "due_date": piece.piece.due_date.isoformat(),
                "principal": money(piece.piece.principal_minor),
                "principal_open": money(piece.open_minor),
                "periods": [
                    {
                        "from": period.first.isoformat(),
                        "to": period.last.isoformat(),
                        "days": period.days,
                        "principal": money(period.principal_minor),
                        "rate": f"{period.rate:.2f}",
                        "interest": money(period.interest_minor),
                        "beyond_table": period.beyond_table,
                    }
                    for period in piece.periods
                ],
                "interest": money(piece.interest_minor),
            }
            for piece in breakdown.pieces
        ],
        "payments": [
            {
                "on": settled.on.isoformat(),
                "amount": money(settled.amount_minor),
                "fees": money(settled.fees_minor),
                "interest": money(settled.interest_minor),
                "principal": money(settled.principal_minor),
            }
            for settled in breakdown.settlements
        ],
        "totals": {
            "principal": money(breakdown.principal_minor),
            "principal_open": money(sum(piece.open_minor for piece in breakdown.pieces)),
            "interest": money(breakdown.interest_minor),
            "paid": money(sum(settled.amount_minor for settled in breakdown.settlements)),
        },
        "beyond_table": breakdown.beyond_table,
    }
