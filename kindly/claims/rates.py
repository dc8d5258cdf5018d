"""The base rate of § 247 BGB by half-year: the table Kindly ships, or the one loaded.

The Deutsche Bundesbank sets the base rate on 1 January and 1 July. Kindly ships the
published table (kindly/claims/base_rates.csv, up to 2025-12-31); `kindly rates update FILE`
loads a newer one into the `base_rate` table, all or nothing, and from then on that table is
the one used. A day after the last half-year of the table uses its last rate, and every
period computed so says it (`beyond_table`).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import itertools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kindly.claims.models import BaseRate
from kindly.errors import KindlyError

SHIPPED = Path(__file__).with_name("base_rates.csv")
HEADER = ["valid_from", "rate"]
LOWEST, HIGHEST = Decimal("-10"), Decimal("20")
"""Bounds a base rate must lie within (it was -0.88 % at its lowest): a guard against a
column mixed up or a misplaced decimal point."""


class RatesError(KindlyError):
    """A base-rate file that cannot be used; `errors` names every problem with its line."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        lines = "".join(f"\n  {error}" for error in errors)
        super().__init__(f"the base-rate table has {len(errors)} problem(s):{lines}")


@dataclass(frozen=True)
class RateTable:
    """Base rates, percent a year, each valid from its day (ascending, one per half-year)."""

    rows: tuple[tuple[dt.date, Decimal], ...]
    source: str = "shipped"  # shipped | loaded

    @cached_property
    def starts(self) -> list[dt.date]:
        """The days the rates change."""
        return [day for day, _ in self.rows]

    @cached_property
    def last_days(self) -> tuple[dt.date, ...]:
        """The last day of each rate (the day before the next change, and the table's end)."""
        return tuple(sorted({start - dt.timedelta(days=1) for start in self.starts} | {self.ends}))

    @property
    def ends(self) -> dt.date:
        """The last day the table covers: the end of its last half-year."""
        last = self.rows[-1][0]
        return dt.date(last.year, 12, 31) if last.month == 7 else dt.date(last.year, 6, 30)

    def rate_on(self, day: dt.date) -> Decimal:
        """The base rate on `day` (the first rate before the table, the last one after it)."""
        index = bisect.bisect_right(self.starts, day) - 1
        return self.rows[max(index, 0)][1]


def _half_year_after(day: dt.date) -> dt.date:
    return dt.date(day.year, 7, 1) if day.month == 1 else dt.date(day.year + 1, 1, 1)


def parse(text: str) -> list[tuple[dt.date, Decimal]]:
    """The rows of a base-rate CSV (`valid_from,rate`, lines starting with # ignored), or
    RatesError with every problem and its line."""
    errors: list[str] = []
    rows: list[tuple[int, dt.date, Decimal]] = []
    numbered = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise RatesError(["the file has no rows: expected a header valid_from,rate and a rate"])
    header_line, header = numbered[0]
    cells = [cell.strip().lower() for cell in next(csv.reader([header]))]
    if cells != HEADER:
        errors.append(f"line {header_line}: expected the header valid_from,rate, got {header!r}")
    for number, line in numbered[1:]:
        cells = [cell.strip() for cell in next(csv.reader([line]))]
        if len(cells) != 2:
            errors.append(f"line {number}: expected two columns (valid_from,rate), got {line!r}")
            continue
        raw_day, raw_rate = cells
        day = rate = None
        try:
            day = dt.date.fromisoformat(raw_day)
        except ValueError:
            errors.append(f"line {number}: {raw_day!r} is not a date like 2025-07-01")
        if day is not None and (day.month, day.day) not in ((1, 1), (7, 1)):
            errors.append(
                f"line {number}: {raw_day} is not 1 January or 1 July (the base rate changes "
                "only then, § 247 BGB)"
            )
            day = None
        try:
            rate = Decimal(raw_rate.replace(",", "."))
            if not rate.is_finite() or rate.as_tuple().exponent < -2:
                raise InvalidOperation
        except InvalidOperation:
            errors.append(f"line {number}: {raw_rate!r} is not a rate like 1.27 (percent)")
            rate = None
        if rate is not None and not LOWEST <= rate <= HIGHEST:
            errors.append(f"line {number}: {raw_rate} % is outside {LOWEST} to {HIGHEST} %")
            rate = None
        if day is not None and rate is not None:
            rows.append((number, day, rate))
    for (before_line, before, _), (number, day, _) in itertools.pairwise(rows):
        if day <= before:
            errors.append(f"line {number}: {day} is not after {before} (line {before_line})")
        elif day != _half_year_after(before):
            errors.append(
                f"line {number}: {day} follows {before} (line {before_line}): the half-years "
                "between them are missing"
            )
    if not rows and not errors:
        errors.append("the file has no rates below its header")
    if errors:
        raise RatesError(errors)
    return [(day, rate) for _, day, rate in rows]


@lru_cache(maxsize=1)
def shipped() -> RateTable:
    """The table Kindly ships."""
    return RateTable(tuple(parse(SHIPPED.read_text(encoding="utf-8"))), "shipped")


def table(session: Session) -> RateTable:
    """The table in force: the loaded one, else the shipped one (one statement)."""
    rows = session.execute(
        select(BaseRate.valid_from, BaseRate.rate_bp).order_by(BaseRate.valid_from)
    )
    loaded = tuple((day, Decimal(bp) / 100) for day, bp in rows)
    return RateTable(loaded, "loaded") if loaded else shipped()


def replace(session: Session, text: str) -> RateTable:
    """Validate a table (RatesError: nothing changes) and make it the one in force."""
    rows = parse(text)
    session.execute(delete(BaseRate))
    session.add_all(BaseRate(valid_from=day, rate_bp=int(rate * 100)) for day, rate in rows)
    session.flush()
    return RateTable(tuple(rows), "loaded")


def as_csv(rates: RateTable) -> str:
    """The table in the file format `parse` reads."""
    out = io.StringIO()
    out.write(",".join(HEADER) + "\n")
    for day, rate in rates.rows:
        out.write(f"{day.isoformat()},{rate:.2f}\n")
    return out.getvalue()
