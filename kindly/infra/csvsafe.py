"""CSV files a spreadsheet opens as data: no cell Kindly writes runs as a formula."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
"""A signed number (an E.164 phone, a negative amount) is data to a spreadsheet, not a formula."""


def cell(value: Any) -> Any:
    """The value, behind an apostrophe when a spreadsheet would run it (CSV injection)."""
    if isinstance(value, str) and value[:1] in FORMULA_START and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class Writer:
    """csv.writer whose rows have every text cell made safe."""

    def __init__(self, handle: Any, **options: Any):
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row, each cell through `cell`."""
        self._writer.writerow([cell(value) for value in row])


def writer(handle: Any, **options: Any) -> Writer:
    """A safe writer on an open text handle (as csv.writer)."""
    return Writer(handle, **options)
